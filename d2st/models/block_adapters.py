"""Adapters that change the inside of a ViT block: ST-Adapter x2, AIM, DualPath (CLIP ViTs only).

D2ST-Adapter and the variants in ``adapters.py`` sit after a block. The peers the paper compares
with on CLIP ViT-B/16 (Table 1, Table 3) rewire the block itself. Each class here holds one
method's tunable modules and a ``block_forward(block, x)`` that runs the frozen block's own pieces
(open_clip ``ResidualAttentionBlock``: ``ln_1``, ``attn``, ``ls_1``, ``ln_2``, ``mlp``, ``ls_2``)
in the method's order; ``backbones.ViTEncoder`` installs it (the trunk's weights and keys stay
as they are). Facts and their sources: docs/MODEL.md "Peer adapters on ViT".

- ST-Adapter (Pan et al., NeurIPS 2022; linziyi96/st-adapter): an ST-Adapter before MHSA and
  one before the MLP of every block (x <- x + fc2(DWConv3d_{3x1x1}(fc1(x))) on patch tokens).
- AIM (Yang et al., ICLR 2023; taoyang1122/adapt-image-models): the block's own attention is run
  twice, first over the T frames of each patch position (temporal adaptation, T-Adapter after
  it), then over the tokens of each frame (spatial, S-Adapter after it); an MLP-Adapter runs in
  parallel with the MLP, scaled by s.
- DualPath (Park et al., CVPR 2023; park-jungin/DualPath): every clip is fed twice, as its frames
  (spatial path: adapters parallel to MHSA and MLP) and as grid-like framesets, g x g consecutive
  frames tiled into one image (temporal path: serial adapters around MHSA, one after the MLP).

Letters: B videos, T frames, N = 1 + H*W tokens per frame (CLS first), C channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class Bottleneck(nn.Module):
    """``scale * up(drop(GELU(down(x))))`` with ``up`` zero-initialised (no residual inside).

    The adapter of AIM and of DualPath; both zero their up-projection (weight and bias), so the
    branch is zero at init.

    Args:
        dim: channels C.
        hidden: bottleneck width.
        scale: fixed output scale.
        dropout: dropout after GELU (DualPath 0.1, AIM none).
    """

    def __init__(self, dim: int, hidden: int, scale: float = 1.0, dropout: float = 0.0):
        super().__init__()
        self.down = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.up = nn.Linear(hidden, dim)
        self.scale = scale
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.up(self.drop(self.act(self.down(x))))


class STConv(nn.Module):
    """ST-Adapter: ``x + fc2(DWConv3d(fc1(x)))`` on the patch tokens; CLS passes unchanged.

    No activation, kernel (3, 1, 1) with padding (1, 0, 0); the conv's weight and bias and both
    linear biases start at zero (linziyi96/st-adapter), so it is the identity at init.
    """

    def __init__(self, dim: int, hidden: int, frames: int, size: tuple[int, int]):
        super().__init__()
        self.frames, self.size = frames, tuple(size)
        self.fc1 = nn.Linear(dim, hidden)
        self.conv = nn.Conv3d(hidden, hidden, (3, 1, 1), padding=(1, 0, 0), groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)
        for p in (self.conv.weight, self.conv.bias, self.fc1.bias, self.fc2.bias):
            nn.init.zeros_(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B*T, N, C) -> same."""
        (H, W), T = self.size, self.frames
        vol = rearrange(self.fc1(x[:, 1:]), "(b t) (h w) c -> b c t h w", t=T, h=H, w=W)
        upd = rearrange(self.conv(vol), "b c t h w -> (b t) (h w) c")  # (B*T, H*W, C')
        return x + torch.cat([torch.zeros_like(x[:, :1]), self.fc2(upd)], dim=1)


