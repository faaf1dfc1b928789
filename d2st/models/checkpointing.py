"""Activation checkpointing of the adapted blocks (``model.checkpointing``, off by default).

With the trunk frozen, backward still runs through every trunk block between the input and the
last adapter, so autograd keeps each block's activations. Checkpointing keeps only the input of
each adapted block (ResNet: the stage ``layer{i}`` before its adapter; ViT: the residual block
``transformer.resblocks[i]`` whose output the adapter's hook rewrites) and of its adapter, and
recomputes their insides during backward (``torch.utils.checkpoint``, non-reentrant: gradients
reach the adapters' parameters even where the block's input needs no gradient; the RNG state and
autocast state of the forward are restored for the recomputation, so outputs and gradients equal
those without checkpointing).

The switch changes neither parameters nor state-dict keys: it replaces the ``forward`` of each
wrapped module instance by :class:`CheckpointedForward`, which calls the class's own ``forward``
under :func:`torch.utils.checkpoint.checkpoint` while gradients are enabled (unchanged under
``torch.no_grad()``, e.g. evaluation). Forward hooks (the ViT adapters) still run, outside the
block's checkpoint, and the adapter they call is checkpointed on its own.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


class CheckpointedForward:
    """A module's ``forward``, run under non-reentrant activation checkpointing.

    Args:
        module: the module whose class ``forward`` is wrapped (held by reference, so a deepcopy
            of the module gets a wrapper of the copy).
    """

    def __init__(self, module: nn.Module):
        self.module = module

    def __call__(self, *args, **kwargs):
        forward = type(self.module).forward.__get__(self.module)
        if not torch.is_grad_enabled():
            return forward(*args, **kwargs)
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)


def adapted_blocks(encoder: nn.Module) -> list[nn.Module]:
    """The trunk blocks that carry an adapter, then the adapters themselves.

    Args:
        encoder: a ``ResNetEncoder`` (adapters keyed ``layer{i}``) or ``ViTEncoder`` (adapters
            keyed by block index) from :func:`d2st.models.config.build_encoder`.
    """
    from d2st.models.backbones import ResNetEncoder, ViTEncoder

    if isinstance(encoder, ResNetEncoder):
        blocks = [getattr(encoder.trunk, name) for name in encoder.adapters]
    elif isinstance(encoder, ViTEncoder):
        blocks = [encoder.trunk.transformer.resblocks[int(i)] for i in encoder.adapters]
    else:
        raise TypeError(
            f"model.checkpointing: no adapted blocks known for {type(encoder).__name__}"
        )
    return [*blocks, *encoder.adapters.values()]


def enable_checkpointing(encoder: nn.Module) -> nn.Module:
    """Checkpoint every adapted block and adapter of ``encoder`` in place; returns it."""
    for module in adapted_blocks(encoder):
        if not isinstance(module.__dict__.get("forward"), CheckpointedForward):
            module.forward = CheckpointedForward(module)
    return encoder


def is_checkpointed(module: nn.Module) -> bool:
    """Whether :func:`enable_checkpointing` wrapped this module's forward."""
    return isinstance(module.__dict__.get("forward"), CheckpointedForward)
