"""``model.checkpointing``: same outputs and gradients, same state dict, blocks really recomputed."""

from __future__ import annotations

import copy

import pytest
import torch

from d2st.models.checkpointing import adapted_blocks, is_checkpointed
from d2st.models.config import ModelCfg, build_encoder

SIZE, FRAMES = 32, 4


def _build(backbone: str, checkpointing: bool):
    torch.manual_seed(0)
    cfg = ModelCfg(backbone=backbone, frames=FRAMES, image_size=SIZE, checkpointing=checkpointing)
    return build_encoder(cfg).train()


def _run(encoder, x, w):
    """Forward (B, T, C) features, a fixed random projection as loss, backward."""
    out = encoder(x)
    (out * w).sum().backward()
    grads = {n: p.grad.clone() for n, p in encoder.named_parameters() if p.requires_grad}
    return out.detach(), grads


@pytest.mark.parametrize("backbone", ["resnet_tiny", "vit_tiny8"])
def test_checkpointing_keeps_outputs_gradients_and_state(backbone):
    plain, ckpt = _build(backbone, False), _build(backbone, True)
    assert plain.state_dict().keys() == ckpt.state_dict().keys()
    for (k, a), b in zip(plain.state_dict().items(), ckpt.state_dict().values()):
        assert torch.equal(a, b), k  # same seed, same weights: only the forward differs
    blocks = adapted_blocks(ckpt)
    assert len(blocks) == 2 * len(ckpt.adapters) > 0
    assert all(is_checkpointed(m) for m in blocks)
    assert not any(is_checkpointed(m) for m in adapted_blocks(plain))

    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, FRAMES, 3, SIZE, SIZE, generator=g)
    w = torch.randn(2, FRAMES, plain.feature_dim, generator=g)
    counts = []
    for enc in (plain, ckpt):
        calls = []
        inner = [s for m in adapted_blocks(enc) for s in m.modules() if s is not m]
        hooks = [s.register_forward_hook(lambda *_, c=calls: c.append(1)) for s in inner]
        out, grads = _run(enc, x, w)
        for h in hooks:
            h.remove()
        counts.append(len(calls))
        if enc is plain:
            out_a, grads_a = out, grads
        else:
            out_b, grads_b = out, grads

    # with checkpointing, submodules of the adapted blocks run again in backward (recomputation;
    # non-reentrant checkpointing stops once the saved tensors it needs are rebuilt)
    assert counts[0] > 0 and counts[1] > counts[0]
    torch.testing.assert_close(out_b, out_a, rtol=0, atol=0)
    assert grads_a.keys() == grads_b.keys() and grads_a
    assert any(n.startswith("adapters.") for n in grads_a)
    for n in grads_a:
        torch.testing.assert_close(grads_b[n], grads_a[n], rtol=1e-6, atol=1e-7, msg=n)


def test_checkpointing_is_off_by_default_and_inert_without_grad():
    assert ModelCfg().checkpointing is False
    enc = _build("resnet_tiny", True).eval()
    x = torch.randn(1, FRAMES, 3, SIZE, SIZE)
    with torch.no_grad():
        y = enc(x)
    assert y.shape == (1, FRAMES, enc.feature_dim) and not y.requires_grad
    twin = copy.deepcopy(enc)  # the wrapper follows the copy, not the original
    for m in adapted_blocks(twin):
        assert m.forward.module is m
