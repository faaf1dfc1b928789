"""Contracts of the ViT-only peers (ST-Adapter x2, AIM, DualPath) on a tiny CLIP-style ViT."""

from __future__ import annotations

import pytest
import torch

from d2st.models.adapters import VARIANTS, build_adapter
from d2st.models.block_adapters import GridFrameset, grid_side
from d2st.models.config import ModelCfg, build_encoder

SIZE, FRAMES = 32, 4  # 2 x 2 patches per frame; DualPath tiles the 4 frames into one 2 x 2 grid
PEERS = [v for v, s in VARIANTS.items() if s is not None and s.block is not None]
# Trainable trunk extras of each method's public code, besides its adapters (facts).
EXTRAS = {
    "st_vit": set(),
    "aim": {"temporal_embedding", "trunk.ln_post.weight", "trunk.ln_post.bias"},
    "aim_ssv2": {"temporal_embedding", "trunk.ln_post.weight", "trunk.ln_post.bias"},
    "dualpath": {"trunk.class_embedding", "trunk.positional_embedding", "frameset.grid_embedding"},
}


@pytest.fixture(scope="module")
def trunk_file(tmp_path_factory):
    from safetensors.torch import save_file

    from d2st.models.backbones import create_trunk

    torch.manual_seed(0)
    trunk = create_trunk("vit_tiny", "random", image_size=SIZE)
    path = tmp_path_factory.mktemp("trunk") / "vit_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in trunk.state_dict().items()}, str(path))
    return str(path)


def _build(trunk_file, adapter):
    cfg = ModelCfg(
        backbone="vit_tiny", adapter=adapter, frames=FRAMES, image_size=SIZE, weights=trunk_file
    )
    return build_encoder(cfg)


def _video(b=2):
    torch.manual_seed(1)
    return torch.randn(b, FRAMES, 3, SIZE, SIZE)


def _wake(enc, std=0.05):
    """Move every zero-initialised adapter tensor off zero, so every parameter matters."""
    torch.manual_seed(2)
    with torch.no_grad():
        for p in enc.parameters():
            if p.requires_grad and not p.any():
                p.normal_(std=std)


def test_peers_are_the_rows_the_issue_names():
    assert set(PEERS) == set(EXTRAS)


@pytest.mark.parametrize("adapter", PEERS)
def test_identity_at_init(trunk_file, adapter):
    """Every peer starts as the frozen CLIP (DualPath: its spatial path; the temporal half is new)."""
    x = _video()
    with torch.no_grad():
        ref = _build(trunk_file, "none").eval()(x)
        y = _build(trunk_file, adapter).eval()(x)
    width = ref.shape[-1]
    assert y.shape == (2, FRAMES, 2 * width if adapter == "dualpath" else width)
    torch.testing.assert_close(y[..., :width], ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("adapter", PEERS)
def test_gradients_reach_exactly_the_tunable_parameters(trunk_file, adapter):
    enc = _build(trunk_file, adapter).train()
    none = _build(trunk_file, "none")
    # the trunk keeps its parameter names (the block rules take over the blocks' own modules)
    assert enc.trunk.state_dict().keys() == none.trunk.state_dict().keys()
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    adapter_names = {n for n, _ in enc.named_parameters() if n.startswith("adapters.")}
    assert adapter_names and trainable == adapter_names | EXTRAS[adapter]
    assert enc.tunable_parameters() == sum(p.numel() for p in enc.parameters() if p.requires_grad)
    _wake(enc)
    y = enc(_video())
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    # ST-Adapter leaves CLS unchanged, and after the last block only CLS is read: the last
    # block's pre-MLP adapter cannot reach the feature (true of the original as well).
    last = str(len(enc.adapters) - 1)
    dead = {n for n in trainable if n.startswith(f"adapters.{last}.pre_mlp.")}
    assert len(dead) == (6 if adapter == "st_vit" else 0)  # fc1, conv, fc2 weights and biases
    for n, p in enc.named_parameters():
        if n in trainable:
            assert p.grad is not None and torch.isfinite(p.grad).all(), n
            assert (p.grad.abs().sum() > 0) == (n not in dead), n
        else:
            assert p.grad is None, f"frozen {n} got a gradient"


def test_aim_temporal_adapter_is_what_mixes_frames(trunk_file):
    """AIM attends over frames only through the T-Adapter branch: without it frames stay apart."""
    x = _video(1)
    x2 = x.clone()
    x2[:, 0] += 1.0  # change frame 0 only
    for wake_temporal in (False, True):
        enc = _build(trunk_file, "aim").eval()
        with torch.no_grad():
            for a in enc.adapters.values():
                a.s_adapter.up.weight.normal_(std=0.05)
                if wake_temporal:
                    a.t_adapter.up.weight.normal_(std=0.05)
            moved = (enc(x2) - enc(x))[0, 1:].abs().max()  # frames 1..T-1
        assert (moved > 1e-4) == wake_temporal


def test_adapters_per_block():
    counts = {"st_vit": 2, "aim": 3, "aim_ssv2": 4, "dualpath": 5}
    for name, n in counts.items():
        module = build_adapter(
            name,
            32,
            0.25,
            (4, 2, 2),
            tokens=True,
            num_heads=1,
            spatial_density=(1, 1, 1),
            temporal_density=(1, 1, 1),
        )
        assert module.per_block == n
        assert sum(1 for m in module.modules() if hasattr(m, "up") or hasattr(m, "conv")) == n


def test_grid_frameset_tiles_consecutive_frames_row_major():
    """Frame k of a 2 x 2 grid lands in tile (k // 2, k % 2); the image is resized back to H x W."""
    fs = GridFrameset(frames=8, width=4, tokens=5)
    assert (fs.side, fs.grids) == (2, 2)
    x = torch.arange(8.0).view(1, 8, 1, 1, 1).expand(1, 8, 3, 4, 4)  # frame k is constant k
    out = fs.frames_in(x)  # (1, 2 + 8, 3, 4, 4)
    assert out.shape == (1, 10, 3, 4, 4)
    torch.testing.assert_close(out[:, 2:], x)
    for n in range(2):  # grid image n holds frames 4n..4n+3; each tile is 2 x 2 after resizing
        tiles = out[0, n, 0].unfold(0, 2, 2).unfold(1, 2, 2)  # (2, 2, 2, 2)
        for k in range(4):
            assert (tiles[k // 2, k % 2] == 4 * n + k).all()
    f = torch.randn(1, 10, 4)
    feats = fs.features(f)  # (1, 8, 8): [frame t ; its grid image]
    torch.testing.assert_close(feats[0, 5], torch.cat([f[0, 2 + 5], f[0, 1]]))


def test_grid_side_rule():
    assert [grid_side(t) for t in (4, 8, 16, 32)] == [2, 2, 4, 4]
    with pytest.raises(ValueError, match="model.frames"):
        grid_side(6)


@pytest.mark.parametrize("adapter", PEERS)
def test_vit_only_rows_reject_resnets(adapter):
    with pytest.raises(ValueError, match=r"model\.adapter.*ViT backbones only"):
        ModelCfg(backbone="resnet50", adapter=adapter)
    with pytest.raises(ValueError, match="ViT backbones only"):
        build_adapter(
            adapter,
            16,
            0.25,
            (4, 2, 2),
            tokens=False,
            num_heads=1,
            spatial_density=(1, 1, 1),
            temporal_density=(1, 1, 1),
        )
