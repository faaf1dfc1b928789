# What the user sees around a run: the plan's GPU-hours (dry-run too) and an end-of-run summary.
import json
import logging
import time

from snakemake.logging import logger

_T0 = (
    time.time()
)  # the workflow was parsed: anything written after this was made by this run


# the GPU rules and the config values that add up to their runtime limit (minutes, attempt 1),
# as their `resources:` add them (train.smk: a run's job trains and evaluates it)
GPU_RULES = {
    "train": ("train_runtime", "eval_runtime"),
}


def gpu_hours(job_counts):
    """{rule: (jobs, gpus, runtime min, GPU-hours)} of the GPU rules among `job_counts`."""
    gpus = RES["gpu"]
    out = {}
    for name, keys in GPU_RULES.items():
        n = job_counts.get(name, 0)
        minutes = sum(RES[k] for k in keys)
        if gpus and n:
            out[name] = (n, gpus, minutes, n * gpus * minutes / 60)
    return out


class _PlanSummary(logging.Handler):
    """Once the DAG's job counts are logged (real run and dry-run alike), add its GPU-hours."""

    def __init__(self):
        super().__init__(level=logging.INFO)
        self.done = False

    def emit(self, record):
        stats = getattr(record, "stats", None)
        if self.done or not isinstance(stats, dict) or not stats:
            return
        self.done = True
        rows = gpu_hours(stats)
        if not rows:
            return
        total = sum(r[3] for r in rows.values())
        parts = ", ".join(
            f"{name} {n} x {g} GPU x {rt} min" for name, (n, g, rt, _) in rows.items()
        )
        logger.info(
            f"d2st plan: at most {total:,.1f} GPU-hours ({parts}; from the rules' runtime "
            "limits, config resources.*_runtime, and resources.gpu)"
        )


if not any(isinstance(h, _PlanSummary) for h in logger.handlers):
    logger.addHandler(_PlanSummary())


def _mtime(path):
    try:
        return os.path.getmtime(path)
    except OSError:
        return None


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def run_summary():
    """Lines of the end-of-workflow summary: tables written, report, runs trained vs reused."""
    lines = [f"d2st: finished in {time.time() - _T0:,.0f} s (wall time)"]
    tables = [p for t in TABLES for p in table_outputs(t) if p.endswith(".csv")]
    fresh = [p for p in tables if (_mtime(p) or 0) >= _T0]
    present = [p for p in tables if _mtime(p) is not None]
    if present:
        lines.append(
            f"  tables ({len(fresh)} written now, {len(present) - len(fresh)} unchanged): "
            + ", ".join(present)
        )
    done = {r: _mtime(f"{RUNS_DIR}/{r}/done") for r in RUNS}
    trained = sorted(r for r, t in done.items() if t is not None and t >= _T0)
    reused = sorted(r for r, t in done.items() if t is not None and t < _T0)
    adopted = [
        r for r in trained if "reused_from" in _read_json(f"{RUNS_DIR}/{r}/done")
    ]
    lines.append(
        f"  runs: {len(trained) - len(adopted)} trained now, {len(adopted)} adopted from their "
        f"identical lr candidate, {len(reused)} from earlier runs ({RUNS_DIR}/)"
    )
    html = f"{RESULTS}/report.html"
    if os.path.exists(html):
        lines.append(f"  report: {html} (refresh: snakemake --report {html})")
    else:
        lines.append(
            f"  report: snakemake --report {html}  (tables, plots, training curves)"
        )
    return lines


onsuccess:
    for _line in run_summary():
        logger.info(_line)
