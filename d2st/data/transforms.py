"""Clip augmentation as batched tensor ops: uint8 (B, T, H, W, 3) -> float (B, T, 3, crop, crop).

Shards store frames at the resize size (256 x 256 for real data, as the authors resize), so:

- train: a random crop per clip (the same window for every frame of the clip); queries may also get
  a horizontal flip (p = 0.5) and colour jitter (grayscale with p = 0.3, then brightness, contrast,
  saturation factors in [0.5, 1.5] and a hue shift in [-0.25, 0.25] in random order), drawn once
  per clip and applied to all its frames. This is the official SUPPORT_QUERY_DIFF
  pipeline; supports get only the crop. ``flip`` is explicit because the paper says "no flip on
  SSv2" while the code flips queries on every dataset (``data.flip: queries`` official, ``none``
  paper).
- test: the centre crop, deterministic (so per-video features can be cached exactly).

Two details follow the authors' code (``qizhongtan/D2ST-Adapter``,
``datasets/utils/transformations.py``) by default, with our earlier behaviour as an option:

- ``jitter_order`` (:data:`JITTER_ORDERS`): ``gray_first`` (theirs: ``GRAY_FIRST: true`` puts the
  grayscale op before the shuffled jitter ops) or ``gray_last`` (ours before issue 13);
- ``crop_range`` (:data:`CROP_RANGES`): ``exclusive`` (theirs: ``int(random.uniform(0, H - c))``,
  offsets 0..H-c-1, i.e. 0..31 for 256 -> 224) or ``inclusive`` (ours before: 0..H-c, 0..32).

The random draws are the same under every option (four factors, the op order, the grayscale
draw, then the next clip), so switching an option changes only what it names.

Both end with ``(x / 255 - mean) / std`` using the encoder's mean/std (RGB).
All randomness comes from an explicit ``torch.Generator`` so an episode's augmentation is a pure
function of its seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from einops import rearrange

JITTER = {"brightness": 0.5, "contrast": 0.5, "saturation": 0.5, "hue": 0.25, "grayscale_p": 0.3}
JITTER_ORDERS = ("gray_first", "gray_last")  # grayscale before the jitter ops (theirs) | after
CROP_RANGES = {  # offset upper bound (exclusive) of a random crop of side c from side H
    "exclusive": lambda H, c: max(1, H - c),  # theirs: int(uniform(0, H - c)) -> 0..H-c-1
    "inclusive": lambda H, c: H - c + 1,  # ours before issue 13: 0..H-c
}

NORMALIZE = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "none": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}


def to_float(clips: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float in [0, 1] (B, T, 3, H, W)."""
    return rearrange(clips, "b t h w c -> b t c h w").float().div_(255.0)


