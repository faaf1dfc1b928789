"""Parameter counting (Table 9/10 tunable %) and the model-info CLI (Table 14 grids)."""

from __future__ import annotations

import csv
import json

import pytest

from d2st.cli import main
from d2st.models.config import ModelCfg, build_encoder

TABLE10 = {0.0625: 1.4, 0.125: 3.2, 0.25: 7.9, 0.5: 20.2}  # paper Table 10 (ViT-B/16)


def _pct(cfg):
    enc = build_encoder(cfg)
    return 100 * enc.tunable_parameters() / enc.total_parameters()


@pytest.mark.parametrize("ratio,expected", list(TABLE10.items()))
def test_vit_b16_tunable_pct_table10(ratio, expected):
    assert _pct(ModelCfg(backbone="vit_b16", bottleneck_ratio=ratio)) == pytest.approx(
        expected, abs=0.3
    )


def test_vit_b16_table10_from_shared(shared):
    rows = csv.DictReader(open(shared / "paper" / "reported" / "table10.csv"))
    reported = {float(r["bottleneck_ratio"]): float(r["tunable_params_pct"]) for r in rows}
    assert reported == TABLE10


@pytest.mark.parametrize("positions", ["early", "late", "skip"])
def test_table9_half_insertion(positions):
    assert _pct(ModelCfg(backbone="vit_b16", positions=positions)) == pytest.approx(4.1, abs=0.3)


def test_trunk_sizes_match_paper():
    # paper: ViT-B/16 85.8 M, ViT-L/14 303.2 M parameters (visual tower without projection)
    for name, millions in (("vit_b16", 85.8), ("vit_l14", 303.2)):
        enc = build_encoder(ModelCfg(backbone=name, adapter="none"))
        assert enc.total_parameters() / 1e6 == pytest.approx(millions, abs=0.2)


def test_model_info_cli_table14(shared, capsys):
    rows = list(csv.DictReader(open(shared / "paper" / "reported" / "table14.csv")))
    for backbone, csv_name in (("resnet50", "resnet50"), ("vit_b16", "clip_vit_b16")):
        assert main(["model-info", "--backbone", backbone, "--adapter", "d2st"]) == 0
        info = json.loads(capsys.readouterr().out)
        expect = [r for r in rows if r["backbone"] == csv_name]
        stages = info["stages"] if backbone == "resnet50" else info["stages"][:1]
        assert len(stages) == len(expect)
        for st, r in zip(stages, expect, strict=True):
            assert "-".join(map(str, st["adsta_s"]["feature"])) == r["feature_map"]
            assert "-".join(map(str, st["adsta_s"]["grid"])) == r["adsta_s"]
            assert "-".join(map(str, st["adsta_t"]["grid"])) == r["adsta_t"]
    assert main(["model-info", "--backbone", "resnet50", "--adapter", "d2st_uniform"]) == 0
    info = json.loads(capsys.readouterr().out)
    for st, r in zip(info["stages"], rows, strict=False):
        assert "-".join(map(str, st["adsta_s"]["grid"])) == r["adsta_uniform"]
