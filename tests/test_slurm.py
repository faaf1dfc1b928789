"""The SLURM profile, for real: README.md's SLURM command for the tiny test config, run as
written on a running cluster, must give the same tables as a local run.

Needs a SLURM cluster with an idle node (CI starts one: `bash workflow/scripts/slurm_local.sh up`).
Skipped with the reason otherwise; with D2ST_REQUIRE_SLURM=1 (set by .ci/run) a missing cluster
is a failure instead. Partition: $D2ST_SLURM_PARTITION (default: the cluster's default partition).
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
# the command README.md shows, run as written (CI: on a real single-node SLURM)
README_COMMAND_PREFIX = (
    "snakemake --profile workflow/profiles/slurm --configfile=.test/config/config.yaml"
)
STAGES = ("synth", "prepare", "pretrain", "resolve", "train", "evaluate")
LIMIT_S = int(os.environ.get("D2ST_SLURM_TIMEOUT", "900"))

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _unavailable() -> str | None:
    """Why the SLURM test cannot run here, or None."""
    if shutil.which("sinfo") is None:
        return "sinfo not found (no SLURM client); CI starts one with workflow/scripts/slurm_local.sh up"
    try:
        res = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"sinfo failed: {e}"
    if res.returncode != 0:
        return f"sinfo failed: {res.stderr.strip()[:200]}"
    states = res.stdout.split()
    if not any(s.rstrip("*") in ("idle", "mixed") for s in states):
        return f"no idle SLURM node (states: {states or 'none'})"
    return None


@pytest.fixture(scope="module")
def cluster():
    why = _unavailable()
    if why:
        if os.environ.get("D2ST_REQUIRE_SLURM") == "1":
            pytest.fail(f"D2ST_REQUIRE_SLURM=1 but the cluster is not usable: {why}")
        pytest.skip(why)
    missing = [s for s in STAGES if importlib.util.find_spec(f"d2st.commands.{s}") is None]
    if missing:
        pytest.skip(f"stage CLIs not there yet: {missing}")


def readme_slurm_command() -> list[str]:
    """The README's SLURM command for the test config, as written (one line of a bash block)."""
    text = (REPO / "README.md").read_text()
    for line in text.splitlines():
        if line.startswith(README_COMMAND_PREFIX):
            return shlex.split(line.split(" #", 1)[0])
    raise AssertionError(f"README.md has no line starting with {README_COMMAND_PREFIX!r}")


def _run(workdir: Path, cmd: list[str]) -> subprocess.CompletedProcess:
    """`cmd` run in `workdir`, which sees the repository's workflow/ and .test/ (symlinks), so
    the command's relative paths mean what they mean in a clone."""
    for name in ("workflow", ".test"):
        (workdir / name).symlink_to(REPO / name)
    exe = [str(SNAKEMAKE), *cmd[1:]] if cmd[0] == "snakemake" else cmd
    # SIGKILL: a status-polling hang ignores SIGTERM/SIGINT (see workflow/profiles/README.md)
    full = ["timeout", "-s", "KILL", str(LIMIT_S), *exe]
    return subprocess.run(full, cwd=workdir, capture_output=True, text=True, timeout=LIMIT_S + 30)


def _tables(workdir: Path) -> dict[str, pd.DataFrame]:
    import yaml

    # the test config writes its own results folder (results_dir), never the demo's results/
    cfg = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    tables = workdir / cfg["results_dir"] / "tables"
    return {name: pd.read_csv(tables / f"{name}.csv") for name in ("demo", "efficiency_demo")}


def test_slurm_profile_matches_local_run(cluster, tmp_path, tmp_path_factory):
    from test_workflow import tiny_local_run  # the session's local run of the same config

    local = tiny_local_run(tmp_path_factory)
    remote = tmp_path / "slurm"
    remote.mkdir()

    cmd = readme_slurm_command()
    partition = os.environ.get("D2ST_SLURM_PARTITION")
    if partition:  # a site's test partition; CI uses the cluster's default one
        cmd += ["--default-resources", f"slurm_partition={partition}", "mem_mb=1500", "runtime=10"]
    res = _run(remote, cmd)
    log = res.stdout[-4000:] + res.stderr[-4000:]
    assert res.returncode == 0, (
        f"snakemake on SLURM failed (rc {res.returncode}; -9 = killed by timeout):\n{log}"
    )
    # the jobs really went through sbatch: one sbatch log per submitted job, by rule
    submitted = {
        p.relative_to(remote / "logs" / "slurm").parts[0]
        for p in (remote / "logs" / "slurm").rglob("*.log")
    }
    assert {"rule_train", "rule_prepare"} <= submitted, submitted
    # train jobs asked for the (fake) GPU (test config resources.gpu: 1): sbatch --gpus=1
    train_ids = [p.stem for p in (remote / "logs" / "slurm" / "rule_train").rglob("*.log")]
    tres = subprocess.run(
        ["squeue", "-t", "all", "-h", "-j", ",".join(train_ids), "-O", "JobID:12,tres-per-job:40"],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    assert tres and all("gpu" in line for line in tres), tres

    want, got = _tables(local), _tables(remote)
    for name in ("demo",):
        a = want[name].drop(columns=[c for c in want[name].columns if "time" in c], errors="ignore")
        b = got[name].drop(columns=[c for c in got[name].columns if "time" in c], errors="ignore")
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=f"{name}.csv local vs SLURM")
    # efficiency: parameter counts are exact; memory and times are measurements
    pd.testing.assert_series_equal(
        want["efficiency_demo"]["tunable_params"], got["efficiency_demo"]["tunable_params"]
    )
