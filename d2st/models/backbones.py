"""Frozen image trunks (timm ResNets, open_clip ViTs) wrapped with adapters, never forked.

``create_trunk(name, weights)`` builds the bare trunk named in CONTRACTS.md ("Backbones") and loads
its weights. ``ResNetEncoder`` / ``ViTEncoder`` wrap a trunk and run it frame by frame, calling
an adapter after each chosen stage (ResNet: after layer1..layer4 on the main path, official §4)
or after each chosen residual block (ViT: wrapped ``transformer.resblocks[i]``). Both return
per-frame features (B, T, C).

The trunk modules are the library's own; we only call their public pieces (timm ``conv1``..
``layer4``; open_clip ``_embeds``, ``transformer.resblocks``, ``_pool``), so weights load unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch
from einops import rearrange
from torch import nn

from d2st.models.variants import (  # noqa: F401 (the rows, re-exported here)
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    POSITIONS,
    TRUNKS,
    TrunkSpec,
    insertion_indices,
    stage_feature_sizes,
    trunk_spec,
)


def _build_random(name: str, image_size: int | None) -> nn.Module:
    spec = trunk_spec(name)
    kw = dict(spec.kwargs)
    if spec.family == "resnet":
        import timm
        from timm.models.resnet import BasicBlock, ResNet

        if spec.hub:  # a named timm architecture
            return timm.create_model(name, pretrained=False, num_classes=0)
        model = ResNet(
            BasicBlock, [1, 1, 1, 1], num_classes=0, stem_type="deep", output_stride=16, **kw
        )
        model.maxpool = nn.Identity()
        return model
    from open_clip.transformer import QuickGELU, VisionTransformer

    return VisionTransformer(image_size=image_size or 224, mlp_ratio=4.0, act_layer=QuickGELU, **kw)


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return sd


def create_trunk(
    name: str, weights: str | Path = "random", image_size: int | None = None
) -> nn.Module:
    """Build the bare trunk of backbone ``name`` and load its weights.

    Args:
        name: one of ``TRUNKS`` (resnet18/34/50, resnet_tiny, resnet_tiny16, vit_b16, vit_tiny,
            vit_l14).
        weights: "random" (library init), "hub" (timm ``pretrained=True`` on the ``*.tv_in1k``
            tag the official code's torchvision weights correspond to; open_clip
            ``pretrained="openai"``), or a path to a ``.safetensors`` / ``.pt`` file holding the
            bare trunk's ``state_dict()`` (``.pt`` loads with ``weights_only=True``).
        image_size: ViT input size (positional embedding length); default 224. ResNets ignore it.

    Loading a file is strict for timm trunks (any missing or unexpected key raises). For open_clip
    trunks the projection ``proj`` may be absent (we drop it anyway) and a positional embedding of
    another grid size is resampled with open_clip's ``resize_pos_embed``; anything else missing
    or unexpected raises.

    Returns:
        timm ``ResNet`` (``num_classes=0``) or open_clip ``VisionTransformer``, in eval mode.
    """
    spec = trunk_spec(name)
    if str(weights) == "hub":
        if not spec.hub:
            raise ValueError(f"weights: {name} has no hub weights; use 'random' or a path")
        if spec.family == "resnet":
            import timm

            model = timm.create_model(spec.hub, pretrained=True, num_classes=0)
        else:
            import open_clip

            if not spec.hub:
                raise ValueError(f"weights: {name} has no hub weights; use 'random' or a path")
            kw = {} if image_size in (None, 224) else {"force_image_size": image_size}
            model = open_clip.create_model(spec.hub, pretrained="openai", **kw).visual
        return model.eval()
    model = _build_random(name, image_size)
    if str(weights) != "random":
        path = Path(weights)
        if not path.is_file():
            raise ValueError(f"weights: {str(weights)!r} is not 'random', 'hub' or a file")
        sd = _load_state_dict(path)
        if spec.family == "resnet":
            model.load_state_dict(sd, strict=True)
        else:
            from open_clip.model import resize_pos_embed

            sd = {f"visual.{k}": v for k, v in sd.items()}  # the layout open_clip's helper expects
            resize_pos_embed(sd, _Holder(model))
            sd = {k.removeprefix("visual."): v for k, v in sd.items()}
            missing, unexpected = model.load_state_dict(sd, strict=False)
            missing = [k for k in missing if k != "proj"]
            if missing or unexpected:
                raise ValueError(
                    f"weights: {path} does not match {name}: missing {missing}, "
                    f"unexpected {unexpected}"
                )
    return model.eval()


class _Holder(nn.Module):
    """``resize_pos_embed`` expects a CLIP model with a ``.visual`` attribute."""

    def __init__(self, visual: nn.Module):
        super().__init__()
        self.visual = visual


class _Encoder(nn.Module):
    """What both encoders share: the contract attributes, counting and BN freezing."""

    trunk: nn.Module

    def train(self, mode: bool = True):
        """Train mode everywhere except the trunk's BatchNorm2d (official: always eval)."""
        super().train(mode)
        for m in self.trunk.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def tunable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def total_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class ResNetEncoder(_Encoder):
    """A timm ResNet run frame by frame, with an adapter after chosen stages (qizhongtan/D2ST-Adapter).

    Args:
        trunk: timm ``ResNet`` from ``create_trunk``.
        adapters: stage index (0..3 for layer1..layer4) -> adapter on the main path after it.
        frames: T.
        mean, std: RGB normalisation the trunk expects.
        train_trunk: full fine-tuning (trunk trainable); otherwise the trunk is frozen.
    """

    def __init__(
        self,
        trunk: nn.Module,
        adapters: dict[int, nn.Module],
        frames: int,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        train_trunk: bool = False,
    ):
        super().__init__()
        self.trunk = trunk.requires_grad_(train_trunk)
        self.adapters = nn.ModuleDict({f"layer{i + 1}": a for i, a in adapters.items()})
        self.frames, self.mean, self.std = frames, tuple(mean), tuple(std)
        self.feature_dim = trunk.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, 3, H, W) normalised frames -> (B, T, C) per-frame features."""
        B, T = x.shape[:2]
        t = self.trunk
        x = rearrange(x, "b t c h w -> (b t) c h w")
        x = t.maxpool(t.act1(t.bn1(t.conv1(x))))  # stem, (B*T, C0, H/4, W/4)
        for i in range(1, 5):
            x = getattr(t, f"layer{i}")(x)  # (B*T, C_i, H_i, W_i)
            if f"layer{i}" in self.adapters:
                x = self.adapters[f"layer{i}"](x)
        x = t.forward_head(x, pre_logits=True)  # global average pool, (B*T, C)
        return rearrange(x, "(b t) c -> b t c", b=B, t=T)


class _AdaptedBlock(nn.Module):
    """A ViT block whose forward is a block rule (``block_adapters``) over its own frozen pieces.

    It takes over the block's submodules under their own names, so the trunk's parameter names
    and weights do not change; the rule's module is referenced, not registered (its parameters
    live in ``ViTEncoder.adapters``).
    """

    def __init__(self, block: nn.Module, rule: nn.Module, batch_first: bool):
        super().__init__()
        if list(block.parameters(recurse=False)):
            raise ValueError(f"{type(block).__name__} has its own parameters; cannot adapt it")
        for name, child in block.named_children():
            self.add_module(name, child)
        self.__dict__["rule"] = rule  # not a submodule
        self.batch_first = batch_first

    def forward(self, q_x, k_x=None, v_x=None, attn_mask=None):
        """open_clip's block signature; x (B*T, N, C), or (N, B*T, C) when not batch-first."""
        if k_x is not None or v_x is not None or attn_mask is not None:
            raise ValueError("adapted ViT blocks take self-attention without a mask only")
        x = q_x if self.batch_first else q_x.transpose(0, 1)
        x = self.rule.block_forward(self, x)
        return x if self.batch_first else x.transpose(0, 1)


