"""The rules the official code hard-codes: aDSTA heads per ResNet stage, ViT offset-conv kernels."""

from __future__ import annotations

import json

import pytest
import torch

from d2st.models.adsta import ADSTA, grid_geometry
from d2st.models.config import ModelCfg, build_encoder, offset_convs

# Facts read from qizhongtan/D2ST-Adapter (not outputs of ours): heads per ResNet stage, and the
# (kernel, stride) hard-coded for the ViT aDSTA-S / aDSTA-T offset networks.
OFFICIAL_HEADS = [1, 2, 4, 8]
OFFICIAL_VIT_S = ((4, 5, 5), (4, 3, 3))
OFFICIAL_VIT_T = ((1, 7, 7), (1, 7, 7))


def _heads(enc) -> list[int]:
    return [a.pathways[0].attn.num_heads for a in enc.adapters.values()]


@pytest.mark.parametrize(
    "backbone,ratio",
    [("resnet18", 0.25), ("resnet34", 0.125), ("resnet50", 0.5), ("resnet_tiny", 0.25)],
)
def test_resnet_heads_are_1_2_4_8_for_every_depth_and_ratio(backbone, ratio):
    cfg = ModelCfg(backbone=backbone, bottleneck_ratio=ratio, image_size=64, frames=4)
    enc = build_encoder(cfg)
    assert _heads(enc) == OFFICIAL_HEADS
    for a in enc.adapters.values():  # both pathways, and the offset groups follow the heads
        for p in a.pathways:
            assert p.attn.offset[0].in_channels * p.attn.num_heads == a.down.out_features


def test_resnet_tiny_runs_with_official_heads():
    # bottleneck widths 2 / 4 / 8 / 16 at ratio 0.25: one channel per head from layer2 on
    enc = build_encoder(ModelCfg(backbone="resnet_tiny", image_size=32, frames=4)).train()
    assert [a.down.out_features for a in enc.adapters.values()] == [2, 4, 8, 16]
    with torch.no_grad():
        for a in enc.adapters.values():
            a.up.weight.normal_(std=0.1)
    y = enc(torch.randn(1, 4, 3, 32, 32))
    assert y.shape == (1, 4, 64) and torch.isfinite(y).all()


def test_per64_rule_is_one_head_per_64_channels():
    enc = build_encoder(ModelCfg(backbone="resnet18", resnet_heads="per64", image_size=64))
    assert _heads(enc) == [1, 1, 1, 2]  # widths 16 / 32 / 64 / 128


def test_head_rule_not_dividing_names_the_key():
    # resnet18 at ratio 0.1: widths 6 / 13 / 26 / 51; 13 channels cannot form 2 heads
    with pytest.raises(ValueError, match=r"model\.resnet_heads.*stage 2.*13"):
        build_encoder(ModelCfg(backbone="resnet18", bottleneck_ratio=0.1, image_size=64))
    build_encoder(ModelCfg(backbone="resnet18", bottleneck_ratio=0.1, resnet_heads="per64"))
    # variants without aDSTA have no heads and build at any ratio
    build_encoder(ModelCfg(backbone="resnet18", adapter="dst", bottleneck_ratio=0.1))


def test_resnet50_ratio_quarter_is_identical_under_both_head_rules():
    """The per-64 rule gives 64/128/256/512 // 64 = 1/2/4/8 heads: the same model."""
    x = torch.randn(1, 2, 3, 32, 32)
    outs, states = [], []
    for rule in ("stage", "per64"):
        torch.manual_seed(0)
        enc = build_encoder(
            ModelCfg(backbone="resnet50", resnet_heads=rule, image_size=32, frames=2)
        )
        torch.manual_seed(1)
        with torch.no_grad():
            for a in enc.adapters.values():  # leave the identity so the adapters matter
                a.up.weight.normal_(std=0.1)
            outs.append(enc.eval()(x))
        states.append(enc.state_dict())
    assert states[0].keys() == states[1].keys()
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k]), k
    assert torch.equal(outs[0], outs[1])
    assert _heads(enc) == OFFICIAL_HEADS


def test_vit_l14_uses_the_official_kernels_by_default():
    volume = (8, 16, 16)  # ViT-L/14 at 224: a 16 x 16 patch grid
    official = offset_convs(ModelCfg(backbone="vit_l14"), volume)
    assert official == {"adsta_s": OFFICIAL_VIT_S, "adsta_t": OFFICIAL_VIT_T}
    derived = offset_convs(ModelCfg(backbone="vit_l14", vit_offset_conv="derived"), volume)
    assert derived == {"adsta_s": None, "adsta_t": None}
    # same sampling grid (Table 14), different functions: kernels differ from the derived ones
    for conv, density, derived_ks in (
        (OFFICIAL_VIT_S, (2, 4, 4), ((4, 4, 4), (4, 4, 4))),
        (OFFICIAL_VIT_T, (8, 2, 2), ((1, 8, 8), (1, 8, 8))),
    ):
        m = ADSTA(16, 4, volume, density, conv=conv)
        assert (m.kernel, m.stride, m.grid) == (*conv, density)
        assert m.offset[0].kernel_size == conv[0] and m.offset[0].stride == conv[1]
        assert grid_geometry(volume, density)[:2] == derived_ks


def test_vit_b16_official_and_derived_coincide_at_224():
    volume = (8, 14, 14)
    convs = offset_convs(ModelCfg(backbone="vit_b16"), volume)
    assert grid_geometry(volume, (2, 4, 4))[:2] == convs["adsta_s"]
    assert grid_geometry(volume, (8, 2, 2))[:2] == convs["adsta_t"]


@pytest.mark.parametrize(
    "kw,volume",
    [
        (dict(image_size=32, frames=4), (4, 2, 2)),  # kernels larger than a 2 x 2 grid
        (dict(frames=2), (2, 14, 14)),  # aDSTA-S's K_t = 4 > 2 frames
        (dict(spatial_density=(1, 4, 4), temporal_density=(4, 2, 2)), (8, 14, 14)),
        (dict(adapter="d2st_uniform"), (8, 14, 14)),
        (dict(backbone="resnet50"), (8, 14, 14)),
    ],
)
def test_official_kernels_fall_back_to_derived(kw, volume):
    """Derived where the official kernel cannot run, densities are set, or the family is ResNet."""
    cfg = ModelCfg(**{"backbone": "vit_b16", **kw})
    convs = offset_convs(cfg, volume)
    if kw.get("frames") == 2:  # only aDSTA-S's kernel is too long; aDSTA-T's fits
        assert convs == {"adsta_s": None, "adsta_t": OFFICIAL_VIT_T}
    else:
        assert convs == {"adsta_s": None, "adsta_t": None}


def test_given_kernel_larger_than_volume_is_an_error():
    with pytest.raises(ValueError, match="larger than the feature volume"):
        ADSTA(8, 2, (4, 2, 2), None, conv=OFFICIAL_VIT_S)


def test_model_info_shows_heads_and_kernels_per_stage(capsys):
    from d2st.cli import main

    assert main(["model-info", "--backbone", "resnet18", "--adapter", "d2st"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [s["adsta_s"]["heads"] for s in info["stages"]] == OFFICIAL_HEADS
    assert [s["adsta_t"]["heads"] for s in info["stages"]] == OFFICIAL_HEADS
    assert info["stages"][2]["adsta_s"]["kernel"] == [4, 5, 5]
    assert info["stages"][2]["adsta_s"]["stride"] == [4, 3, 3]
    assert info["config"]["resnet_heads"] == "stage"
