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


# Tiny CLIP-style ViT (width 64, 2 blocks, 2 heads, patch 16) on a 4-frame 32 x 32 clip.
TINY = dict(backbone="vit_tiny", frames=4, image_size=32)


def _tiny_info(adapter):
    from d2st.commands.model_info import model_info

    return model_info(ModelCfg(adapter=adapter, **TINY))


def test_flops_of_the_frozen_vit_match_the_matmul_count():
    """Brute force: 2 FLOPs per multiply-add of every matmul/conv of a CLIP ViT, per frame."""
    C, L, T, patches = 64, 2, 4, 4  # width, blocks, frames, (32 / 16)^2 patches
    N = 1 + patches
    embed = patches * (3 * 16 * 16) * C * 2
    block = (N * C * 3 * C + 2 * N * N * C + N * C * C + 2 * N * C * 4 * C) * 2
    assert _tiny_info("none")["flops_per_clip"] == T * (embed + L * block)


def test_flops_and_params_of_the_peers():
    infos = {a: _tiny_info(a) for a in ("none", "st", "st_vit", "aim", "aim_ssv2", "dualpath")}
    infos["d2st"] = _tiny_info("d2st")
    none = infos["none"]
    assert none["tunable_params"] == 0 and none["adapters_per_block"] == 0
    expected_per_block = {"st": 1, "st_vit": 2, "aim": 3, "aim_ssv2": 4, "dualpath": 5, "d2st": 1}
    # new parameters besides the adapters: temporal embedding (T x C), DualPath's grid embedding
    new_embeddings = {"st": 4 * 64, "st_vit": 0, "aim": 4 * 64, "aim_ssv2": 4 * 64}
    new_embeddings |= {"dualpath": 5 * 64, "d2st": 4 * 64}
    for name, info in infos.items():
        if name == "none":
            continue
        assert info["flops_per_clip"] > none["flops_per_clip"], name
        assert info["adapters_per_block"] == expected_per_block[name], name
        adapters = sum(s["params"] for s in info["stages"])
        assert info["total_params"] == none["total_params"] + adapters + new_embeddings[name]
        assert adapters <= info["tunable_params"] < info["total_params"]
        pct = 100 * info["tunable_params"] / info["total_params"]
        assert info["tunable_pct"] == pytest.approx(pct, abs=1e-3)
    # AIM runs every block's attention twice; the SSv2 setting adds one adapter per block
    assert infos["aim_ssv2"]["flops_per_clip"] > infos["aim"]["flops_per_clip"]


def test_model_info_cli_small_clip(capsys):
    args = ["model-info", "--backbone", "vit_tiny", "--adapter", "aim"]
    assert main([*args, "--frames", "4", "--image-size", "32"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["clip"] == "1x4x3x32x32" and info["adapters_per_block"] == 3
    assert info["gmacs_per_clip"] == pytest.approx(info["gflops_per_clip"] / 2, abs=1e-3)
    assert main([*args, "--frames", "4", "--image-size", "32", "--no-flops"]) == 0
    assert "gflops_per_clip" not in json.loads(capsys.readouterr().out)
