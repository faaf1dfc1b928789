"""Clip transforms: shapes, crop consistency across frames, determinism, flip/jitter switches."""

from __future__ import annotations

import torch

from d2st.data.transforms import NORMALIZE, centre_crop, eval_transform, train_transform

MEAN, STD = NORMALIZE["imagenet"]


def _clips(B=3, T=4, H=12, W=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (B, T, H, W, 3), generator=g, dtype=torch.uint8)


def _unnormalise(x):
    return x * torch.tensor(STD)[:, None, None] + torch.tensor(MEAN)[:, None, None]


def test_eval_transform_is_centre_crop_normalised():
    clips = _clips()
    out = eval_transform(clips, 8, MEAN, STD)
    assert out.shape == (3, 4, 3, 8, 8) and out.dtype == torch.float32
    want = clips[:, :, 2:10, 2:10].permute(0, 1, 4, 2, 3).float() / 255
    torch.testing.assert_close(_unnormalise(out), want)


def _locate(clip_out, clip_in, crop):
    """Offset (top, left, flipped) of an un-jittered crop in the source clip."""
    H, W = clip_in.shape[1:3]
    src = clip_in.permute(0, 3, 1, 2).float() / 255  # (T, 3, H, W)
    for top in range(H - crop + 1):
        for left in range(W - crop + 1):
            window = src[..., top : top + crop, left : left + crop]
            for flipped in (False, True):
                w = window.flip(-1) if flipped else window
                if torch.allclose(w, clip_out, atol=1e-5):
                    return top, left, flipped
    return None


def test_train_crop_is_shared_by_all_frames_and_varies_between_clips():
    clips = _clips(B=6)
    g = torch.Generator().manual_seed(1)
    out = _unnormalise(train_transform(clips, 8, MEAN, STD, g))
    where = [_locate(out[b], clips[b], 8) for b in range(6)]
    assert all(w is not None and not w[2] for w in where)  # whole clip = one window, no flip
    assert len({w[:2] for w in where}) > 1


def test_flip_only_when_asked_and_deterministic_given_generator():
    clips = _clips(B=16)
    out = _unnormalise(
        train_transform(clips, 8, MEAN, STD, torch.Generator().manual_seed(2), flip=True)
    )
    flips = [_locate(out[b], clips[b], 8)[2] for b in range(16)]
    assert any(flips) and not all(flips)
    again = train_transform(clips, 8, MEAN, STD, torch.Generator().manual_seed(2), flip=True)
    torch.testing.assert_close(_unnormalise(again), out, rtol=0, atol=0)


def test_jitter_changes_colours_consistently_across_frames():
    # every frame the same image: a per-clip jitter keeps the frames identical to each other
    frame = _clips(B=1, T=1, seed=3)
    clips = frame.expand(4, 5, -1, -1, -1).contiguous()
    g = torch.Generator().manual_seed(4)
    out = train_transform(clips, 12, MEAN, STD, g, jitter=True)
    plain = eval_transform(clips, 12, MEAN, STD)
    assert not torch.allclose(out, plain)
    torch.testing.assert_close(out, out[:, :1].expand_as(out))


def test_centre_crop_rejects_small_frames():
    import pytest

    with pytest.raises(ValueError, match="smaller"):
        centre_crop(torch.zeros(1, 3, 4, 4), 8)


# --------------------------------------------------------------------------- issue 13 options


def test_crop_offsets_span_theirs_and_ours():
    """Theirs: int(uniform(0, H - c)) -> 0..H-c-1 (0..31 for 256 -> 224); ours: 0..H-c."""
    from d2st.data.transforms import crop_offset

    g = torch.Generator().manual_seed(5)
    seen = {r: {crop_offset(12, 8, g, r) for _ in range(400)} for r in ("exclusive", "inclusive")}
    assert seen == {"exclusive": set(range(4)), "inclusive": set(range(5))}
    g = torch.Generator().manual_seed(6)
    assert max(crop_offset(256, 224, g) for _ in range(2000)) == 31
    assert crop_offset(8, 8, g, "exclusive") == 0 == crop_offset(8, 8, g, "inclusive")


def test_train_crop_default_never_uses_the_last_offset():
    clips = _clips(B=40, T=2, H=10, W=10)
    out = _unnormalise(train_transform(clips, 8, MEAN, STD, torch.Generator().manual_seed(7)))
    where = {_locate(out[b], clips[b], 8)[:2] for b in range(40)}
    assert where <= {(t, x) for t in range(2) for x in range(2)} and len(where) > 1


def _jitter_by_hand(clip, seed, gray_first):
    """ColorJitter with their draw order, written out: factors, op order, grayscale coin."""
    import torchvision.transforms.v2.functional as TF

    g = torch.Generator().manual_seed(seed)
    u = lambda lo, hi: float(lo + (hi - lo) * torch.rand((), generator=g))  # noqa: E731
    f = [u(0.5, 1.5), u(0.5, 1.5), u(0.5, 1.5), u(-0.25, 0.25)]
    perm = torch.randperm(4, generator=g).tolist()
    gray = float(torch.rand((), generator=g)) < 0.3
    fns = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    ops = [lambda x, i=i: fns[i](x, f[i]) for i in perm]
    g_op = [lambda x: TF.rgb_to_grayscale(x, num_output_channels=3)] if gray else []
    for op in (g_op + ops) if gray_first else (ops + g_op):
        clip = op(clip)
    return clip, gray


def test_jitter_order_grayscale_first_or_last():
    from d2st.data.transforms import colour_jitter

    clip = _clips(B=1, T=2, seed=8)[0].permute(0, 3, 1, 2).float() / 255  # (T, 3, H, W)
    grays = 0
    for seed in range(12):
        for order, first in (("gray_first", True), ("gray_last", False)):
            got = colour_jitter(clip, torch.Generator().manual_seed(seed), order)
            want, gray = _jitter_by_hand(clip, seed, first)
            torch.testing.assert_close(got, want)
        if gray:
            grays += 1
            a = colour_jitter(clip, torch.Generator().manual_seed(seed), "gray_first")
            b = colour_jitter(clip, torch.Generator().manual_seed(seed), "gray_last")
            assert not torch.allclose(a, b, atol=1e-3)
    assert grays > 0


def test_bad_option_names_are_reported():
    import pytest

    from d2st.data.transforms import colour_jitter, crop_offset

    with pytest.raises(ValueError, match="data.jitter_order"):
        colour_jitter(torch.zeros(1, 3, 4, 4), torch.Generator(), "never")
    with pytest.raises(ValueError, match="data.crop_range"):
        crop_offset(10, 8, torch.Generator(), "wide")