class ViTEncoder(_Encoder):
    """An open_clip ``VisionTransformer`` run frame by frame with adapters at chosen blocks.

    The trunk is used unchanged through its own ``forward``; two kinds of hooks add what the
    official ``ViT_CLIP`` re-implementation adds (qizhongtan/D2ST-Adapter):
    - a forward pre-hook on ``ln_pre`` adds the learned, zero-initialised temporal embedding
      (1, T, C) to every token of frame t, after the positional embedding and before ln_pre;
    - a forward hook on each chosen ``transformer.resblocks[i]`` applies the adapter to the
      block's output (x <- x + MHSA; x <- x + MLP; x <- Adapter(x)).
    An adapter with a ``block_forward`` (ST-Adapter x2, AIM, DualPath) instead replaces the
    block by an ``_AdaptedBlock`` that runs the block's pieces in that method's order. A
    ``frameset`` (DualPath) turns the clip into the frames the trunk sees and their CLS features
    back into per-frame features.
    The projection is dropped (``proj = None``) so the feature is the width-d CLS after ln_post.

    Args:
        trunk: open_clip ``VisionTransformer`` from ``create_trunk``.
        adapters: block index -> adapter.
        frames: T.
        temporal_embedding: add the temporal embedding (official True).
        train_extras: the ``extras`` trainable (official True).
        train_trunk: full fine-tuning.
        extras: trunk parameters (by attribute name) and ``temporal_embedding`` made trainable
            by ``train_extras``; the official D2ST set is CLS embedding, temporal embedding,
            ln_post.
        frameset: DualPath's ``GridFrameset``, or None.
    """

    def __init__(
        self,
        trunk: nn.Module,
        adapters: dict[int, nn.Module],
        frames: int,
        mean=CLIP_MEAN,
        std=CLIP_STD,
        temporal_embedding: bool = True,
        train_extras: bool = True,
        train_trunk: bool = False,
        extras: tuple[str, ...] = ("class_embedding", "temporal_embedding", "ln_post"),
        frameset: nn.Module | None = None,
    ):
        super().__init__()
        trunk.proj = None  # features stay width-d (official deletes proj)
        self.trunk = trunk.requires_grad_(train_trunk)
        self.adapters = nn.ModuleDict({str(i): a for i, a in adapters.items()})
        self.frames, self.mean, self.std = frames, tuple(mean), tuple(std)
        width = trunk.class_embedding.shape[-1]
        self.frameset = frameset
        self.feature_dim = width * (2 if frameset is not None else 1)
        self.temporal_embedding = (
            nn.Parameter(torch.zeros(1, frames, width)) if temporal_embedding else None
        )
        params = []
        for name in extras:
            if name != "temporal_embedding":
                part = getattr(trunk, name)
                params += [part] if isinstance(part, nn.Parameter) else list(part.parameters())
        if self.temporal_embedding is not None:
            if "temporal_embedding" in extras:
                params.append(self.temporal_embedding)
            trunk.ln_pre.register_forward_pre_hook(self._add_temporal_embedding)
        for p in params:
            p.requires_grad_(train_extras or train_trunk)
        if frameset is not None:
            trunk.ln_pre.register_forward_pre_hook(frameset.embed_hook)
        batch_first = getattr(trunk.transformer, "batch_first", True)
        blocks = trunk.transformer.resblocks
        for i, adapter in self.adapters.items():
            if hasattr(adapter, "block_forward"):
                blocks[int(i)] = _AdaptedBlock(blocks[int(i)], adapter, batch_first)
            else:
                blocks[int(i)].register_forward_hook(adapter.hook)

    def _add_temporal_embedding(self, module: nn.Module, args: tuple) -> tuple:
        x = args[0]  # (B*T, N, C), batch-first inside _embeds
        x = rearrange(x, "(b t) n c -> b t n c", t=self.frames)
        x = x + self.temporal_embedding.to(x.dtype)[:, :, None]
        return (rearrange(x, "b t n c -> (b t) n c"), *args[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, 3, H, W) normalised frames -> (B, T, C) CLS features after ln_post.

        With a frameset (DualPath) the trunk sees (B, Tt + T) images and C is twice the width.
        """
        if self.frameset is not None:
            x = self.frameset.frames_in(x)  # (B, Tt + T, 3, H, W)
        B, T = x.shape[:2]
        x = self.trunk(rearrange(x, "b t c h w -> (b t) c h w"))  # (B*T, C)
        x = rearrange(x, "(b t) c -> b t c", b=B, t=T)
        return x if self.frameset is None else self.frameset.features(x)