def normalise(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(B, T, 3, H, W) in [0, 1] -> (x - mean) / std per RGB channel."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device)[:, None, None]
    s = torch.tensor(std, dtype=x.dtype, device=x.device)[:, None, None]
    return (x - m) / s


def centre_crop(x: torch.Tensor, crop: int) -> torch.Tensor:
    """Centre crop of the last two axes (H, W)."""
    H, W = x.shape[-2:]
    if H < crop or W < crop:
        raise ValueError(f"frames {H}x{W} are smaller than the crop {crop}")
    top, left = (H - crop) // 2, (W - crop) // 2
    return x[..., top : top + crop, left : left + crop]


def eval_transform(clips: torch.Tensor, crop: int, mean, std) -> torch.Tensor:
    """Deterministic test view: centre crop + normalisation. uint8 (B,T,H,W,3) -> (B,T,3,c,c)."""
    return normalise(centre_crop(to_float(clips), crop), mean, std)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return float(low + (high - low) * torch.rand((), generator=generator))


def colour_jitter(
    clip: torch.Tensor, generator: torch.Generator, order: str = "gray_first"
) -> torch.Tensor:
    """ColorJitter(0.5, 0.5, 0.5, 0.25) + RandomGrayscale(0.3) with one draw for the whole clip.

    Draws, in this order: brightness, contrast, saturation, hue factors; a permutation of the
    four ops; the grayscale coin (p = 0.3). ``order`` places grayscale before the four ops
    (``gray_first``, theirs) or after them (``gray_last``).

    Args:
        clip: (T, 3, H, W) in [0, 1].
        generator: the source of randomness.
        order: one of :data:`JITTER_ORDERS`.
    """
    if order not in JITTER_ORDERS:
        raise ValueError(f"data.jitter_order: unknown {order!r}; allowed: {list(JITTER_ORDERS)}")
    # imported here: torchvision pulls in torch._dynamo (about 1.3 s per process), and only
    # colour jitter needs it
    import torchvision.transforms.v2.functional as TF

    ops = {
        0: lambda x, f: TF.adjust_brightness(x, f),
        1: lambda x, f: TF.adjust_contrast(x, f),
        2: lambda x, f: TF.adjust_saturation(x, f),
        3: lambda x, f: TF.adjust_hue(x, f),
    }
    b, c, s, h = (JITTER[k] for k in ("brightness", "contrast", "saturation", "hue"))
    factors = [
        _uniform(generator, 1 - b, 1 + b),
        _uniform(generator, 1 - c, 1 + c),
        _uniform(generator, 1 - s, 1 + s),
        _uniform(generator, -h, h),
    ]
    perm = torch.randperm(4, generator=generator).tolist()
    gray = float(torch.rand((), generator=generator)) < JITTER["grayscale_p"]
    if gray and order == "gray_first":
        clip = TF.rgb_to_grayscale(clip, num_output_channels=3)
    for i in perm:
        clip = ops[i](clip, factors[i])
    if gray and order == "gray_last":
        clip = TF.rgb_to_grayscale(clip, num_output_channels=3)
    return clip


def crop_offset(size: int, crop: int, generator: torch.Generator, crop_range="exclusive") -> int:
    """One random crop offset along an axis of ``size`` (see :data:`CROP_RANGES`)."""
    if crop_range not in CROP_RANGES:
        raise ValueError(f"data.crop_range: unknown {crop_range!r}; allowed: {list(CROP_RANGES)}")
    return int(torch.randint(0, CROP_RANGES[crop_range](size, crop), (), generator=generator))


def train_transform(
    clips: torch.Tensor,
    crop: int,
    mean,
    std,
    generator: torch.Generator,
    flip: bool = False,
    jitter: bool = False,
    jitter_order: str = "gray_first",
    crop_range: str = "exclusive",
) -> torch.Tensor:
    """Training view: per-clip random crop (+ flip, + colour jitter), consistent across frames.

    Args:
        clips: uint8 (B, T, H, W, 3).
        crop: output side.
        mean, std: normalisation (RGB).
        generator: all randomness (crop offsets, flip, jitter factors) comes from it.
        flip: horizontal flip with p = 0.5 per clip (official: queries only).
        jitter: colour jitter per clip (official: queries only).
        jitter_order: grayscale before (theirs) or after the jitter ops, :data:`JITTER_ORDERS`.
        crop_range: crop offsets 0..H-c-1 (theirs) or 0..H-c, :data:`CROP_RANGES`.

    Returns:
        float (B, T, 3, crop, crop).
    """
    x = to_float(clips)  # (B, T, 3, H, W)
    B, _, _, H, W = x.shape
    if H < crop or W < crop:
        raise ValueError(f"frames {H}x{W} are smaller than the crop {crop}")
    out = []
    for b in range(B):
        top = crop_offset(H, crop, generator, crop_range)
        left = crop_offset(W, crop, generator, crop_range)
        clip = x[b, :, :, top : top + crop, left : left + crop]  # (T, 3, crop, crop)
        if flip and float(torch.rand((), generator=generator)) < 0.5:
            clip = clip.flip(-1)
        if jitter:
            clip = colour_jitter(clip, generator, jitter_order)
        out.append(clip)
    return normalise(torch.stack(out), mean, std)
