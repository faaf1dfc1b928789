"""Table 1's CLIP block, Table 3 (efficiency from model-info) and Figure 4: the paper config plans
them, model-info counts the MM head, the efficiency table takes model-info's columns, Figure 4's
join and plot."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from d2st.cli import main
from d2st.commands.model_info import model_info
from d2st.models.config import ModelCfg
from d2st.plan import expand_matrix
from d2st.plots import figure4_data, plot_figure4
from d2st.tables import build_table

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "workflow" / "config" / "paper.yaml"
DATASETS = ("ssv2_full", "ssv2_small", "kinetics100", "hmdb51", "ucf101")
CLIP_METHODS = {
    "ST-Adapter": "st_vit",
    "AIM": "aim",
    "DUALPATH": "dualpath",
    "D2ST-Adapter": "d2st",
    "D2ST-Adapter-MM": "d2st",
}


def test_paper_config_has_the_clip_block_of_table1():
    cfg = yaml.safe_load(PAPER.read_text())
    m = expand_matrix(cfg)
    rows = m.tables["table1_clip"]
    reported = pd.read_csv(REPO / "results" / "reported" / "table1.csv")
    clip = reported[reported.backbone.eq("clip_vit_b16") & reported.method.isin(CLIP_METHODS)]
    df = build_table(rows, pd.DataFrame(), reported)
    assert len(df) == len(clip) == len(CLIP_METHODS) * len(DATASETS) * 2
    assert sorted(df.reported) == sorted(clip.accuracy)  # every reported number, once
    for r in rows:
        run = m.runs[r.run]
        assert run.backbone == "vit_b16" and run.adapter == CLIP_METHODS[r.key["method"]]
        assert (r.key["method"] == "D2ST-Adapter-MM") == (("model.mm", True) in run.overrides)
        assert r.run.endswith("_mm") == (r.key["method"] == "D2ST-Adapter-MM")
    # the plain D2ST ViT runs are Table 1's own runs, not duplicates
    d2st = {r.run for r in rows if r.key["method"] == "D2ST-Adapter"}
    assert d2st <= {r.run for r in m.tables["table1"]}
    eff = {m.runs[r.run].adapter + ("+mm" if r.run.endswith("_mm") else "") for r in
           m.tables["efficiency"] if m.runs[r.run].backbone == "vit_b16"}  # fmt: skip
    assert eff == {"st_vit", "aim", "dualpath", "d2st", "d2st+mm"}


def test_dry_run_plans_model_info_and_figure4(tmp_path):
    snakemake = Path(sys.executable).parent / "snakemake"
    if not snakemake.is_file():
        pytest.skip("snakemake is not installed")
    cmd = [str(snakemake), "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "-n", "--quiet"]
    cmd += ["rules", f"--configfile={PAPER}", "all_tables"]
    res = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    counts = dict(
        (line.split()[0], int(line.split()[1]))
        for line in out.split("Job stats:", 1)[1].split("\n\n", 1)[0].splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    )
    cfg = yaml.safe_load(PAPER.read_text())
    m = expand_matrix(cfg)
    assert counts["model_info"] == len({r.run for r in m.tables["efficiency"]})
    assert counts["figure4"] == 1
    assert counts["train"] == len(m.runs)


def test_model_info_counts_the_mm_head(capsys):
    kw = dict(backbone="resnet_tiny", frames=4, image_size=32)
    plain, mm = model_info(ModelCfg(**kw)), model_info(ModelCfg(**kw, mm=True))
    head = mm["mm"]["head_tunable_params"]
    assert head > 0 and mm["tunable_params"] == plain["tunable_params"] + head
    assert mm["total_params"] == plain["total_params"] + head  # tiny tower: no visual.proj
    assert mm["mm"]["total_params_with_text"] == mm["total_params"] + mm["mm"]["text_params"]
    assert mm["adapters_per_block"] == plain["adapters_per_block"] == 1
    assert mm["flops_per_clip"] > plain["flops_per_clip"]  # the query's Transformer pass
    assert main(["model-info", "--mm", "--no-flops", *"--backbone resnet_tiny".split(),
                 *"--frames 4 --image-size 32".split()]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["tunable_params"] == mm["tunable_params"]


def test_model_info_reads_a_run_config(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    model = {"backbone": "resnet_tiny", "frames": 4, "image_size": 32, "mm": True,
             "weights": "/nonexistent.safetensors"}  # fmt: skip
    path.write_text(yaml.safe_dump({"model": model, "metric": {"name": "bimhm"}}))
    assert main(["model-info", "--config", str(path), "--no-flops"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"]["mm"] is True and info["config"]["weights"] == "random"
    assert "mm" in info


def _efficiency_frame():
    cfg = yaml.safe_load(PAPER.read_text())
    m = expand_matrix(cfg)
    rows = [r for r in m.tables["efficiency"] if m.runs[r.run].backbone == "vit_b16"]
    info = {r.run: {"tunable_params": 1e6 * (i + 1), "total_params": 1e8, "tunable_pct": i + 1.0,
                    "gmacs_per_clip": 150.0 + i, "adapters_per_block": i + 1}
            for i, r in enumerate(rows)}  # fmt: skip
    evals = pd.DataFrame(
        [
            dict(
                run=r.run,
                protocol="standard",
                shot=1,
                accuracy=60.0,
                ci95=0.5,
                episodes=100,
                tunable_params=0,
                total_params=1,
                peak_mem_mb=1024.0 * (i + 2),
                train_time_s=1.0,
                eval_time_s=1.0,
            )
            for i, r in enumerate(rows[:-1])
        ]
    )  # fmt: skip  (the last run has no eval.csv yet)
    return rows, build_table(rows, evals, kind="efficiency", model_info=info), info


def test_efficiency_table_takes_model_info_columns():
    rows, df, info = _efficiency_frame()
    assert len(df) == len(rows)
    for _, r in df.iterrows():
        assert r.tunable_params == info[r.run]["tunable_params"]  # not eval.csv's 0
        assert r.gmacs_per_clip == info[r.run]["gmacs_per_clip"]
        assert r.adapters_per_block == info[r.run]["adapters_per_block"]
    assert math.isnan(df.peak_mem_mb.iloc[-1]) and df.peak_mem_mb.iloc[0] == 2048.0


def test_figure4_joins_on_run_and_writes_a_png(tmp_path):
    rows, eff, _ = _efficiency_frame()
    clip = pd.DataFrame(
        [dict(method=r.key["method"], dataset=ds, shot=s, reported=70.0 + i, reproduced=60.0 + i,
              ci95=0.4, run=r.run if ds == "ssv2_full" else f"{r.run}_other")
         for i, r in enumerate(rows) for ds in ("ssv2_full", "hmdb51") for s in (1, 5)]
    )  # fmt: skip
    df = figure4_data(clip, eff)
    assert len(df) == len(rows) and list(df.method) == [r.key["method"] for r in rows]
    assert list(df.tunable_params) == list(eff.tunable_params)
    png = plot_figure4(df, tmp_path / "figure4.png", title="Figure 4")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    empty = plot_figure4(df.iloc[:0], tmp_path / "empty.png")
    assert empty.stat().st_size > 1000
