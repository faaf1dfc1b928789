"""The experiment planner: a workflow config's ``tables:`` -> runs, table rows, run dicts.

Plain data in, plain data out (no Snakemake, no torch). Every table of a workflow config
(``workflow/config/{default,paper}.yaml``) is a list of *rows*, each naming the settings of one
training run (adapter, backbone, metric, dataset, frames, variant, overrides) and the key columns
it fills in the paper's reported table. A ``grid`` multiplies the rows (e.g. over datasets). Runs
are keyed by :func:`d2st.naming.run_name`, so a run shared by several tables is trained and
evaluated once. :func:`run_dict` gives the mapping that :func:`d2st.config.resolve` turns into
the run's spec.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from d2st import catalog
from d2st.config import MM_VARIANT, merge, parse_override
from d2st.naming import run_name

# reported column -> run field that fills it (other key columns come from a row's `key:`)
COLUMN_FROM_RUN = {
    "backbone": "backbone",
    "dataset": "dataset",
    "num_frames": "frames",
    "metric": "metric",
}
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
        return not (self.adapter == "none" and catalog.parameter_free(self.metric))


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
    seed: int = 0  # the run's seed (seed rows of a demo table)


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
                if overrides.get("model.mm") and MM_VARIANT not in str(run.variant or ""):
                    raise MatrixError(
                        f"tables.{tname}.rows[{i}]: a model.mm run needs `variant: {MM_VARIANT}` "
                        "(D2ST-Adapter-MM runs are named ..._mm, as `d2st train` names them)"
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
                        val = catalog.reported_backbone(val)
                    elif col == "metric":
                        val = catalog.reported_metric(val)
                    key.setdefault(col, val)
                shots = [int(s) for s in row.get("shots", spec.get("shots", [1, 5]))]
                protocols = list(row.get("protocols", spec.get("protocols", ["standard"])))
                rows.append(TableRow(tname, run.name, key, shots, protocols, explicit, run.seed))
                eval_shots.setdefault(run.name, set()).update(shots)
        tables[tname] = rows
    return Matrix(runs, tables, {k: sorted(v) for k, v in eval_shots.items()}, kinds)


def _set_dotted(d: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """``d`` with ``dotted`` (``train.lr``) set to ``value``: the same nesting as ``a.b=value``."""
    nested = parse_override(f"{dotted}=null")
    leaf = nested
    for k in dotted.split(".")[:-1]:
        leaf = leaf[k]
    leaf[dotted.split(".")[-1]] = list(value) if isinstance(value, tuple) else value
    return merge(d, nested)


def _matches(match: Mapping[str, Any], run: Run) -> bool:
    for k, v in match.items():
        got = getattr(run, k)
        if isinstance(v, list) and got not in v or not isinstance(v, list) and got != v:
            return False
    return True


def run_dict(
    config: Mapping[str, Any],
    run: Run,
    *,
    train_shards: str,
    test_shards: str,
    weights: str,
    out_dir: str = catalog.RUNS_DIR,
) -> dict[str, Any]:
    """The mapping :func:`d2st.config.resolve` turns into one run's spec.

    Order (later wins): the official schedule of the run's dataset x backbone when the workflow
    config's ``official_schedule`` is true -> ``train_config`` (shared base) -> every matching
    ``hparams`` entry -> the run's ``overrides`` -> the run's identity (name, dataset, shards,
    backbone, adapter, metric, way/shot, frames, seed).
    """
    cfg: dict[str, Any] = copy.deepcopy(dict(config.get("train_config", {})))
    if config.get("official_schedule"):  # d2st.catalog.SCHEDULES via d2st.config.schedule
        cfg["schedule"] = f"{run.dataset}/{run.backbone}"
    for entry in config.get("hparams", []) or []:
        if _matches(entry.get("match", {}), run):
            for k, v in entry.get("set", {}).items():
                cfg = _set_dotted(cfg, k, v)
    for k, v in run.overrides:
        cfg = _set_dotted(cfg, k, v)
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
        cfg = _set_dotted(cfg, k, v)
    if not run.needs_training:
        cfg = _set_dotted(cfg, "train.episodes", 0)
    return cfg


# ----------------------------------------------------------------------------- lr selection


@dataclass(frozen=True)
class Selection:
    """The learning-rate selection protocol of a workflow config (``lr_selection:``).

    Every trained run whose ``train.lr`` is not fixed by its row gets the lr chosen for its
    *method* (the run with the selection seed and no variant): each value of ``values`` is
    trained with the same budget on the train classes, scored on ``partition`` (the validation
    classes, never the test classes) with ``episodes`` ``shot``-shot episodes, and
    :func:`choose_lr` applies :data:`SELECTION_RULE`.
    """

    values: tuple[float, ...]
    seed: int = 0
    partition: str = "val"
    episodes: int = 500
    shot: int = 1


SELECTION_RULE = (
    "highest mean 5-way accuracy on the validation classes; a tie within 0.5 points goes to "
    "the smaller lr"
)


def selection_of(config: Mapping[str, Any]) -> Selection | None:
    """The config's ``lr_selection`` section as a :class:`Selection` (None when absent/empty)."""
    sec = config.get("lr_selection") or {}
    if not sec.get("values"):
        return None
    return Selection(
        tuple(float(v) for v in sec["values"]),
        int(sec.get("seed", 0)),
        str(sec.get("partition", "val")),
        int(sec.get("episodes", 500)),
        int(sec.get("shot", 1)),
    )


def method_key(run: Run, sel: Selection) -> str:
    """The name of the method a run belongs to (its selection seed, no variant)."""
    return replace(run, seed=sel.seed, variant=None).name


def lr_candidates(runs: Mapping[str, Run], sel: Selection | None) -> dict[str, dict[float, Run]]:
    """method key -> {lr: candidate run} for every trained run whose lr the selection sets."""
    out: dict[str, dict[float, Run]] = {}
    if sel is None:
        return out
    for run in runs.values():
        if not run.needs_training or any(k == "train.lr" for k, _ in run.overrides):
            continue
        key = method_key(run, sel)
        if key in out:
            continue
        out[key] = {
            lr: replace(
                run,
                seed=sel.seed,
                variant=f"lr{lr:g}",
                overrides=tuple(sorted((*run.overrides, *lr_overrides(lr)))),
            )
            for lr in sel.values
        }
    return out


def lr_overrides(lr: float) -> tuple[tuple[str, float], ...]:
    """A selected lr as run overrides: the lr and a warm-up from lr / 5 (Table 13's ratio)."""
    return (("train.lr", lr), ("train.warmup_start_lr", lr / 5))


def chosen_lr(table: str | Path, method: str) -> float:
    """The lr the selection table (rule select_lr) chose for ``method`` (its method key)."""
    import pandas as pd

    df = pd.read_csv(table)
    chosen = df[(df.method_key == method) & df.chosen.astype(bool)]
    if len(chosen) != 1:
        raise MatrixError(f"{table}: no chosen lr for {method} ({len(chosen)} rows marked chosen)")
    return float(chosen.lr.iloc[0])


def choose_lr(scores: Mapping[float, float], tol: float = 0.5) -> float:
    """Apply :data:`SELECTION_RULE` to ``{lr: validation accuracy in %}``."""
    if not scores:
        raise MatrixError("lr selection: no validation scores")
    best = max(scores.values())
    return min(lr for lr, acc in scores.items() if acc >= best - tol)
