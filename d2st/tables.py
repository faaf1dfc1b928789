"""The result tables: eval.csv files + the paper's numbers -> one tidy table per paper table.

:func:`build_table` joins the ``eval.csv`` files of a table's runs (rows from
:func:`d2st.plan.expand_matrix`) with the reported numbers (``results/reported/tableK.csv``) into
the tidy long layout of the reported CSV, with ``reported`` and ``reproduced`` (accuracy in %)
side by side, plus ``ci95``; :func:`to_markdown` renders it. Plots are :mod:`d2st.plots`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from d2st.plan import MatrixError, TableRow

# reported columns that are measurements, not keys: reproduced next to the reported value
MEASURED = {
    "accuracy": "accuracy",
    "memory_gb": "memory_gb",
    "tunable_params_pct": "tunable_params_pct",
}
# reported columns that are descriptive (copied through, never used to match)
DESCRIPTIVE = {"backbone_params_m"}


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
    model_info: Mapping[str, Mapping[str, Any]] | None = None,
):
    """Join eval results with the reported numbers into one tidy table.

    Args:
        rows: the table's rows from :func:`expand_matrix`.
        evals: DataFrame of concatenated ``eval.csv`` files (CONTRACTS.md columns).
        reported: the paper's CSV as a DataFrame (``results/reported/tableK.csv``) or None.
        kind: ``paper`` (reported layout + reported/reproduced/ci95), ``demo`` (method x metric x
            protocol accuracy + ci95) or ``efficiency`` (parameters, memory, time per episode).
        train_episodes: run -> training episodes (for time per episode in ``efficiency``).
        model_info: run -> its ``d2st model-info --config`` JSON (``efficiency``): the parameter
            counts, GMACs per clip and adapters per block come from it (the counts equal the
            eval.csv ones, but exist before any training); memory and times from eval.csv.

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
                        shot=shot if shot is not None else 1,
                        seed=row.seed,
                        accuracy=acc,
                        ci95=ci,
                        run=row.run,
                    )
                elif kind == "efficiency":
                    rec = {
                        **row.explicit,
                        "backbone": row.key["backbone"],
                        "dataset": row.key["dataset"],
                    }
                    rec["shot"] = shot
                    rec.update(_efficiency(ev, (train_episodes or {}).get(row.run)))
                    if model_info is not None:
                        rec.update(_model_columns((model_info or {}).get(row.run)))
                    rec["run"] = row.run
                else:
                    raise MatrixError(f"unknown table kind {kind!r}")
                records.append(rec)
    df = pd.DataFrame.from_records(records)
    if kind == "demo" and not df.empty:
        df = with_seed_means(df)
    if kind == "efficiency" and not df.empty:
        df = df.drop_duplicates(subset=["run"]).drop(columns=["shot"])
    return df


# Student's t quantile t_{0.975, df} for df = 1..30 (standard tables); 1.96 beyond
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
        2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def seed_ci95(values) -> float:
    """95% t-interval half-width of the mean over seeds: t_{0.975, n-1} * sd / sqrt(n)."""
    import numpy as np

    v = np.asarray([x for x in values if x == x], dtype=np.float64)
    if len(v) < 2:
        return math.nan
    t = T975[len(v) - 2] if len(v) - 1 <= len(T975) else 1.96
    return float(t * v.std(ddof=1) / math.sqrt(len(v)))


def with_seed_means(df):
    """Demo rows per seed + one ``seed == "mean"`` row per group: mean and CI over seeds.

    A per-seed row's ``ci95`` is over its test episodes; a mean row's is the t-interval over the
    seeds (:func:`seed_ci95`), the spread that matters when runs differ by seed.
    """
    import pandas as pd

    keys = [c for c in df.columns if c not in ("seed", "accuracy", "ci95", "run")]
    out = []
    for _, g in df.groupby(keys, sort=False, dropna=False):
        g = g.sort_values("seed")
        out.append(g.assign(seed=g.seed.astype(str), n_seeds=1))
        mean = g.iloc[0].copy()
        mean["seed"], mean["run"] = "mean", ""
        mean["accuracy"] = g.accuracy.mean()
        mean["ci95"] = seed_ci95(g.accuracy)
        mean["n_seeds"] = int(g.accuracy.notna().sum())
        out.append(mean.to_frame().T)
    return pd.concat(out, ignore_index=True)


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


INFO_COLUMNS = ("tunable_params", "total_params", "tunable_params_pct")
INFO_COLUMNS += ("gmacs_per_clip", "adapters_per_block")


def _model_columns(info: Mapping[str, Any] | None) -> dict[str, float]:
    """The efficiency columns a model-info JSON gives (NaN for a missing one)."""
    if not info:
        return {k: math.nan for k in INFO_COLUMNS}
    return {
        "tunable_params": float(info["tunable_params"]),
        "total_params": float(info["total_params"]),
        "tunable_params_pct": float(info["tunable_pct"]),
        "gmacs_per_clip": float(info.get("gmacs_per_clip", math.nan)),
        "adapters_per_block": float(info["adapters_per_block"]),
    }


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
                elif c in ("tunable_params", "total_params", "adapters_per_block"):
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


def selection_table(candidates, evals, shot: int = 1):
    """The lr-selection table: one row per (method, lr) with its validation score and choice.

    Args:
        candidates: ``(method key, lr, candidate run, adapter, metric)`` tuples, from
            :func:`d2st.plan.lr_candidates`.
        evals: concatenated validation ``eval.csv`` rows of the candidate runs.
        shot: the shot the selection scores.
    """
    import pandas as pd

    from d2st.plan import SELECTION_RULE, choose_lr

    records = []
    for key, lr, name, adapter, metric in candidates:
        ev = _lookup_eval(evals, name, "standard", shot)
        records.append(
            {
                "method_key": key,
                "method": adapter,
                "metric": metric,
                "lr": lr,
                "val_accuracy": float(ev["accuracy"]) if ev is not None else math.nan,
                "val_ci95": float(ev["ci95"]) if ev is not None else math.nan,
                "run": name,
            }
        )
    df = pd.DataFrame.from_records(records)
    df["chosen"] = False
    for _, g in df.groupby("method_key", sort=False):
        scores = {
            float(r.lr): float(r.val_accuracy)
            for r in g.itertuples()
            if r.val_accuracy == r.val_accuracy
        }
        if scores:
            best = choose_lr(scores)
            df.loc[g.index[g.lr == best], "chosen"] = True
    df["rule"] = SELECTION_RULE
    return df
