"""Adapter variants as data: one ``Adapter`` class, a table of settings, and a builder.

Every adapter is a bottleneck with its own residual (D2ST-Adapter Eq. 1):
``out = x + act_up(up(act_mid(fuse(pathways(dpe(act_down(down(x))))))))``. The up-projection is
zero-initialised (``init_weights``), so every adapter starts as the identity. The variants differ
only in the pathways they run between down and up (``VARIANTS`` below):

- d2st: aDSTA-S || aDSTA-T after a shared DPE (Eq. 2-4); d2st_s / d2st_t: one pathway;
  d2st_uniform: both pathways at density (4, 4, 4) (Table 14 "aDSTA-Uniform").
- dst: depthwise 1x3x3 || 3x1x1 Conv3d + BN3d (DST-Adapter); st: one 3x1x1 depthwise Conv3d
  (ST-Adapter); vanilla: down -> act -> up.
- none (frozen backbone) and full (full fine-tuning) have no adapter.
- st_vit, aim, aim_ssv2, dualpath (CLIP ViTs only): the peers of Table 1 / Table 3, which rewire
  the block instead of following it (``block_adapters.py``); their rows fix their own width,
  scale and trainable extras as their public code does.

Layouts: a ResNet adapter sees frame maps (B*T, C, H, W); a ViT adapter sees tokens (B*T, 1+H*W, C)
(CLS first, CLIP's row-major patches). Inside, both become one token sequence per video: the
T*H*W volume tokens in (t, h, w) order, then the T CLS tokens (ViT only).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange
from torch import nn

from d2st.models.adsta import ADSTA, Size3
from d2st.models.block_adapters import AIMBlock, DualPathBlock, STBlock, grid_side
from d2st.models.variants import (  # noqa: F401 (the rows, re-exported here)
    BLOCK_RULES,
    VARIANTS,
    VIT_ONLY,
    AdapterOptions,
    AdapterSpec,
)

ACTS = {"gelu": nn.GELU, "relu": nn.ReLU, "none": nn.Identity}


class DeformablePathway(nn.Module):
    """Pre-LN residual aDSTA pathway: x + aDSTA(LN(x)) (official §1 steps 3-4)."""

    def __init__(self, dim: int, attn: ADSTA, cls_query: bool = True, kind: str = "adsta"):
        super().__init__()
        self.kind = kind  # "adsta_s" | "adsta_t" (reporting only)
        self.norm = nn.LayerNorm(dim)
        self.attn = attn
        self.cls_query = cls_query

    def forward(self, x: torch.Tensor, n_vol: int) -> torch.Tensor:
        """x: (B, N, C), the first n_vol tokens form the volume, the rest are CLS tokens."""
        if self.cls_query:
            return x + self.attn(self.norm(x))
        upd = self.attn(self.norm(x[:, :n_vol]))  # (B, n_vol, C); CLS tokens pass unchanged
        return x + torch.cat([upd, torch.zeros_like(x[:, n_vol:])], dim=1)


class ConvPathway(nn.Module):
    """Depthwise Conv3d over the volume (DST / ST-Adapter); CLS tokens pass through unchanged."""

    def __init__(
        self, dim: int, size: Size3, kernel: Size3, bias: bool, norm: bool, act: str = "none"
    ):
        super().__init__()
        self.size = size
        self.conv = nn.Conv3d(
            dim, dim, kernel, padding=tuple(k // 2 for k in kernel), groups=dim, bias=bias
        )
        self.norm = nn.BatchNorm3d(dim) if norm else nn.Identity()
        self.act = ACTS[act]()

    def forward(self, x: torch.Tensor, n_vol: int) -> torch.Tensor:
        T, H, W = self.size
        vol = rearrange(x[:, :n_vol], "b (t h w) c -> b c t h w", t=T, h=H)
        vol = self.act(self.norm(self.conv(vol)))
        return torch.cat([rearrange(vol, "b c t h w -> b (t h w) c"), x[:, n_vol:]], dim=1)


class Adapter(nn.Module):
    """Bottleneck adapter with its own residual (Eq. 1), for ResNet maps or ViT tokens.

    Args:
        dim: backbone channels C at the insertion point.
        hidden: bottleneck width C' = ratio * C.
        frames: T, used to fold (B*T) into B videos.
        size: (H, W) of the feature map / patch grid.
        pathways: modules ``f(x, n_vol)`` run in parallel on the bottleneck tokens.
        dpe: add the 3x3x3 depthwise DPE residual before the pathways (Eq. 2).
        fusion: "mean" or "sum" of the pathway outputs.
        act_down, act_mid, act_up: activation names after down, after fusion, after up.
        tokens: True for ViT token input (B*T, 1+H*W, C), False for maps (B*T, C, H, W).
        batch_first: ViT token layout (False: (1+H*W, B*T, C)).
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        frames: int,
        size: tuple[int, int],
        pathways: Sequence[nn.Module],
        dpe: bool,
        fusion: str = "mean",
        act_down: str = "none",
        act_mid: str = "gelu",
        act_up: str = "none",
        tokens: bool = False,
        batch_first: bool = True,
    ):
        super().__init__()
        self.frames, self.size, self.tokens, self.batch_first = (
            frames,
            tuple(size),
            tokens,
            batch_first,
        )
        self.fusion = fusion
        self.down = nn.Linear(dim, hidden)
        self.act_down = ACTS[act_down]()
        self.dpe = nn.Conv3d(hidden, hidden, 3, padding=1, groups=hidden) if dpe else None
        self.pathways = nn.ModuleList(pathways)
        self.act_mid = ACTS[act_mid]()
        self.up = nn.Linear(hidden, dim)
        self.act_up = ACTS[act_up]()
        self.init_weights()

    def init_weights(self) -> None:
        """Zero the up-projection so the adapter starts as the identity (official init)."""
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
        """Forward hook: apply the adapter to a wrapped block's output (ViT resblocks)."""
        return self(output)

    def _to_tokens(self, x: torch.Tensor) -> torch.Tensor:
        T, (H, W) = self.frames, self.size
        if not self.tokens:  # (B*T, C, H, W) -> (B, T*H*W, C)
            return rearrange(x, "(b t) c h w -> b (t h w) c", t=T)
        if not self.batch_first:
            x = rearrange(x, "n bt c -> bt n c")
        vol = rearrange(x[:, 1:], "(b t) (h w) c -> b (t h w) c", t=T, h=H, w=W)  # row-major
        cls = rearrange(x[:, 0], "(b t) c -> b t c", t=T)  # (B, T, C)
        return torch.cat([vol, cls], dim=1)

    def _from_tokens(self, z: torch.Tensor) -> torch.Tensor:
        T, (H, W) = self.frames, self.size
        if not self.tokens:
            return rearrange(z, "b (t h w) c -> (b t) c h w", t=T, h=H)
        vol = rearrange(z[:, : T * H * W], "b (t h w) c -> (b t) (h w) c", t=T, h=H)
        cls = rearrange(z[:, T * H * W :], "b t c -> (b t) 1 c")
        z = torch.cat([cls, vol], dim=1)  # (B*T, 1+H*W, C)
        return z if self.batch_first else rearrange(z, "bt n c -> n bt c")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B*T, C, H, W) maps or (B*T, 1+H*W, C) tokens -> same shape."""
        T, (H, W) = self.frames, self.size
        n_vol = T * H * W
        z = self.act_down(self.down(self._to_tokens(x)))  # (B, N, C')
        if self.dpe is not None:  # Eq. 2: volume tokens only, CLS gets no DPE (official)
            vol = rearrange(z[:, :n_vol], "b (t h w) c -> b c t h w", t=T, h=H)
            vol = rearrange(vol + self.dpe(vol), "b c t h w -> b (t h w) c")
            z = torch.cat([vol, z[:, n_vol:]], dim=1)
        if self.pathways:
            outs = [p(z, n_vol) for p in self.pathways]
            z = torch.stack(outs).sum(0)
            if self.fusion == "mean":
                z = z / len(outs)
        z = self.act_up(self.up(self.act_mid(z)))
        return x + self._from_tokens(z)


def make_pathway(
    kind: str,
    hidden: int,
    size: Size3,
    num_heads: int,
    density: Size3 | None,
    opts: AdapterOptions,
    conv: tuple[Size3, Size3] | None = None,
) -> nn.Module:
    """Build one pathway of ``kind`` for a (T, H, W) volume of ``hidden`` channels.

    ``conv``: the aDSTA offset conv's (kernel, stride); None derives it from ``density``.
    """
    if kind in ("adsta_s", "adsta_t"):
        attn = ADSTA(
            hidden,
            num_heads,
            size,
            density,
            offset_factor=opts.offset_factor,
            offset_norm=opts.offset_norm,
            ref_points=opts.ref_points,
            align_corners=opts.align_corners,
            conv=conv,
        )
        return DeformablePathway(hidden, attn, cls_query=opts.cls_query, kind=kind)
    paper_dst = opts.dst_act == "path_gelu"
    if kind == "conv_s":
        return ConvPathway(
            hidden, size, (1, 3, 3), bias=False, norm=True, act="gelu" if paper_dst else "none"
        )
    if kind == "conv_t":
        return ConvPathway(
            hidden, size, (3, 1, 1), bias=False, norm=True, act="gelu" if paper_dst else "none"
        )
    if kind == "conv_st":
        return ConvPathway(hidden, size, (3, 1, 1), bias=True, norm=False)
    raise ValueError(f"pathway: unknown {kind!r}")


def build_adapter(
    variant: str,
    dim: int,
    ratio: float,
    size: Size3,
    *,
    tokens: bool,
    num_heads: int,
    spatial_density: Size3,
    temporal_density: Size3,
    opts: AdapterOptions = AdapterOptions(),
    batch_first: bool = True,
    spatial_conv: tuple[Size3, Size3] | None = None,
    temporal_conv: tuple[Size3, Size3] | None = None,
) -> Adapter | None:
    """The adapter of ``variant`` for a (T, H, W) feature volume of ``dim`` channels.

    Args:
        variant: a key of ``VARIANTS``.
        dim: backbone channels C; the bottleneck is ``max(1, round(ratio * C))``.
        ratio: bottleneck ratio (Table 10).
        size: (T, H, W) of the frames' feature map / patch grid.
        tokens: ViT token layout (True) or ResNet maps (False).
        num_heads: aDSTA heads (= offset groups); must divide the bottleneck width.
        spatial_density, temporal_density: aDSTA-S / aDSTA-T densities (t, h, w).
        opts: official-vs-paper options.
        batch_first: ViT token layout.
        spatial_conv, temporal_conv: aDSTA-S / aDSTA-T offset conv (kernel, stride) given
            directly; None derives them from the densities. Ignored by fixed-density variants.

    Returns:
        The adapter, or None for "none" / "full".
    """
    if variant not in VARIANTS:
        raise ValueError(f"adapter: unknown {variant!r}; allowed: {list(VARIANTS)}")
    spec = VARIANTS[variant]
    if spec is None:
        return None
    if spec.block is not None:
        if not tokens:
            raise ValueError(f"adapter: {variant!r} {VIT_ONLY}")
        return build_block_adapter(spec, dim, size)
    hidden = max(1, round(ratio * dim))
    densities = {
        "adsta_s": spec.density or spatial_density,
        "adsta_t": spec.density or temporal_density,
    }
    convs = {} if spec.density else {"adsta_s": spatial_conv, "adsta_t": temporal_conv}
    pathways = [
        make_pathway(k, hidden, size, num_heads, densities.get(k), opts, convs.get(k))
        for k in spec.pathways
    ]
    mid = {
        "vanilla": opts.vanilla_act,
        "dst": "relu" if opts.dst_act == "fused_relu" else "none",
    }.get(spec.mid_act, spec.mid_act)
    vit_act = "gelu" if tokens and opts.vit_act else "none"
    return Adapter(
        dim,
        hidden,
        size[0],
        size[1:],
        pathways,
        dpe=spec.dpe,
        fusion=opts.fusion,
        act_down=vit_act,
        act_mid=mid,
        act_up=vit_act,
        tokens=tokens,
        batch_first=batch_first,
    )


def build_block_adapter(spec: AdapterSpec, dim: int, size: Size3) -> nn.Module:
    """The block-rule module of a ViT-only row for a (T, H, W) patch volume of ``dim`` channels."""
    hidden = int(dim * spec.ratio)  # the originals' int(ratio * d)
    T = size[0]
    if spec.block == "st_vit":
        return STBlock(dim, hidden, T, size[1:])
    if spec.block == "aim":
        return AIMBlock(dim, hidden, T, spec.scale, spec.temporal_adapters)
    if spec.block == "dualpath":
        return DualPathBlock(dim, hidden, T, T // grid_side(T) ** 2)
    raise ValueError(f"adapter block rule: unknown {spec.block!r}; allowed: {list(BLOCK_RULES)}")
