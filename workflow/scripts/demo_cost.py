"""Where a workflow run's time went, per rule, from Snakemake's own log (results/bench/demo.csv).

    python workflow/scripts/demo_cost.py --log .snakemake/log/<run>.snakemake.log \\
        --label after --commit $(git rev-parse --short HEAD) --out results/bench/demo.csv

One row per rule: jobs, the summed wall seconds of its jobs, core-seconds (wall x the threads
the job was given, at most --cores) and the run's wall time from the first job's start to the
last job's end (Snakemake's start-up and DAG building are not in it). Rows of another label
already in --out are kept, so a before/after pair sits in one file. Job times come from the
log's one-second timestamps, so a job shorter than a second may read 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
from pathlib import Path

import pandas as pd

STAMP = re.compile(r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]")


def jobs_of(log: Path, cores: int) -> pd.DataFrame:
    """One row per finished job: rule, start and end (seconds from the first job), threads."""
    starts, rows, now, current = {}, [], None, None
    for line in log.read_text().splitlines():
        if m := STAMP.match(line):
            now = dt.datetime.strptime(" ".join(m.group(1).split()), "%a %b %d %H:%M:%S %Y")
        elif m := re.match(r"(?:local)?rule (\w+):", line):
            current = {"rule": m.group(1), "start": now, "threads": 1}
        elif (m := re.match(r"\s+threads: (\d+)", line)) and current:
            current["threads"] = min(cores, int(m.group(1)))
        elif (m := re.match(r"\s+jobid: (\d+)", line)) and current:
            starts[m.group(1)] = current
        elif m := re.match(r"Finished jobid: (\d+)", line):
            job = starts[m.group(1)]
            rows.append({**job, "end": now})
    df = pd.DataFrame(rows)
    t0 = df.start.min()
    df["start"] = (df.start - t0).dt.total_seconds()
    df["end"] = (df.end - t0).dt.total_seconds()
    return df


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--log", type=Path, required=True, help="a .snakemake/log/*.snakemake.log")
    p.add_argument("--label", required=True, help="e.g. before / after")
    p.add_argument("--commit", default="", help="the commit the run used")
    p.add_argument("--cores", type=int, default=2, help="the run's --cores")
    p.add_argument("--out", type=Path, default=Path("results/bench/demo.csv"))
    a = p.parse_args()
    jobs = jobs_of(a.log, a.cores)
    jobs["seconds"] = jobs.end - jobs.start
    jobs["core_seconds"] = jobs.seconds * jobs.threads
    per_rule = jobs.groupby("rule", sort=False).agg(
        jobs=("seconds", "size"),
        job_seconds=("seconds", "sum"),
        core_seconds=("core_seconds", "sum"),
    )
    per_rule.loc["(all rules)"] = per_rule.sum()
    out = per_rule.reset_index().assign(
        label=a.label, commit=a.commit, wall_s=jobs.end.max(), cores=a.cores,
        cpu=_cpu(), machine=f"{platform.machine()}, {os.cpu_count()} cores",
    )  # fmt: skip
    if a.out.is_file():
        old = pd.read_csv(a.out)
        out = pd.concat([old[old.label != a.label], out], ignore_index=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(a.out, index=False)
    print(out[out.label == a.label].to_string(index=False))


def _cpu() -> str:
    for line in (
        Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    ):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