def attend(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The block's frozen MHSA (and layer scale) over the middle axis of a batch-first x (B, L, C)."""
    mha = block.attn
    q = x if mha.batch_first else x.transpose(0, 1)
    out = mha(q, q, q, need_weights=False)[0]
    return block.ls_1(out if mha.batch_first else out.transpose(0, 1))


def feed_forward(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The block's frozen MLP (and layer scale) on already normalised tokens."""
    return block.ls_2(block.mlp(x))


class STBlock(nn.Module):
    """ST-Adapter as configured on ViT: one before MHSA and one before the MLP of the block.

    x <- A1(x); x <- x + MHSA(LN1 x); x <- A2(x); x <- x + MLP(LN2 x)  (linziyi96/st-adapter).
    """

    per_block = 2

    def __init__(self, dim: int, hidden: int, frames: int, size: tuple[int, int]):
        super().__init__()
        self.pre_attn = STConv(dim, hidden, frames, size)
        self.pre_mlp = STConv(dim, hidden, frames, size)

    def block_forward(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """x: (B*T, N, C) -> same."""
        x = self.pre_attn(x)
        x = x + attend(block, block.ln_1(x))
        x = self.pre_mlp(x)
        return x + feed_forward(block, block.ln_2(x))


class AIMBlock(nn.Module):
    """AIM: temporal and spatial adaptation through the block's one (frozen) attention, MLP adapter.

    With TA = T-Adapter, SA = S-Adapter, MA = MLP-Adapter (all ``Bottleneck``, zero-init up):
        x <- x + TA(MHSA_t(LN1 x))             attention over the T frames of each position
        x <- x + MHSA(LN1 x) + SA(MHSA(LN1 x))  S-Adapter with its own skip, on the MHSA output
        x <- x + MLP(LN2 x) + s * MA(LN2 x)
    With ``temporal_adapters=2`` (AIM's SSv2 setting) a residual T-Adapter also runs before the
    temporal attention: MHSA_t(h + TA_in(h)), h = LN1 x. Every branch is zero at init, so the
    block starts as the frozen CLIP block. AIM's stochastic depth on the temporal branch is left
    out (no drop path anywhere in this pipeline).
    """

    def __init__(
        self, dim: int, hidden: int, frames: int, scale: float = 0.5, temporal_adapters: int = 1
    ):
        super().__init__()
        if temporal_adapters not in (1, 2):
            raise ValueError(f"AIM temporal_adapters: {temporal_adapters} not in (1, 2)")
        self.frames, self.scale = frames, scale
        self.t_adapter_in = Bottleneck(dim, hidden) if temporal_adapters == 2 else None
        self.t_adapter = Bottleneck(dim, hidden)
        self.s_adapter = Bottleneck(dim, hidden)
        self.mlp_adapter = Bottleneck(dim, hidden)
        self.per_block = 2 + temporal_adapters

    def block_forward(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """x: (B*T, N, C) -> same."""
        n = x.shape[1]
        h = block.ln_1(rearrange(x, "(b t) n c -> (b n) t c", t=self.frames))  # per position
        if self.t_adapter_in is not None:
            h = h + self.t_adapter_in(h)
        xt = self.t_adapter(attend(block, h))  # (B*N, T, C)
        x = x + rearrange(xt, "(b n) t c -> (b t) n c", n=n)
        a = attend(block, block.ln_1(x))  # (B*T, N, C), per frame
        x = x + a + self.s_adapter(a)
        h = block.ln_2(x)
        return x + feed_forward(block, h) + self.scale * self.mlp_adapter(h)


def grid_side(frames: int) -> int:
    """DualPath's frameset side g: 4 (16 frames per image, the original) when T is a multiple
    of 16, else 2 (4 frames per image, e.g. T = 8 in few-shot); T must be a multiple of 4."""
    if frames % 16 == 0:
        return 4
    if frames % 4 == 0:
        return 2
    raise ValueError(f"model.frames: dualpath tiles 4 or 16 frames per image; {frames} is neither")


class GridFrameset(nn.Module):
    """DualPath's inputs and outputs: T frames + T/g^2 grid images in, (frame ; grid) CLS out.

    ``frames`` turns a clip (B, T, 3, H, W) into (B, Tt + T, 3, H, W): first the Tt = T / g^2
    grid images (g x g consecutive frames tiled row-major into a (gH, gW) image, resized back to
    H x W bilinearly), then the T frames (the spatial path; DualPath samples Ts = 8 frames, which
    at the paper's T = 8 is every frame). ``embed_hook`` adds a learnable, zero-initialised
    embedding to the grid images' tokens before ``ln_pre`` (DualPath instead replaces CLIP's
    positional embedding there with a new random one plus a sinusoidal code of the tile index;
    ours keeps the temporal path equal to CLIP at init). ``features`` returns, per frame, its
    spatial CLS joined with the CLS of the grid image it belongs to: (B, T, 2C), as DualPath
    joins the two paths' features.
    """

    def __init__(self, frames: int, width: int, tokens: int):
        super().__init__()
        self.frames, self.side = frames, grid_side(frames)
        self.grids = frames // self.side**2  # Tt
        self.grid_embedding = nn.Parameter(torch.zeros(tokens, width))

    def frames_in(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B, Tt + T, 3, H, W)."""
        B, T, C, H, W = x.shape
        g = self.side
        grid = rearrange(x, "b (n gh gw) c h w -> (b n) c (gh h) (gw w)", gh=g, gw=g)
        grid = F.interpolate(grid, size=(H, W), mode="bilinear", align_corners=False)
        grid = rearrange(grid, "(b n) c h w -> b n c h w", b=B)  # (B, Tt, 3, H, W)
        return torch.cat([grid, x], dim=1)

    def embed_hook(self, module: nn.Module, args: tuple) -> tuple:
        """Forward pre-hook on ``ln_pre``: add the grid embedding to the grid images' tokens."""
        x = rearrange(args[0], "(b t) n c -> b t n c", t=self.grids + self.frames)
        x = torch.cat([x[:, : self.grids] + self.grid_embedding.to(x.dtype), x[:, self.grids :]], 1)
        return (rearrange(x, "b t n c -> (b t) n c"), *args[1:])

    def features(self, f: torch.Tensor) -> torch.Tensor:
        """(B, Tt + T, C) CLS features -> (B, T, 2C): [frame t ; grid image of frame t]."""
        grid, frames = f[:, : self.grids], f[:, self.grids :]
        grid = grid.repeat_interleave(self.side**2, dim=1)  # (B, T, C)
        return torch.cat([frames, grid], dim=-1)


class DualPathBlock(nn.Module):
    """DualPath: a temporal path on the grid images and a spatial path on the frames, one block.

    Tokens arrive as (B*(Tt + T), N, C), per video the Tt grid images first. Adapters are
    ``Bottleneck`` (GELU, dropout 0.1, zero-init up; park-jungin/DualPath):
        temporal: x <- x + TA2(MHSA(TA1(LN1 x)));  x <- x + TM(MLP(LN2 x))      (serial)
        spatial:  x <- x + MHSA(LN1 x) + SA(LN1 x); x <- x + MLP(LN2 x) + SM(LN2 x) (parallel)
    At init the spatial path is the frozen CLIP block and the temporal path passes its tokens
    unchanged (TA2 and TM output zero), as in the original.
    """

    per_block = 5

    def __init__(self, dim: int, hidden: int, frames: int, grids: int, dropout: float = 0.1):
        super().__init__()
        self.frames, self.grids = frames, grids
        self.t_attn_in = Bottleneck(dim, hidden, dropout=dropout)
        self.t_attn = Bottleneck(dim, hidden, dropout=dropout)
        self.t_mlp = Bottleneck(dim, hidden, dropout=dropout)
        self.s_attn = Bottleneck(dim, hidden, dropout=dropout)
        self.s_mlp = Bottleneck(dim, hidden, dropout=dropout)

    def block_forward(self, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """x: (B*(Tt + T), N, C) -> same."""
        x = rearrange(x, "(b t) n c -> b t n c", t=self.grids + self.frames)
        xt = rearrange(x[:, : self.grids], "b t n c -> (b t) n c")  # (B*Tt, N, C)
        xs = rearrange(x[:, self.grids :], "b t n c -> (b t) n c")  # (B*T, N, C)
        xt = xt + self.t_attn(attend(block, self.t_attn_in(block.ln_1(xt))))
        xt = xt + self.t_mlp(feed_forward(block, block.ln_2(xt)))
        h = block.ln_1(xs)
        xs = xs + attend(block, h) + self.s_attn(h)
        h = block.ln_2(xs)
        xs = xs + feed_forward(block, h) + self.s_mlp(h)
        xt = rearrange(xt, "(b t) n c -> b t n c", t=self.grids)
        xs = rearrange(xs, "(b t) n c -> b t n c", t=self.frames)
        return rearrange(torch.cat([xt, xs], dim=1), "b t n c -> (b t) n c")
