"""aDSTA: anisotropic Deformable Spatio-Temporal Attention (D2ST-Adapter, Sec. 3.2, Eq. 3-4).

A T_r x H_r x W_r grid of reference points is laid over the (T, H, W) feature volume; a small
offset network shifts each point (bounded by tanh), the input volume is sampled there by trilinear
interpolation (Eq. 3), and the N_s = T_r*H_r*W_r sampled features become keys and values shared by
every query token (Eq. 4). The sampling densities (T_r, H_r, W_r) are the module's parameters; the
offset network's depthwise kernel and stride are derived from them (``conv_geometry``), which
reproduces the kernels/strides hard-coded in the official code for every Table 14 setting at
224 px; a caller may instead give the kernel and stride directly (``conv``), as the official code
does for every ViT whatever its patch grid.

Letters: B videos, C channels, T frames, H x W spatial, G groups (= heads), N tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

Size3 = tuple[int, int, int]

REF_POINTS = ("official", "window")


def conv_geometry(size: int, density: int) -> tuple[int, int]:
    """Kernel and stride of a padding-free conv that turns ``size`` positions into ``density``.

    stride = floor(n / d), kernel = n - (d - 1) * stride, so (n - kernel) / stride + 1 = d exactly.
    With n = 56, d = 8 this gives (7, 7); n = 14, d = 4 -> (5, 3); n = 7, d = 2 -> (4, 3);
    n = 8, d = 8 -> (1, 1): the kernels/strides hard-coded in qizhongtan/D2ST-Adapter for the
    Table 14 densities. A density larger than the size is clipped to the size (one point per
    position).
    """
    d = max(1, min(density, size))
    stride = size // d
    return size - (d - 1) * stride, stride


def grid_geometry(
    feature_size: Size3, density: Size3 | None, conv: tuple[Size3, Size3] | None = None
) -> tuple[Size3, Size3, Size3]:
    """(kernel, stride, grid) per axis (t, h, w) of the offset network's strided conv.

    Args:
        feature_size: (T, H, W) of the input volume.
        density: requested (T_r, H_r, W_r); kernel and stride are derived (``conv_geometry``).
        conv: (kernel, stride) given directly instead (``density`` is then ignored); the grid
            is the padding-free conv's output size (n - k) // s + 1.

    Raises:
        ValueError: a given kernel is larger than the feature volume on some axis.
    """
    if conv is None:
        ks = [conv_geometry(n, d) for n, d in zip(feature_size, density, strict=True)]
    else:
        ks = list(zip(conv[0], conv[1], strict=True))
        if any(k > n for n, (k, _) in zip(feature_size, ks, strict=True)):
            raise ValueError(
                f"offset conv kernel {tuple(conv[0])} is larger than the feature volume "
                f"{tuple(feature_size)}"
            )
    kernel = tuple(k for k, _ in ks)
    stride = tuple(s for _, s in ks)
    grid = tuple((n - k) // s + 1 for n, (k, s) in zip(feature_size, ks, strict=True))
    return kernel, stride, grid  # type: ignore[return-value]


class LayerNorm3d(nn.LayerNorm):
    """LayerNorm over the channel axis of a (B, C, T, H, W) volume, per position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = rearrange(x, "b c t h w -> b t h w c")
        return rearrange(super().forward(x), "b t h w c -> b c t h w")


@torch.no_grad()
def reference_points(
    feature_size: Size3,
    kernel: Size3,
    stride: Size3,
    grid: Size3,
    mode: str,
    align_corners: bool,
    device=None,
) -> torch.Tensor:
    """Reference points in normalised [-1, 1] coordinates, shape (T_r, H_r, W_r, 3), order (t, h, w).

    ``official``: cell centres (2i + 1) / n - 1 of an n-cell grid over [-1, 1] (official code).
    ``window``: the centre i * stride + (kernel - 1) / 2 of the conv window that produced the
    point's offset, normalised consistently with ``align_corners`` (with align_corners=True the
    official formula lands slightly inside the true centres).
    """
    axes = []
    for n_in, k, s, n in zip(feature_size, kernel, stride, grid, strict=True):
        i = torch.arange(n, device=device, dtype=torch.float32)
        if mode == "official":
            axes.append((2 * i + 1) / n - 1)
        elif mode == "window":
            c = i * s + (k - 1) / 2  # voxel coordinate of the window centre
            axes.append(c / max(n_in - 1, 1) * 2 - 1 if align_corners else (c + 0.5) / n_in * 2 - 1)
        else:
            raise ValueError(f"ref_points: unknown {mode!r}; allowed: {list(REF_POINTS)}")
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


