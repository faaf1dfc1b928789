"""Case study of one method against others, class by class (D2ST-Adapter §4.2, Figure 3).

The paper picks "four categories of actions where our method excels at, as well as four
categories where our model struggles in comparison to" the other methods, and plots the
per-class accuracy of every method on those eight classes. Here that choice is a rule:

- inputs are ``per_class.csv`` files written by ``d2st evaluate`` (columns run, shot, class,
  label_idx, accuracy, n) for runs scored on the *same* test episodes: same classes and the
  same number of queries per class (checked; a mismatch raises);
- margin of class c = acc_first(c) - max over the other runs of acc_other(c): the gain of the
  first run over the best competitor on that class (with one competitor, the plain difference);
- gains: the ``k`` classes of largest margin; losses: the ``k`` of smallest margin among the
  rest (``k = min(4, classes // 2)``, so the two groups never share a class); ties are broken
  by class name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

PER_CLASS_COLUMNS = ("run", "shot", "class", "accuracy", "n")


def read_per_class(path: str | Path) -> pd.DataFrame:
    """A ``per_class.csv`` (or the eval folder holding one), columns checked."""
    path = Path(path)
    if path.is_dir():
        path = path / "per_class.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no per_class.csv (run d2st evaluate first)")
    df = pd.read_csv(path, dtype={"class": str, "run": str})
    missing = [c for c in PER_CLASS_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected {list(PER_CLASS_COLUMNS)}")
    return df


def per_class_table(frames: Sequence[pd.DataFrame], shot: int | None = None) -> pd.DataFrame:
    """Accuracy per class (rows) and run (columns, input order) at one shot, same episodes.

    Args:
        frames: one ``per_class.csv`` table per run (each a single run).
        shot: the shot to compare (default: the smallest shot all runs have).
    """
    if len(frames) < 2:
        raise ValueError("a case study needs at least two runs")
    runs = [str(f["run"].iloc[0]) for f in frames]
    if len(set(runs)) != len(runs):
        raise ValueError(f"the same run is given twice: {runs}")
    if shot is None:
        shot = int(min(set.intersection(*(set(f["shot"]) for f in frames))))
    cols, counts = {}, {}
    for run, f in zip(runs, frames, strict=True):
        g = f[f["shot"] == shot]
        if g.empty:
            raise ValueError(f"run {run}: no {shot}-shot rows in its per_class.csv")
        cols[run] = g.set_index("class")["accuracy"]
        counts[run] = g.set_index("class")["n"]
    first = runs[0]
    for run in runs[1:]:
        if set(cols[run].index) != set(cols[first].index) or not counts[run].reindex(
            counts[first].index
        ).equals(counts[first]):
            raise ValueError(
                f"runs {first} and {run} were not scored on the same test episodes "
                f"(classes or queries per class differ at {shot}-shot); use the same "
                "--episodes and --seed in d2st evaluate"
            )
    table = pd.DataFrame(cols)
    table.insert(0, "n", counts[first])
    table.index.name = "class"
    table.attrs["shot"] = shot
    return table


def case_study(table: pd.DataFrame, k: int = 4) -> pd.DataFrame:
    """The ``k`` classes where the first run gains most and the ``k`` where it loses most.

    Args:
        table: output of :func:`per_class_table` (columns n, run1, run2, ...).
        k: classes per group (clipped to half the classes).

    Returns:
        rows class, group ("gain" | "loss"), rank (1 = most), margin, best_other, then the
        accuracy of every run; gains first (largest margin first), then losses (most negative
        first).
    """
    runs = [c for c in table.columns if c != "n"]
    first, others = runs[0], runs[1:]
    margin = table[first] - table[others].max(axis=1)
    best_other = table[others].idxmax(axis=1)
    df = pd.DataFrame({"margin": margin, "best_other": best_other}).join(table)
    df = df.reset_index()
    k = min(k, len(df) // 2)
    by_gain = df.sort_values(["margin", "class"], ascending=[False, True], kind="mergesort")
    gains = by_gain.head(k)
    rest = df[~df["class"].isin(gains["class"])]
    losses = rest.sort_values(["margin", "class"], ascending=[True, True], kind="mergesort").head(k)
    gains = gains.assign(group="gain", rank=range(1, len(gains) + 1))
    losses = losses.assign(group="loss", rank=range(1, len(losses) + 1))
    out = pd.concat([gains, losses], ignore_index=True)
    lead = ["class", "group", "rank", "margin", "best_other", "n"]
    return out[lead + runs]


def plot_case_study(
    study: pd.DataFrame,
    out: str | Path,
    labels: dict[str, str] | None = None,
    title: str = "",
    shot: int | None = None,
) -> Path:
    """Grouped bars: per-class accuracy of every run on the gain and loss classes (Figure 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lead = {"class", "group", "rank", "margin", "best_other", "n"}
    runs = [c for c in study.columns if c not in lead]
    labels = labels or {}
    n = len(study)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * n + 2) + 2.2, 4.0))
    width = 0.8 / len(runs)
    x = np.arange(n) + (study["group"] == "loss").to_numpy() * 0.6  # a gap between the groups
    for i, run in enumerate(runs):
        ax.bar(x + (i - (len(runs) - 1) / 2) * width, study[run], width,
               label=labels.get(run, run))  # fmt: skip
    ax.set_xticks(x)
    ticks = [f"{c}\n({m:+.1f})" for c, m in zip(study["class"], study["margin"], strict=True)]
    long = max(len(str(c)) for c in study["class"]) > 12
    ax.set_xticklabels(
        ticks, fontsize=8, rotation=25 if long else 0, ha="right" if long else "center"
    )
    ax.set_ylabel(f"accuracy (%){f', {shot}-shot' if shot else ''}")
    ax.set_xlabel("class (margin: first run - best other run, accuracy points)", fontsize=8)
    ax.set_ylim(0, 105)
    first = labels.get(runs[0], runs[0])
    for group, text in (
        ("gain", f"{first}: largest margins"),
        ("loss", f"{first}: smallest margins"),
    ):
        xs = x[(study["group"] == group).to_numpy()]
        if len(xs):
            ax.text(xs.mean(), 101, text, ha="center", va="bottom", fontsize=8)
    gap = x[(study["group"] == "loss").to_numpy()]
    if len(gap) and len(gap) < n:
        ax.axvline(gap.min() - 0.8, color="0.6", lw=0.8, ls="--")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def run_case_study(
    evals: Sequence[str | Path],
    prefix: str | Path,
    k: int = 4,
    shot: int | None = None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> pd.DataFrame:
    """Read per-class results, write ``{prefix}.csv`` and ``{prefix}.png``; return the study.

    Args:
        evals: per_class.csv files or eval folders; the first is the method studied.
        prefix: output path without extension.
        k: classes per group (paper: 4).
        shot: shot to compare (default: smallest common).
        labels: display names of the runs (default: run names).
        title: plot title.
    """
    frames = [read_per_class(p) for p in evals]
    table = per_class_table(frames, shot)
    study = case_study(table, k)
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    study.assign(shot=table.attrs["shot"]).to_csv(f"{prefix}.csv", index=False)
    runs = [c for c in table.columns if c != "n"]
    if labels is not None and len(labels) != len(runs):
        raise ValueError(f"--labels: {len(labels)} names for {len(runs)} runs")
    names = dict(zip(runs, labels or runs, strict=True))
    if title is None:
        title = f"{names[runs[0]]} vs {', '.join(names[r] for r in runs[1:])}: per-class accuracy"
    plot_case_study(study, f"{prefix}.png", names, title, table.attrs["shot"])
    return study


def comparable_runs(
    runs: dict, pairs: Sequence[tuple[str, str]], datasets: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """Case studies of a workflow's runs: {name: (run studied, run compared)}.

    Two runs are compared when they differ only in the adapter (same dataset, backbone, metric,
    way, shot, frames, seed; no variant or overrides). Used by the workflow's ``casestudy`` rule.

    Args:
        runs: run name -> :class:`d2st.tables.Run`.
        pairs: (adapter studied, adapter compared), e.g. ("d2st", "st").
        datasets: datasets to consider (the synthetic demo's).

    Returns:
        ``{dataset}_{backbone}_{metric}_{a}_vs_{b}`` -> (run name of a, run name of b).
    """
    groups: dict[tuple, dict[str, str]] = {}
    for name, r in runs.items():
        if r.dataset in datasets and r.variant is None and not r.overrides:
            key = (r.dataset, r.backbone, r.metric, r.way, r.shot, r.frames, r.seed)
            groups.setdefault(key, {})[r.adapter] = name
    studies = {}
    for (dataset, backbone, metric, *_), by_adapter in sorted(groups.items()):
        for a, b in pairs:
            if a in by_adapter and b in by_adapter:
                studies[f"{dataset}_{backbone}_{metric}_{a}_vs_{b}"] = (
                    by_adapter[a],
                    by_adapter[b],
                )
    return studies
