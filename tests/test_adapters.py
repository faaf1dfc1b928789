"""Encoder contracts over the (backbone x adapter) table: shape, gradients, identity at init."""

from __future__ import annotations

import pytest
import torch

from d2st.models.adapters import VARIANTS, AdapterOptions, build_adapter
from d2st.models.config import ModelCfg, build_encoder

# Small inputs: tiny/18 ResNets at 32x32, ViT-B/16 at 32x32 (2x2 patches), T = 4.
BACKBONES = {"resnet_tiny": 32, "resnet18": 32, "vit_b16": 32}
FRAMES = 4


def _trunk_file(tmp_path_factory, backbone: str) -> str:
    from safetensors.torch import save_file

    from d2st.models.backbones import create_trunk

    path = tmp_path_factory.getbasetemp() / f"{backbone}.safetensors"
    if not path.exists():
        torch.manual_seed(0)
        trunk = create_trunk(backbone, "random", image_size=BACKBONES[backbone])
        save_file({k: v.contiguous() for k, v in trunk.state_dict().items()}, str(path))
    return str(path)


def _build(tmp_path_factory, backbone, adapter, **kw):
    cfg = ModelCfg(
        backbone=backbone,
        adapter=adapter,
        frames=FRAMES,
        image_size=BACKBONES[backbone],
        weights=_trunk_file(tmp_path_factory, backbone),
        **kw,
    )
    return build_encoder(cfg)


def _video(backbone, b=2):
    torch.manual_seed(1)
    return torch.randn(b, FRAMES, 3, BACKBONES[backbone], BACKBONES[backbone])


# Variants that are an Adapter after the block (ViT-only block rules: tests/test_block_adapters.py).
AFTER_BLOCK = [v for v, s in VARIANTS.items() if s is None or s.block is None]

_FROZEN: dict[str, torch.Tensor] = {}


def _frozen_features(tmp_path_factory, backbone):
    """Features of the frozen backbone with no adapter (computed once per backbone)."""
    if backbone not in _FROZEN:
        with torch.no_grad():
            _FROZEN[backbone] = _build(tmp_path_factory, backbone, "none").eval()(_video(backbone))
    return _FROZEN[backbone]


@pytest.mark.parametrize("adapter", AFTER_BLOCK)
@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_encoder_contract(tmp_path_factory, backbone, adapter):
    enc = _build(tmp_path_factory, backbone, adapter).train()
    x = _video(backbone)
    # identity at init: same trunk weights, no adapter -> same features
    with torch.no_grad():
        torch.testing.assert_close(
            enc.eval()(x), _frozen_features(tmp_path_factory, backbone), atol=1e-5, rtol=1e-5
        )
    enc.train()
    # exercise every adapter parameter: move the zero-initialised up-projections off zero
    with torch.no_grad():
        for a in enc.adapters.values():
            a.up.weight.normal_(std=0.1)
    y = enc(x)
    assert y.shape == (2, FRAMES, enc.feature_dim) and enc.frames == FRAMES
    assert torch.isfinite(y).all()
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert enc.tunable_parameters() == sum(p.numel() for p in enc.parameters() if p.requires_grad)
    if adapter == "none":
        assert not trainable and not y.requires_grad
        return
    if adapter == "full":
        assert trainable == {n for n, _ in enc.named_parameters()}
    else:
        adapter_names = {n for n, _ in enc.named_parameters() if n.startswith("adapters.")}
        extras = trainable - adapter_names
        assert adapter_names <= trainable
        allowed = (
            {
                "temporal_embedding",
                "trunk.class_embedding",
                "trunk.ln_post.weight",
                "trunk.ln_post.bias",
            }
            if backbone.startswith("vit")
            else set()
        )
        assert extras == allowed
    y.square().mean().backward()
    for n, p in enc.named_parameters():
        if n in trainable:
            assert p.grad is not None and torch.isfinite(p.grad).all(), n
        else:
            assert p.grad is None, f"frozen {n} got a gradient"
    for name, a in enc.adapters.items():  # the adapter output feeds the loss
        assert a.up.weight.grad.abs().sum() > 0, name


@pytest.mark.parametrize("tokens", [False, True])
@pytest.mark.parametrize("variant", [v for v in AFTER_BLOCK if VARIANTS[v] is not None])
def test_adapter_is_identity_at_init(variant, tokens):
    torch.manual_seed(0)
    a = build_adapter(
        variant,
        16,
        0.5,
        (4, 3, 3),
        tokens=tokens,
        num_heads=2,
        spatial_density=(2, 2, 2),
        temporal_density=(4, 1, 1),
    )
    x = torch.randn(8, 10, 16) if tokens else torch.randn(8, 16, 3, 3)
    torch.testing.assert_close(a(x), x)
    assert (a.up.weight == 0).all() and (a.up.bias == 0).all()


def test_official_and_paper_options_differ_where_documented():
    assert AdapterOptions().fusion == "mean"
    torch.manual_seed(0)
    kw = dict(tokens=False, num_heads=1, spatial_density=(2, 2, 2), temporal_density=(4, 1, 1))
    mean = build_adapter("d2st", 8, 1.0, (4, 3, 3), opts=AdapterOptions(fusion="mean"), **kw)
    summ = build_adapter("d2st", 8, 1.0, (4, 3, 3), opts=AdapterOptions(fusion="sum"), **kw)
    summ.load_state_dict(mean.state_dict())
    with torch.no_grad():
        mean.up.weight.normal_()
        summ.up.weight.copy_(mean.up.weight)
    x = torch.randn(8, 8, 3, 3)
    assert not torch.allclose(mean(x), summ(x))
    # paper's offset net has no LayerNorm: fewer parameters
    no_ln = build_adapter("d2st", 8, 1.0, (4, 3, 3), opts=AdapterOptions(offset_norm=False), **kw)
    assert sum(p.numel() for p in no_ln.parameters()) < sum(p.numel() for p in mean.parameters())


def test_frozen_bn_stats_do_not_move(tmp_path_factory):
    enc = _build(tmp_path_factory, "resnet_tiny", "d2st").train()
    bns = {n: m for n, m in enc.trunk.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert bns and all(not m.training for m in bns.values())
    before = {n: m.running_mean.clone() for n, m in bns.items()}
    enc(_video("resnet_tiny") * 5 + 3)
    for n, m in bns.items():
        torch.testing.assert_close(m.running_mean, before[n])


@pytest.mark.parametrize(
    "key,value",
    [
        ("adapter", "nope"),
        ("backbone", "resnet9"),
        ("positions", "middle"),
        ("fusion", "max"),
        ("preset", "mine"),
    ],
)
def test_config_rejects_unknown_names(key, value):
    with pytest.raises(ValueError, match=rf"model\.{key}.*allowed"):
        ModelCfg(**{key: value})