class ADSTA(nn.Module):
    """Anisotropic deformable spatio-temporal attention over a (T, H, W) token volume.

    Queries are all input tokens (Eq. 4): the T*H*W volume tokens plus, optionally, extra tokens
    appended after them (the ViT's per-frame CLS tokens, which take part as queries only). Keys and
    values come from the input sampled at the shifted reference points (Eq. 3), shared by all
    queries. Offsets come from the queries through a per-group offset network (depthwise strided
    Conv3d -> channel LayerNorm -> GELU -> 1x1x1 Conv3d to (t, h, w), no bias).

    Args:
        dim: channels C (the adapter's bottleneck width).
        num_heads: heads; also the number of offset groups G (official: G = heads).
        feature_size: (T, H, W) of the volume the module will see.
        density: requested sampling densities (T_r, H_r, W_r); clipped to ``feature_size``.
        conv: the offset conv's (kernel, stride) given directly; None derives them from
            ``density`` (see ``grid_geometry``).
        offset_factor: f in |offset| <= min(1, f / n) per axis (official 2.0).
        offset_norm: LayerNorm inside the offset network (official True; not in the paper).
        ref_points: "official" ((2i+1)/n - 1) or "window" (see ``reference_points``).
        align_corners: passed to ``F.grid_sample`` (official True).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        feature_size: Size3,
        density: Size3 | None,
        offset_factor: float = 2.0,
        offset_norm: bool = True,
        ref_points: str = "official",
        align_corners: bool = True,
        conv: tuple[Size3, Size3] | None = None,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads: {num_heads} does not divide dim {dim}")
        if ref_points not in REF_POINTS:
            raise ValueError(f"ref_points: unknown {ref_points!r}; allowed: {list(REF_POINTS)}")
        self.dim, self.num_heads = dim, num_heads
        self.feature_size = tuple(feature_size)
        self.kernel, self.stride, self.grid = grid_geometry(
            self.feature_size, None if density is None else tuple(density), conv
        )
        self.conv_rule = "derived" if conv is None else "given"  # reporting only
        self.ref_mode, self.align_corners = ref_points, align_corners
        gc = dim // num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.offset = nn.Sequential(
            nn.Conv3d(gc, gc, self.kernel, self.stride, groups=gc),
            LayerNorm3d(gc) if offset_norm else nn.Identity(),
            nn.GELU(),
            nn.Conv3d(gc, 3, 1, bias=False),
        )
        # |offset| bound per axis (t, h, w): min(1, f / n) normalised units = at most one cell.
        bound = [min(1.0, offset_factor / n) for n in self.grid]
        self.register_buffer("offset_bound", torch.tensor(bound), persistent=False)
        ref = reference_points(
            self.feature_size, self.kernel, self.stride, self.grid, ref_points, align_corners
        )
        self.register_buffer("ref", ref, persistent=False)  # (T_r, H_r, W_r, 3)

    @property
    def num_points(self) -> int:
        return self.grid[0] * self.grid[1] * self.grid[2]

    def sampling_locations(self, q_vol: torch.Tensor) -> torch.Tensor:
        """Shifted points p = p_ref + tanh(offset) * bound, (B*G, T_r, H_r, W_r, 3) in (t, h, w)."""
        off = self.offset(q_vol)  # (B*G, 3, T_r, H_r, W_r), channels (t, h, w)
        off = torch.tanh(rearrange(off, "bg k t h w -> bg t h w k")) * self.offset_bound
        return self.ref.to(off.dtype) + off  # not clamped (official): may leave [-1, 1]

    def sample(self, x_vol: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Eq. 3: trilinear samples of x_vol (B*G, C/G, T, H, W) at pos (B*G, T_r, H_r, W_r, 3).

        ``pos`` is in our (t, h, w) order; grid_sample's last axis is (x, y, z) = (w, h, t), hence
        the flip. align_corners as configured (True: -1 / +1 are the first / last voxel centres);
        points outside the volume read zeros (padding_mode="zeros", official).
        """
        return F.grid_sample(
            x_vol,
            pos.flip(-1).to(x_vol.dtype),
            mode="bilinear",
            padding_mode="zeros",
            align_corners=self.align_corners,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, N, C) tokens, the first T*H*W in (t, h, w) order, then N - THW extra queries."""
        B, N, C = x.shape
        T, H, W = self.feature_size
        G = self.num_heads
        if N < T * H * W:
            raise ValueError(f"aDSTA built for (T,H,W)={self.feature_size} got {N} tokens")
        q = self.q(x)  # (B, N, C)
        q_vol = rearrange(q[:, : T * H * W], "b (t h w) (g c) -> (b g) c t h w", t=T, h=H, g=G)
        pos = self.sampling_locations(q_vol)  # (B*G, T_r, H_r, W_r, 3)
        # Eq. 3: keys/values are sampled from the input X itself, not from Q (official).
        x_vol = rearrange(x[:, : T * H * W], "b (t h w) (g c) -> (b g) c t h w", t=T, h=H, g=G)
        sampled = rearrange(self.sample(x_vol, pos), "(b g) c t h w -> b (t h w) (g c)", b=B)
        # Eq. 4: every token queries the N_s shared keys/values, G heads of C/G channels.
        k, v = self.k(sampled), self.v(sampled)
        q, k, v = (rearrange(z, "b n (g d) -> b g n d", g=G) for z in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, G, N, C/G)
        return self.proj(rearrange(out, "b g n d -> b n (g d)"))  # (B, N, C)
