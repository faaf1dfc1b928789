"""The Snakemake workflow: DAG shape of the demo/paper configs, config validation, lint, failure
messages, and one real tiny end-to-end run (workflow/config/test.yaml).

Every snakemake call runs in a temporary working directory (`--directory`), so the repository's
own results/ and data/ are never touched.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from d2st.plan import expand_matrix

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
CONFIG = REPO / "workflow" / "config"
STAGES = ("synth", "prepare", "pretrain", "resolve", "train", "evaluate")
# the test config's own results folder (results_dir): never the demo's results/
TEST_RESULTS = yaml.safe_load((CONFIG / "test.yaml").read_text())["results_dir"]


def snakemake(*args, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    if not SNAKEMAKE.is_file():
        pytest.skip(f"snakemake is not installed next to {sys.executable}")
    cmd = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "-d", str(cwd), *map(str, args)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry-run as {rule: count}."""
    block = output.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = {}
    for line in block.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m:
            counts[m.group(1)] = int(m.group(2))
    return counts


def stages_missing() -> list[str]:
    return [s for s in STAGES if importlib.util.find_spec(f"d2st.commands.{s}") is None]


def expected_counts(name: str, target_all: bool) -> dict[str, int]:
    from d2st.plan import lr_candidates, selection_of

    cfg = yaml.safe_load((CONFIG / f"{name}.yaml").read_text())
    m = expand_matrix(cfg)
    runs = m.runs.values()
    sel = selection_of(cfg)
    candidates = sum(len(c) for c in lr_candidates(m.runs, sel).values())
    counts = {
        "run_config": len(m.runs) + candidates,
        "train": len(m.runs) + candidates,  # each run's job evaluates it too
        "table": len(cfg["tables"]),
    }
    if candidates:
        counts["select_lr"] = 1
    demos = sum(1 for t in cfg["tables"].values() if t.get("kind") == "demo")
    if demos:
        counts["per_class"] = demos
    synthetic = [d for d, s in cfg["datasets"].items() if s.get("synthetic")]
    if synthetic:
        counts["synth"] = len(synthetic)
        counts["pretrain"] = len(synthetic) * len({r.seed for r in runs})  # one trunk per seed
    real = sorted({r.dataset for r in runs} - set(synthetic))
    if real:
        counts["splits"] = len(real)
    # train + test shards per (dataset, frames); the default target adds the other partitions
    pairs = {(r.dataset, r.frames) for r in runs}
    if target_all:
        counts["prepare"] = sum(
            len(cfg["datasets"][d].get("partitions", [1, 2, 3])) for d, _ in pairs
        )
    else:
        counts["prepare"] = 2 * len(pairs)
    return counts


@pytest.mark.parametrize("name", ["default", "test"])
def test_dry_run_synthetic_configs(tmp_path, name):
    args = ["-n", "--quiet", "rules"] + (
        [] if name == "default" else [f"--configfile={CONFIG / 'test.yaml'}"]
    )
    res = snakemake(*args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    want = expected_counts(name, target_all=True)
    for rule, n in want.items():
        assert counts.get(rule) == n, (rule, counts)
    assert counts["splits_synthetic"] == want["prepare"]
    assert not (tmp_path / "results").exists()  # a dry-run writes nothing


def test_test_config_writes_its_own_results_folder(tmp_path):
    """Every output of the test config lies under its results_dir (the demo's results/ and the
    test's never share a file), and a `--config results_dir=...` override moves all of them."""
    for results, args in (
        (TEST_RESULTS, []),
        ("elsewhere/out", ["--config", "results_dir=elsewhere/out"]),
    ):
        res = snakemake(
            "-n",
            "--quiet",
            "rules",
            "--summary",
            f"--configfile={CONFIG / 'test.yaml'}",
            *args,
            cwd=tmp_path,
        )
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-2000:]
        rows = [line.split("\t", 1) for line in res.stdout.splitlines() if "\t" in line]
        files = [r[0] for r in rows if r[0] != "output_file"]
        written = [f for f in files if not f.startswith(("data/", "splits/", "logs/"))]
        assert written, res.stdout[-2000:]
        assert all(f.startswith(f"{results}/") for f in written), written


