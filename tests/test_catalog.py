"""Snakemake-catalog conventions: generated config docs, catalog metadata, licence, and the
workflow deployed as a module (what `snakedeploy deploy-workflow` writes) in a foreign folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def test_config_readme_is_generated_from_the_schema():
    """config/README.md == workflow/scripts/config_docs.py's output (`make config-docs`)."""
    res = subprocess.run(
        [sys.executable, str(REPO / "workflow" / "scripts" / "config_docs.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    committed = (REPO / "config" / "README.md").read_text()
    assert committed == res.stdout, "config/README.md is stale: run `make config-docs`"


def test_config_readme_names_every_schema_key():
    """Every top-level key of the config schema has a row (the generator walks the schema)."""
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    text = (REPO / "config" / "README.md").read_text()
    missing = [k for k in schema["properties"] if f"| `{k}` |" not in text]
    assert not missing, missing


def test_catalog_metadata_and_layout():
    meta = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())
    usage = meta["usage"]
    assert isinstance(usage["mandatory-flags"]["flags"], str)
    assert {"software-stack-deployment", "report"} <= set(usage)
    assert (REPO / "workflow" / "Snakefile").is_file()
    test_config = REPO / ".test" / "config" / "config.yaml"
    assert yaml.safe_load(test_config.read_text())["tables"], test_config
    assert "Apache License" in (REPO / "LICENSE").read_text()
    assert "Version 2.0" in (REPO / "LICENSE").read_text()


MODULE_SNAKEFILE = """\
configfile: "config/config.yaml"


module d2st:
    snakefile:
        "{snakefile}"
    config:
        config


use rule * from d2st
"""


@pytest.mark.parametrize(
    "config, target",
    [(".test/config/config.yaml", "all_tables"), ("workflow/config/paper.yaml", "table1")],
)
def test_deployed_as_a_module_dry_runs(tmp_path, config, target):
    """A user's folder holding only a Snakefile with `module d2st` + `use rule * from d2st` and
    a copy of the config: files of the workflow (default config, the paper's reported tables)
    resolve from the module's folder, outputs from the user's."""
    if not SNAKEMAKE.is_file():
        pytest.skip(f"snakemake is not installed next to {sys.executable}")
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / config, tmp_path / "config" / "config.yaml")
    (tmp_path / "workflow").mkdir()
    snakefile = tmp_path / "workflow" / "Snakefile"
    snakefile.write_text(MODULE_SNAKEFILE.format(snakefile=REPO / "workflow" / "Snakefile"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    res = subprocess.run(
        [str(SNAKEMAKE), "-n", "--quiet", "rules", "--", target],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "Job stats:" in out and f"{target} " in out
    assert not (tmp_path / "results").exists()  # a dry-run writes nothing
