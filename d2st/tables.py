"""The experiment matrix and the result tables.

Two halves, both plain data in, plain data out (no Snakemake, no torch):

1. **Experiment matrix** (:func:`expand_matrix`): every table of a workflow config
   (``workflow/config/{default,paper}.yaml``) is a list of *rows*, each row naming the settings of
   one training run (adapter, backbone, metric, dataset, frames, variant, overrides) and the
   key columns it fills in the paper's reported table. A ``grid`` multiplies the rows (e.g. over
   datasets). Runs are keyed by :func:`d2st.naming.run_name`, so a run shared by several tables is
   trained and evaluated once. :func:`run_config` turns a run into the YAML for ``d2st train``.
2. **Tables** (:func:`build_table`): join the ``eval.csv`` files of the runs with the reported
   numbers (``results/reported/tableK.csv``) into the tidy long layout of the reported CSV, with
   ``reported`` and ``reproduced`` (accuracy in %) side by side, plus ``ci95``; render markdown and
   plots.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from d2st.naming import run_name

# backbone names in configs/run names -> names in the paper's reported CSVs
REPORTED_BACKBONE = {
    "resnet18": "resnet18",
    "resnet34": "resnet34",
    "resnet50": "resnet50",
    "vit_b16": "clip_vit_b16",
    "vit_l14": "clip_vit_l14",
}
# reported column -> run field that fills it (other key columns come from a row's `key:`)
COLUMN_FROM_RUN = {
    "backbone": "backbone",
    "dataset": "dataset",
    "num_frames": "frames",
    "metric": "metric",
}
# metric names in configs -> names in the paper's tables
REPORTED_METRIC = {"bimhm": "Bi-MHM", "otam": "OTAM", "trx": "TRX"}
# reported columns that are measurements, not keys: reproduced next to the reported value
MEASURED = {
    "accuracy": "accuracy",
    "memory_gb": "memory_gb",
    "tunable_params_pct": "tunable_params_pct",
}
# reported columns that are descriptive (copied through, never used to match)
DESCRIPTIVE = {"backbone_params_m"}
# metrics without trainable parameters (a frozen `none` run needs no training under them)
PARAMETER_FREE_METRICS = {"bimhm", "otam"}
RUN_FIELDS = (
    "adapter",
    "backbone",
    "metric",
    "dataset",
    "way",
    "shot",
    "frames",
    "seed",
    "variant",
)


class MatrixError(ValueError):
    """A table of the experiment matrix is inconsistent; the message names the table and key."""


@dataclass(frozen=True)
class Run:
    """One training run: what ``d2st train`` needs beyond the shared defaults.

    Attributes:
        adapter, backbone, metric, dataset, way, shot, frames, seed, variant: the fields of
            :func:`d2st.naming.run_name` (``shot`` is the *training* shot).
        overrides: dotted run-config keys (``model.bottleneck_ratio``) -> value, as sorted tuples.
    """

    adapter: str
    backbone: str
    metric: str
    dataset: str
    way: int = 5
    shot: int = 1
    frames: int = 8
    seed: int = 0
    variant: str | None = None
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return run_name(
            self.adapter,
            self.backbone,
            self.metric,
            self.dataset,
            self.way,
            self.shot,
            self.frames,
            self.seed,
            self.variant,
        )

    @property
    def needs_training(self) -> bool:
        """False for a frozen backbone under a parameter-free metric (nothing to learn)."""
        return not (self.adapter == "none" and self.metric in PARAMETER_FREE_METRICS)


@dataclass
class TableRow:
    """One row group of a table: a run, the key columns it fills, the shots/protocols it reads."""

    table: str
    run: str
    key: dict[str, Any]
    shots: list[int]
    protocols: list[str] = field(default_factory=lambda: ["standard"])
    explicit: dict[str, Any] = field(
        default_factory=dict
    )  # the row's own `key:` (no derived columns)


@dataclass
class Matrix:
    """The expanded experiment matrix: runs by name, table rows by table, eval shots by run."""

    runs: dict[str, Run]
    tables: dict[str, list[TableRow]]
    eval_shots: dict[str, list[int]]
    kinds: dict[str, str]


def _freeze(d: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    out = []
    for k, v in sorted((d or {}).items()):
        out.append((k, tuple(v) if isinstance(v, list) else v))
    return tuple(out)


def expand_matrix(config: Mapping[str, Any], only: Iterable[str] | None = None) -> Matrix:
    """Expand the ``tables:`` section of a workflow config into runs and table rows.

    Args:
        config: the workflow config (validated against ``workflow/schemas/config.schema.yaml``).
        only: table names to expand (default: all tables in the config).

    Returns:
        A :class:`Matrix`. Raises :class:`MatrixError` when two tables give one run name
        different settings (add a ``variant`` to tell them apart) or a row is incomplete.
    """
    defaults = dict(config.get("run_defaults", {}))
    runs: dict[str, Run] = {}
    origin: dict[str, str] = {}
    tables: dict[str, list[TableRow]] = {}
    eval_shots: dict[str, set[int]] = {}
    kinds: dict[str, str] = {}
    wanted = set(only) if only is not None else None
    for tname, spec in config.get("tables", {}).items():
        if wanted is not None and tname not in wanted:
            continue
        kinds[tname] = spec.get("kind", "paper")
        grid = spec.get("grid", {}) or {}
        gkeys = list(grid)
        combos = list(itertools.product(*(grid[k] for k in gkeys))) or [()]
        rows: list[TableRow] = []
        for combo in combos:
            for i, row in enumerate(spec.get("rows", [])):
                settings = {**defaults, **spec.get("fixed", {}), **dict(zip(gkeys, combo))}
                settings.update(row.get("run", {}))
                overrides = {
                    **defaults.get("overrides", {}),
                    **spec.get("fixed", {}).get("overrides", {}),
                    **row.get("run", {}).get("overrides", {}),
                }
                missing = [
                    f for f in ("adapter", "backbone", "metric", "dataset") if f not in settings
                ]
                if missing:
                    raise MatrixError(f"tables.{tname}.rows[{i}]: run settings lack {missing}")
                unknown = set(settings) - set(RUN_FIELDS) - {"overrides"}
                if unknown:
                    raise MatrixError(
                        f"tables.{tname}.rows[{i}]: unknown run field(s) {sorted(unknown)}"
                    )
                run = Run(
                    **{k: settings[k] for k in RUN_FIELDS if k in settings},
                    overrides=_freeze(overrides),
                )
                prev = runs.get(run.name)
                if prev is not None and prev != run:
                    raise MatrixError(
                        f"run {run.name!r} is defined differently by tables.{origin[run.name]} and "
                        f"tables.{tname}: {prev} vs {run}; give one of them a `variant`"
                    )
                runs[run.name] = run
                origin.setdefault(run.name, tname)
                explicit = dict(row.get("key", {}))
                key = dict(explicit)
                for col, f in COLUMN_FROM_RUN.items():
                    val = getattr(run, f)
                    if col == "backbone":
                        val = REPORTED_BACKBONE.get(val, val)
                    elif col == "metric":
                        val = REPORTED_METRIC.get(val, val)
                    key.setdefault(col, val)
                shots = [int(s) for s in row.get("shots", spec.get("shots", [1, 5]))]
                protocols = list(row.get("protocols", spec.get("protocols", ["standard"])))
                rows.append(TableRow(tname, run.name, key, shots, protocols, explicit))
                eval_shots.setdefault(run.name, set()).update(shots)
        tables[tname] = rows
    return Matrix(runs, tables, {k: sorted(v) for k, v in eval_shots.items()}, kinds)


def _set_dotted(d: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    cur = d
    for k in keys[:-1]:
        cur = cur.setdefault(k, {})
    cur[keys[-1]] = list(value) if isinstance(value, tuple) else value


def _matches(match: Mapping[str, Any], run: Run) -> bool:
    for k, v in match.items():
        got = getattr(run, k)
        if isinstance(v, list) and got not in v or not isinstance(v, list) and got != v:
            return False
    return True


def run_config(
    config: Mapping[str, Any],
    run: Run,
    *,
    train_shards: str,
    test_shards: str,
    weights: str,
    out_dir: str,
) -> dict[str, Any]:
    """The resolved YAML dict for ``d2st train --config`` of one run.

    Order (later wins): the official preset of the run's dataset x backbone when ``presets`` is
    true (applied by ``d2st train``) -> ``train_config`` (shared base) -> every matching
    ``hparams`` entry -> the run's ``overrides`` -> the run's identity (name, dataset, shards,
    backbone, adapter, metric, way/shot, frames, seed).
    """
    cfg: dict[str, Any] = copy.deepcopy(dict(config.get("train_config", {})))
    if config.get("presets"):  # the official per dataset x backbone settings (d2st.config.preset)
        cfg["preset"] = f"{run.dataset}/{run.backbone}"
    for entry in config.get("hparams", []) or []:
        if _matches(entry.get("match", {}), run):
            for k, v in entry.get("set", {}).items():
                _set_dotted(cfg, k, v)
    for k, v in run.overrides:
        _set_dotted(cfg, k, v)
    ident = {
        "run.name": run.name,
        "run.out_dir": out_dir,
        "run.seed": run.seed,
        "data.dataset": run.dataset,
        "data.train_shards": train_shards,
        "data.test_shards": test_shards,
        "model.frames": run.frames,
        "model.backbone": run.backbone,
        "model.adapter": run.adapter,
        "model.weights": weights,
        "metric.name": run.metric,
        "train.way": run.way,
        "train.shot": run.shot,
    }
    for k, v in ident.items():
        _set_dotted(cfg, k, v)
    if not run.needs_training:
        _set_dotted(cfg, "train.episodes", 0)
    return cfg


# ----------------------------------------------------------------------------- tables


def _read_evals(paths: Iterable[str | Path]):
    import pandas as pd

    frames = [pd.read_csv(p) for p in paths]
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def _lookup_eval(evals, run: str, protocol: str, shot: int | None):
    if evals.empty:
        return None
    sel = (evals["run"] == run) & (evals["protocol"] == protocol)
    if shot is not None:
        sel &= evals["shot"] == shot
    hit = evals[sel]
    return None if hit.empty else hit.iloc[-1]


def _reported_row(reported, key: Mapping[str, Any], shot: int | None, table: str = ""):
    """The reported row matching ``key`` (on the key columns the reported CSV has) and ``shot``."""
    if reported is None or reported.empty:
        return None
    sel = reported["shot"] == shot if shot is not None else reported["shot"] == reported["shot"]
    for col, val in key.items():
        if col in reported.columns and col not in MEASURED and col not in DESCRIPTIVE:
            c = reported[col]
            if c.dtype.kind in "fi":
                sel &= c.astype(float) == float(val)
            else:
                sel &= c.astype(str) == str(val)
    hit = reported[sel]
    if len(hit) > 1:
        raise MatrixError(
            f"{table}: key {dict(key)} shot {shot} matches {len(hit)} reported rows; "
            "add the distinguishing column(s) to the row's `key:`"
        )
    return None if hit.empty else hit.iloc[0]


def build_table(
    rows: list[TableRow],
    evals,
    reported=None,
    kind: str = "paper",
    train_episodes: Mapping[str, int] | None = None,
):
    """Join eval results with the reported numbers into one tidy table.

    Args:
        rows: the table's rows from :func:`expand_matrix`.
        evals: DataFrame of concatenated ``eval.csv`` files (CONTRACTS.md columns).
        reported: the paper's CSV as a DataFrame (``results/reported/tableK.csv``) or None.
        kind: ``paper`` (reported layout + reported/reproduced/ci95), ``demo`` (method x metric x
            protocol accuracy + ci95) or ``efficiency`` (parameters, memory, time per episode).
        train_episodes: run -> training episodes (for time per episode in ``efficiency``).

    Returns:
        A pandas DataFrame; missing evaluations give NaN, never a dropped row.
    """
    import pandas as pd

    records: list[dict[str, Any]] = []
    for row in rows:
        for protocol in row.protocols:
            shots = row.shots if protocol == "standard" else [None]
            for shot in shots:
                ev = _lookup_eval(evals, row.run, protocol, shot)
                acc = float(ev["accuracy"]) if ev is not None else math.nan
                ci = float(ev["ci95"]) if ev is not None else math.nan
                if kind == "paper":
                    rep = _reported_row(reported, row.key, shot, row.table)
                    cols = list(reported.columns) if reported is not None else []
                    rec = {}
                    for c in cols:
                        if c == "accuracy":
                            continue
                        if c in MEASURED:
                            rec[c] = float(rep[c]) if rep is not None else math.nan
                            rec[f"reproduced_{c}"] = _measured(ev, c)
                        elif c in row.key and c not in DESCRIPTIVE:
                            rec[c] = row.key[c]
                        else:
                            rec[c] = rep[c] if rep is not None else None
                    rec["shot"] = shot
                    rec["reported"] = float(rep["accuracy"]) if rep is not None else math.nan
                    rec["reproduced"] = acc
                    rec["ci95"] = ci
                    rec["run"] = row.run
                elif kind == "demo":
                    rec = {**row.explicit, "metric": _metric_of(row, ev), "protocol": protocol}
                    rec.update(
                        shot=shot if shot is not None else 1, accuracy=acc, ci95=ci, run=row.run
                    )
                elif kind == "efficiency":
                    rec = {
                        **row.explicit,
                        "backbone": row.key["backbone"],
                        "dataset": row.key["dataset"],
                    }
                    rec["shot"] = shot
                    rec.update(_efficiency(ev, (train_episodes or {}).get(row.run)))
                    rec["run"] = row.run
                else:
                    raise MatrixError(f"unknown table kind {kind!r}")
                records.append(rec)
    df = pd.DataFrame.from_records(records)
    if kind == "efficiency" and not df.empty:
        df = df.drop_duplicates(subset=["run"]).drop(columns=["shot"])
    return df


def _metric_of(row: TableRow, ev) -> str:
    return str(row.key.get("metric", ev["metric"] if ev is not None else ""))


def _measured(ev, column: str) -> float:
    if ev is None:
        return math.nan
    if column == "memory_gb":
        v = ev.get("peak_mem_mb", math.nan)
        return float(v) / 1024.0 if v == v else math.nan
    if column == "tunable_params_pct":
        t, n = ev.get("tunable_params", math.nan), ev.get("total_params", math.nan)
        return 100.0 * float(t) / float(n) if n and n == n else math.nan
    return float(ev.get(column, math.nan))


def _efficiency(ev, episodes: int | None) -> dict[str, float]:
    if ev is None:
        keys = ("tunable_params", "total_params", "tunable_params_pct", "peak_mem_mb")
        return {k: math.nan for k in keys} | {
            "train_s_per_episode": math.nan,
            "eval_s_per_episode": math.nan,
        }
    out = {
        "tunable_params": float(ev["tunable_params"]),
        "total_params": float(ev["total_params"]),
        "tunable_params_pct": _measured(ev, "tunable_params_pct"),
        "peak_mem_mb": float(ev["peak_mem_mb"]),
    }
    out["train_s_per_episode"] = float(ev["train_time_s"]) / episodes if episodes else math.nan
    n_eval = float(ev["episodes"]) if "episodes" in ev else math.nan
    out["eval_s_per_episode"] = float(ev["eval_time_s"]) / n_eval if n_eval else math.nan
    return out


def trained_episodes(run_dirs: Mapping[str, str | Path]) -> dict[str, int]:
    """Episodes each run was trained for, from its ``done`` marker (``{"episodes": N, ...}``)."""
    import json

    out = {}
    for run, d in run_dirs.items():
        done = Path(d) / "done"
        try:
            out[run] = int(json.loads(done.read_text()).get("episodes", 0))
        except (OSError, ValueError, AttributeError):
            continue
    return out


def to_markdown(df, title: str | None = None, digits: int = 1) -> str:
    """Render a table as GitHub markdown (no optional dependency such as tabulate)."""
    lines = [f"## {title}", ""] if title else []
    cols = list(df.columns)
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, float):
                if math.isnan(v):
                    cells.append("")
                elif c in ("tunable_params", "total_params"):
                    cells.append(f"{v:.0f}")
                elif c.endswith("per_episode"):
                    cells.append(f"{v:.4f}")
                else:
                    cells.append(f"{v:.{digits}f}")
            else:
                cells.append("" if v is None else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- plots


def plot_table(df, kind: str, out: str | Path, title: str = "") -> Path:
    """One figure per table, chosen by what the table varies (matplotlib, Agg backend).

    - demo: reversed-pair binary accuracy and 5-way accuracy per method (bars, ± ci95);
    - tables with several shots per row (Table 11): accuracy vs shots;
    - tables with ``memory_gb`` (Tables 7, 9, 10): memory vs accuracy, reported and reproduced;
    - otherwise: reported vs reproduced accuracy per row (bars).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    fig, ax = plt.subplots(figsize=(10 if kind == "demo" else 7, 4))
    if df.empty:
        ax.text(0.5, 0.5, "no results yet", ha="center")
    elif kind == "demo":
        _plot_demo(ax, df)
    elif kind == "efficiency":
        labels = [str(r.get("method", r["run"])) for _, r in df.iterrows()]
        ax.bar(labels, df["tunable_params"].fillna(0))
        ax.set_ylabel("tunable parameters")
        ax.tick_params(axis="x", rotation=30)
    elif df["shot"].nunique() > 2:
        group_cols = [c for c in ("method", "backbone") if c in df.columns]
        for key, g in df.groupby(group_cols):
            g = g.sort_values("shot")
            label = " / ".join(map(str, key if isinstance(key, tuple) else (key,)))
            (line,) = ax.plot(g["shot"], g["reproduced"], marker="o", label=f"{label} (ours)")
            ax.plot(
                g["shot"], g["reported"], ls="--", color=line.get_color(), label=f"{label} (paper)"
            )
        ax.set_xlabel("shots (K)")
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize=6)
    elif "memory_gb" in df.columns:
        ax.scatter(df["memory_gb"], df["reported"], label="paper")
        if "reproduced_memory_gb" in df.columns:
            ax.scatter(df["reproduced_memory_gb"], df["reproduced"], marker="x", label="ours")
        ax.set_xlabel("peak memory (GB)")
        ax.set_ylabel("accuracy (%)")
        ax.legend()
    else:
        keys = [c for c in df.columns if c not in ("reported", "reproduced", "ci95", "run")]
        keys = [c for c in keys if not c.startswith("reproduced_") and df[c].nunique() > 1] or [
            "run"
        ]
        labels = [" ".join(str(r[c]) for c in keys) for _, r in df.iterrows()]
        x = range(len(df))
        ax.bar([i - 0.2 for i in x], df["reported"].fillna(0), width=0.4, label="paper")
        ax.bar(
            [i + 0.2 for i in x],
            df["reproduced"].fillna(0),
            width=0.4,
            yerr=df["ci95"].fillna(0),
            label="ours",
        )
        ax.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=6)
        ax.set_ylabel("accuracy (%)")
        ax.legend()
    if kind == "demo" and not df.empty:
        fig.suptitle(title, fontsize=9)
    else:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def _plot_demo(ax, df) -> None:
    """Grouped bars (method x metric) of 5-way 1-shot accuracy (left) and reversed-pair binary
    accuracy (right, dotted line = chance)."""
    fig = ax.figure
    ax.remove()
    panels = [("standard", 1, "5-way 1-shot accuracy (%)", 20.0)]
    if (df["protocol"] == "reversed_pairs").any():
        panels.append(("reversed_pairs", None, "reversed-pair binary accuracy (%)", 50.0))
    methods = list(dict.fromkeys(df["method"]))
    metrics = list(dict.fromkeys(df["metric"]))
    width = 0.8 / max(1, len(metrics))
    for k, (protocol, shot, label, chance) in enumerate(panels):
        a = fig.add_subplot(1, len(panels), k + 1)
        sub = df[df["protocol"] == protocol]
        if shot is not None:
            sub = sub[sub["shot"] == shot]
        for j, m in enumerate(metrics):
            xs, acc, ci = [], [], []
            for i, me in enumerate(methods):
                v = sub[(sub["method"] == me) & (sub["metric"] == m)]
                if len(v):
                    xs.append(i + (j - (len(metrics) - 1) / 2) * width)
                    acc.append(float(v["accuracy"].iloc[0]))
                    ci.append(float(v["ci95"].iloc[0]))
            a.bar(xs, acc, width, yerr=ci, label=m)
        a.axhline(chance, color="grey", ls=":", lw=1)
        a.set_xticks(range(len(methods)), methods, rotation=30, fontsize=7)
        a.set_ylabel(label, fontsize=8)
        a.set_ylim(0, 100)
        if k == 0:
            a.legend(title="metric", fontsize=7)


def plot_per_class(per_class, out: str | Path, title: str = "") -> Path:
    """Per-class accuracy (rows: class, one bar group per run) from ``per_class.csv`` files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    fig, ax = plt.subplots(figsize=(8, 4))
    if per_class.empty:
        ax.text(0.5, 0.5, "no per-class results", ha="center")
    else:
        shot = per_class["shot"].min()
        pc = per_class[per_class["shot"] == shot]
        piv = pc.pivot_table(index="class", columns="run", values="accuracy")
        piv.plot.bar(ax=ax, width=0.8, fontsize=6)
        ax.set_ylabel(f"accuracy (%), {shot}-shot")
        ax.legend(fontsize=5)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