def test_commands_hold_no_paths_of_this_environment():
    """Rules call plain `d2st` (the running interpreter's bin folder goes first on PATH): no
    shell command or param holds the executable's path, so running from another venv or clone
    is no rerun trigger (Snakemake's params/code triggers)."""
    rules = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    # the one use of the interpreter's path: PATH (and the warning when `d2st` is not there)
    uses = [line for line in rules.splitlines() if "sys.executable" in line]
    assert all("_PATH = " in line or "no `d2st` command" in line for line in uses), uses
    assert "params.d2st" not in rules and "d2st=" not in rules
    shells = re.findall(r'shell:\s*\n(?:\s*#.*\n)*\s*"\(?\s*(\S+)', rules)
    assert shells and set(shells) <= {"d2st", "cp", "test"}, shells


def test_dry_run_states_gpu_hours(tmp_path):
    """The dry-run's plan: GPU-hours = jobs x resources.gpu x runtime limit, per GPU rule."""
    res = snakemake("-n", f"--configfile={CONFIG / 'test.yaml'}", cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    from d2st.plan import lr_candidates, selection_of

    cfg = yaml.safe_load((CONFIG / "test.yaml").read_text())
    m = expand_matrix(cfg)
    runs = len(m.runs)
    cands = sum(len(c) for c in lr_candidates(m.runs, selection_of(cfg)).values())
    res_ = cfg["resources"]
    # candidates: trained, then evaluated on the validation classes
    hours = (runs + cands) * res_["gpu"] * (res_["train_runtime"] + res_["eval_runtime"]) / 60
    assert f"d2st plan: at most {hours:,.1f} GPU-hours" in out, out[-2000:]


def test_dry_run_paper_without_data_warns_and_shows_dag(tmp_path):
    res = snakemake(
        "-n",
        "--quiet",
        "rules",
        f"--configfile={CONFIG / 'paper.yaml'}",
        "all_tables",
        cwd=tmp_path,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    counts = job_counts(out)
    for rule, n in expected_counts("paper", target_all=False).items():
        assert counts.get(rule) == n, (rule, counts)
    assert "video roots missing for 5 dataset(s)" in out
    for ds in ("ssv2_full", "ssv2_small", "kinetics100", "hmdb51", "ucf101"):
        assert re.search(rf"{ds}: \S+ \(not found\)", out), ds


def test_one_table_target(tmp_path):
    res = snakemake(
        "-n", "--quiet", "rules", f"--configfile={CONFIG / 'paper.yaml'}", "table4", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    counts = job_counts(res.stdout + res.stderr)
    assert counts["train"] == 10 and counts["table"] == 1  # 5 adapters x 2 datasets


@pytest.mark.parametrize(
    "override, key",
    [("bogus_key=1", "bogus_key"), ("eval={'episodes': 'many'}", "episodes")],
)
def test_bad_config_key_is_named(tmp_path, override, key):
    res = snakemake("-n", "--config", override, cwd=tmp_path)
    assert res.returncode != 0
    assert key in res.stdout + res.stderr


def test_matrix_error_is_named(tmp_path):
    cfg = yaml.safe_load((CONFIG / "test.yaml").read_text())
    cfg["tables"]["broken"] = {"rows": [{"run": {"adapter": "d2st", "backbone": "resnet_tiny"}}]}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = snakemake("-n", f"--configfile={path}", cwd=tmp_path)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "tables.broken.rows[0]" in out and "dataset" in out


@pytest.mark.parametrize("name", ["default", "paper"])
def test_lint_clean(tmp_path, name):
    res = snakemake("--lint", f"--configfile={CONFIG / (name + '.yaml')}", cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "Congratulations, your workflow is in a good condition" in out, out


def test_failed_job_names_its_log(tmp_path, shared):
    """A missing video root fails the prepare job with the reason and the log's path."""
    for stage in ("splits", "prepare"):
        if importlib.util.find_spec(f"d2st.commands.{stage}") is None:
            pytest.skip(f"d2st {stage} is not there yet")
    cfg = yaml.safe_load((CONFIG / "paper.yaml").read_text())
    cfg["datasets"]["hmdb51"].update(
        videos=str(tmp_path / "nope"), split_source=str(shared / "splits")
    )
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = snakemake(
        "--cores",
        "1",
        f"--configfile={path}",
        "data/shards/hmdb51/test/8f_256px/manifest.csv",
        cwd=tmp_path,
        timeout=300,
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "logs/prepare/hmdb51_test_8f_256px.log" in out
    log = (tmp_path / "logs/prepare/hmdb51_test_8f_256px.log").read_text()
    assert "video root of hmdb51 not found" in log


def run_tiny(workdir: Path, *extra, timeout: int = 900) -> subprocess.CompletedProcess:
    return snakemake(
        "--cores", "2", f"--configfile={CONFIG / 'test.yaml'}", *extra, cwd=workdir, timeout=timeout
    )


def check_tiny_outputs(workdir: Path) -> pd.DataFrame:
    cfg = yaml.safe_load((CONFIG / "test.yaml").read_text())
    tables = workdir / TEST_RESULTS / "tables"
    demo = pd.read_csv(tables / "demo.csv")
    n_methods = len(cfg["tables"]["demo"]["rows"])
    n_metrics = len(cfg["tables"]["demo"]["grid"]["metric"])
    n_seeds = len(cfg["tables"]["demo"]["grid"]["seed"])
    # shots 1, 5 + reversed pairs, per seed and once more as the mean over seeds
    assert len(demo) == n_methods * n_metrics * 3 * (n_seeds + 1)
    assert demo["accuracy"].between(0, 100).all() and demo["ci95"].ge(0).all()
    assert set(demo["seed"].astype(str)) == {*map(str, range(n_seeds)), "mean"}
    lr = pd.read_csv(tables / "demo_lr.csv")
    assert lr.groupby("method_key").chosen.sum().eq(1).all()  # one lr chosen per method
    assert set(demo["protocol"]) == {"standard", "reversed_pairs"}
    for ext in ("md", "png", "html"):
        assert (tables / f"demo.{ext}").stat().st_size > 0
    assert (tables / "demo_per_class.png").is_file()
    eff = pd.read_csv(tables / "efficiency_demo.csv")
    assert eff["tunable_params"].notna().all()
    # the rendered table holds every mean accuracy ± ci95 (over seeds) of the CSV
    page = (tables / "demo.html").read_text()
    for _, r in demo[demo["seed"].astype(str) == "mean"].iterrows():
        assert f"{r['accuracy']:.1f} ± {r['ci95']:.1f}" in page
    # the report's pages: headline, config + versions, one training curve per trained run
    report = workdir / TEST_RESULTS / "report"
    assert "reversed pairs" in (report / "headline.html").read_text()
    page = (report / "config.html").read_text()
    assert "torch" in page and "snakemake" in page and f"results_dir: {TEST_RESULTS}" in page
    trained = [r for r in expand_matrix(cfg).runs.values() if r.needs_training]
    assert trained and all((report / "curves" / f"{r.name}.png").is_file() for r in trained)
    # nothing of the test config lands in the demo's folders
    assert not (workdir / "results" / "tables").exists()
    assert not (workdir / "results" / "runs").exists()
    return demo


_TINY: dict[str, Path] = {}  # one local tiny run per session, shared with tests/test_slurm.py


def tiny_local_run(tmp_path_factory) -> Path:
    """Run workflow/config/test.yaml locally once per session; returns its working directory."""
    if stages_missing():
        pytest.skip(f"stage CLIs not there yet: {stages_missing()}")
    if "dir" not in _TINY:
        workdir = tmp_path_factory.mktemp("tiny_local")
        res = run_tiny(workdir)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        _TINY["dir"] = workdir
    return _TINY["dir"]


@pytest.mark.slow
def test_tiny_end_to_end(tmp_path_factory):
    """The whole DAG for real on the tiny config; a re-run has nothing to do; the HTML report."""
    workdir = tiny_local_run(tmp_path_factory)
    check_tiny_outputs(workdir)
    again = snakemake("-n", f"--configfile={CONFIG / 'test.yaml'}", cwd=workdir)
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
    report = workdir / "report.html"
    rep = snakemake(f"--configfile={CONFIG / 'test.yaml'}", "--report", report, cwd=workdir)
    assert rep.returncode == 0, rep.stderr[-2000:]
    assert report.stat().st_size > 10_000
    # the first page embeds the headline numbers (the 5-way 1-shot accuracy of every demo row)
    html = report.read_text()
    demo = pd.read_csv(workdir / TEST_RESULTS / "tables" / "demo.csv")
    one_shot = demo[
        (demo["protocol"] == "standard")
        & (demo["shot"] == 1)
        & (demo["seed"].astype(str) == "mean")
    ]
    for _, r in one_shot.iterrows():  # the report stores its pages JSON-escaped
        assert f"{r['accuracy']:.1f} \\u00b1 {r['ci95']:.1f}" in html
    assert "TableRow(" not in html  # table params are readable, not dataclass reprs
