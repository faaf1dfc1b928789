"""What the synthetic demo reports besides its table: stage hashes, the README block, the seed plot.

- :func:`stage_hash_rows`: SHA-256 of every stage's outputs (data, trunk, run weights, table), so a
  table that differs between two machines can be traced to the first stage that differs.
- :func:`readme_block` / :func:`update_readme`: the README's demo numbers, generated from
  ``results/tables/demo.csv`` (mean ± 95% CI over seeds) and ``demo_lr.csv`` (the learning rate
  chosen per method on the validation classes), never typed by hand.
- :func:`plot_demo_seeds`: per metric, 5-way 1-shot and reversed-pair accuracy per method: the mean
  over seeds (bar) with its 95% CI (error bar) and one dot per seed.

The demo table (``build_table`` kind ``demo``) has one row per method x metric x protocol x shot x
seed, plus a row with ``seed == "mean"`` per method x metric x protocol x shot whose ``ci95`` is the
t-interval over seeds, t_{0.975, n-1} * sd / sqrt(n).
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

STAGES = ("data", "trunk", "run", "table")  # pipeline order: a divergence shows first upstream
HASH_COLUMNS = ["stage", "item", "path", "sha256"]
BIMHM = "Bi-MHM"
CHANCE = {"standard": 20.0, "reversed_pairs": 50.0}  # 5-way; binary on the time-reversed pairs


# ---------------------------------------------------------------- stage hashes
def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks of ``chunk`` bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def stage_hash_rows(items: Iterable[tuple[str, str, str | Path]]) -> pd.DataFrame:
    """Hash the files of the pipeline's stages into one table.

    Args:
        items: ``(stage, item, path)`` triples: ``stage`` one of :data:`STAGES`, ``item`` what the
            file is (a shard folder, a trunk, a run name, a table name), ``path`` the file.
            Repeated triples are hashed once.

    Returns:
        Columns ``stage, item, path, sha256``, sorted by stage in pipeline order, then item, then
        path: the same files give the same table whatever order they were listed in.

    Raises:
        ValueError: an unknown stage. FileNotFoundError: a missing file (named).
    """
    rows = []
    for stage, item, path in dict.fromkeys((s, str(i), str(p)) for s, i, p in items):
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r} of {path}: expected one of {', '.join(STAGES)}")
        if not Path(path).is_file():
            raise FileNotFoundError(f"stage {stage} ({item}): no file {path}")
        rows.append((STAGES.index(stage), stage, item, path, sha256_file(path)))
    rows.sort()
    return pd.DataFrame([r[1:] for r in rows], columns=HASH_COLUMNS)


# ---------------------------------------------------------------- README block
def machine_line() -> str:
    """``CPU model, N cores, torch X`` of this machine (CPU model from /proc/cpuinfo on Linux)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import torch

    return f"{cpu}, {cores} cores, torch {torch.__version__}"


def format_duration(seconds: float) -> str:
    """``754`` -> ``12 min 34 s``; under a minute ``42 s``."""
    s = int(round(seconds))
    return f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"


def _metric_key(name: str) -> str:
    """``Bi-MHM``, ``bimhm``, ``bi_mhm`` -> ``bimhm``."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _is_mean(seed) -> pd.Series:
    return seed.astype(str).str.strip() == "mean"


def _mean_ci(rows: pd.DataFrame) -> str:
    """One mean row as ``66.4 ± 1.2 (3 seeds)``; ``—`` when absent."""
    if rows.empty:
        return "—"
    r = rows.iloc[0]
    n = int(r["n_seeds"]) if pd.notna(r.get("n_seeds")) else 1
    seeds = f"{n} seed{'s' if n != 1 else ''}"
    if pd.isna(r["accuracy"]):
        return "—"
    if pd.isna(r.get("ci95")):
        return f"{r['accuracy']:.1f} ({seeds})"
    return f"{r['accuracy']:.1f} ± {r['ci95']:.1f} ({seeds})"


def _chosen(lr: pd.DataFrame) -> pd.DataFrame:
    flag = lr["chosen"]
    if flag.dtype != bool:
        flag = flag.astype(str).str.strip().str.lower().isin(["true", "1", "yes"])
    return lr[flag]


def _lr_cell(chosen: pd.DataFrame, method: str, metric: str) -> str:
    rows = chosen[
        (chosen["method"] == method) & (chosen["metric"].map(_metric_key) == _metric_key(metric))
    ]
    if rows.empty:
        return "—"
    if pd.isna(rows.iloc[0]["lr"]) or str(rows.iloc[0]["lr"]).strip() == "":
        return "— (no training)"
    r = rows.iloc[0]
    cell = f"{float(r['lr']):g}"
    if pd.notna(r.get("val_accuracy")):
        ci = f" ± {r['val_ci95']:.1f}" if pd.notna(r.get("val_ci95")) else ""
        cell += f" (val {r['val_accuracy']:.1f}{ci})"
    return cell


def readme_block(
    demo_csv: str | Path,
    lr_csv: str | Path,
    machine: str,
    wall_s: float,
    metrics: Iterable[str] | None = None,
    command: str = "make demo",
    note: str = "",
) -> str:
    """The README's demo numbers as markdown, generated from the demo and lr-selection tables.

    One table per metric (Bi-MHM first), one row per method (table order): 5-way 1-shot, 5-way
    5-shot and reversed-pair accuracy as ``mean ± 95% CI (n seeds)`` from the ``seed == "mean"``
    rows, and the learning rate chosen on the validation classes (with its validation accuracy).

    Args:
        demo_csv: ``results/tables/demo.csv`` (columns method, metric, protocol, shot, seed,
            accuracy, ci95, n_seeds, ...).
        lr_csv: ``results/tables/demo_lr.csv`` (method, metric, lr, val_accuracy, val_ci95,
            chosen, rule).
        machine: the machine line (:func:`machine_line`).
        wall_s: wall-clock seconds of the command that made the tables.
        metrics: metrics to show (default: every metric of the table).
        command: the command named in the block.
        note: said after the wall time (e.g. that the run reused earlier outputs).

    Returns:
        Markdown text (ends with a newline), to go between the README's markers.
    """
    df = pd.read_csv(demo_csv, dtype={"seed": str})
    missing = {"method", "metric", "protocol", "shot", "seed", "accuracy", "ci95"} - set(df)
    if missing:
        raise ValueError(f"{demo_csv}: missing column(s) {', '.join(sorted(missing))}")
    lr = pd.read_csv(lr_csv)
    chosen = _chosen(lr)
    mean = df[_is_mean(df["seed"])]
    present = list(dict.fromkeys(df["metric"]))
    if metrics is not None:
        wanted = {_metric_key(m) for m in metrics}
        present = [m for m in present if _metric_key(m) in wanted]
    present.sort(key=lambda m: _metric_key(m) != _metric_key(BIMHM))  # stable: Bi-MHM first
    methods = list(dict.fromkeys(df["method"]))
    out = [
        f"Generated by `{command}` from `{demo_csv}` and `{lr_csv}` "
        f"(do not edit by hand): {machine}; wall time {format_duration(wall_s)}"
        + (f" ({note})." if note else "."),
        "Accuracy in %, mean ± 95% CI over seeds (t-interval); chance 20% (5-way), 50% (pairs).",
        "",
    ]
    for metric in present:
        m = mean[mean["metric"] == metric]
        cols = [
            (f"{metric} 5-way 1-shot", "standard", 1),
            (f"{metric} 5-way 5-shot", "standard", 5),
            (f"{metric} reversed pairs", "reversed_pairs", 1),
        ]
        out.append(f"| method | {' | '.join(c[0] for c in cols)} | lr (val acc.) |")
        out.append("|---" * (len(cols) + 2) + "|")
        for method in methods:
            if not ((df["method"] == method) & (df["metric"] == metric)).any():
                continue
            cells = [
                _mean_ci(
                    m[(m["method"] == method) & (m["protocol"] == p) & (m["shot"].astype(int) == s)]
                )
                for _, p, s in cols
            ]
            out.append(f"| {method} | {' | '.join(cells)} | {_lr_cell(chosen, method, metric)} |")
        out.append("")
    rules = [str(r) for r in dict.fromkeys(chosen.get("rule", pd.Series(dtype=str)).dropna())]
    if rules:
        out.append(f"Learning rate rule: {'; '.join(rules)}")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def update_readme(readme_path: str | Path, block: str, name: str = "demo") -> None:
    """Replace the text between ``<!-- {name}:start -->`` and ``<!-- {name}:end -->``.

    Args:
        readme_path: the README (rewritten in place; the markers stay).
        block: the new text between the markers.
        name: the marker pair (``demo``, ``demo-full``).

    Raises:
        ValueError: the file lacks the markers, or has them more than once or out of order.
    """
    path = Path(readme_path)
    text = path.read_text()
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    i, j = text.find(start), text.find(end)
    if i < 0 or j < 0 or j < i or text.count(start) != 1 or text.count(end) != 1:
        raise ValueError(
            f"{path}: needs exactly one '{start}' followed by one '{end}' (found {text.count(start)}"
            f" start, {text.count(end)} end marker(s))"
        )
    body = block if block.endswith("\n") else block + "\n"
    path.write_text(text[: i + len(start)] + "\n" + body + text[j:])


# ---------------------------------------------------------------- the seed plot
def plot_demo_seeds(df: pd.DataFrame, out: str | Path, title: str = "") -> Path:
    """Per metric, a panel of 5-way 1-shot and reversed-pair accuracy per method with seed spread.

    Bar: the mean over seeds (the ``seed == "mean"`` row); error bar: its 95% CI; dots: one per
    seed. Dashed lines: chance (20% for 5-way, 50% for the binary reversed pairs).

    Args:
        df: the demo table (method, metric, protocol, shot, seed, accuracy, ci95).
        out: the PNG to write.
        title: the figure title.

    Returns:
        ``out`` as a Path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = Path(out)
    df = df.copy()
    df["seed"] = df["seed"].astype(str).str.strip()
    df = df[df["shot"].astype(int) == 1]
    metrics = list(dict.fromkeys(df["metric"]))
    metrics.sort(key=lambda m: _metric_key(m) != _metric_key(BIMHM))
    panels = [
        ("standard", "5-way 1-shot", "tab:blue"),
        ("reversed_pairs", "reversed pairs", "tab:orange"),
    ]
    width = 0.38
    n_methods = max(1, df.groupby("metric")["method"].nunique().max() if len(df) else 1)
    n_panels = max(1, len(metrics))
    panel_w = max(6.0 if n_panels == 1 else 4.5, 0.8 * n_methods + 1.5)
    ncol = 5 if panel_w * n_panels >= 11 else 2
    legend_rows = -(-5 // ncol)
    height = 4.0 + 0.25 * legend_rows
    fig, axes = plt.subplots(
        1, n_panels, figsize=(panel_w * n_panels, height), sharey=True, squeeze=False
    )
    rng = np.random.default_rng(0)  # dot jitter only
    handles = {}
    for ax, metric in zip(axes[0], metrics or [None], strict=False):
        if metric is None:
            ax.text(0.5, 0.5, "no results yet", ha="center", transform=ax.transAxes)
            continue
        d = df[df["metric"] == metric]
        methods = list(dict.fromkeys(d["method"]))
        x = np.arange(len(methods))
        for k, (protocol, label, color) in enumerate(panels):
            off = (k - 0.5) * width
            p = d[d["protocol"] == protocol]
            mean = p[p["seed"] == "mean"].set_index("method").reindex(methods)
            handles[f"{label}: mean ± 95% CI"] = ax.bar(
                x + off,
                mean["accuracy"],
                width,
                yerr=mean["ci95"].fillna(0),
                color=color,
                alpha=0.5,
                edgecolor=color,
                error_kw={"elinewidth": 1.3, "capsize": 3, "ecolor": "0.15"},
            )
            seeds = p[p["seed"] != "mean"]
            for i, method in enumerate(methods):
                acc = seeds.loc[seeds["method"] == method, "accuracy"].to_numpy(float)
                jitter = rng.uniform(-0.09, 0.09, len(acc))
                handles["one seed"] = ax.scatter(
                    np.full(len(acc), i + off) + jitter,
                    acc,
                    s=16,
                    color="black",
                    edgecolor="white",
                    linewidth=0.5,
                    zorder=3,
                )
            chance = CHANCE[protocol]
            handles[f"chance, {label} ({chance:.0f}%)"] = ax.axhline(
                chance, color=color, ls="--", lw=1.2
            )
        ax.set_xticks(x, methods)
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.set_title(str(metric))
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("accuracy (%)")
    axes[0][0].set_ylim(0, 100)
    order = [k for k in handles if "mean" in k] + ["one seed"]
    order += [k for k in handles if k.startswith("chance")]
    order = [k for k in order if k in handles]
    if order:
        fig.legend(
            [handles[k] for k in order],
            order,
            loc="lower center",
            ncol=ncol,
            frameon=False,
            fontsize=9,
        )
    if title:
        import textwrap

        width = max(40, int(9 * fig.get_figwidth()))  # characters that fit the figure at 11 pt
        fig.suptitle("\n".join(textwrap.wrap(title, width)), fontsize=11)
    fig.tight_layout(rect=(0, (0.12 + 0.22 * legend_rows) / height, 1, 1))  # legend below
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
