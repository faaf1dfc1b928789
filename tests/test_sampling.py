"""Frame rules and choices: F = 1 is the old shard rule, the Kinetics-100 rule is theirs, and
F > 1 gives temporal jitter at training and a deterministic centre choice at test."""

from __future__ import annotations

import pytest
import torch

from d2st.data.sampling import (
    eval_choice,
    frame_indices,
    official_rule,
    pick_frames,
    train_choice,
)


@pytest.mark.parametrize("n", [1, 3, 7, 8, 9, 50, 100, 301])
@pytest.mark.parametrize("T", [1, 4, 8])
def test_uniform_f1_is_the_segment_centre_rule(n, T):
    from fractions import Fraction
    from math import floor

    want = [floor((i + Fraction(1, 2)) * n / T) for i in range(T)]
    assert frame_indices("uniform", n, T) == want
    from d2st.data.video import sample_indices

    assert frame_indices("uniform", n, T, 1) == sample_indices(n, T)


@pytest.mark.parametrize("n,F", [(100, 2), (100, 3), (37, 4), (5, 2)])
def test_uniform_candidates_lie_in_their_segment(n, F):
    T = 8
    idx = frame_indices("uniform", n, T, F)
    assert len(idx) == T * F and idx == sorted(idx)
    for i in range(T):
        for k in range(F):
            j = idx[i * F + k]
            assert i * n // T <= j or n < T * F  # frame j starts at or after segment i's start
            assert j < (i + 1) * n / T or n < T * F


def test_odd_f_centre_equals_f1():
    for n in (9, 64, 100, 257):
        idx = torch.tensor(frame_indices("uniform", n, 8, 3))
        centre = eval_choice(1, 8, 3, "centre")[0]
        assert idx[centre].tolist() == frame_indices("uniform", n, 8, 1)


def _their_k100(n, fps, T=8, interval=35, target_fps=12, start=None):
    """Their _interval_based_sampling for K100 (SAMPLING_RATE 35), written out."""
    clip_length = T * interval * fps / target_fps
    if clip_length > n:
        clip_length = n // T * T
    max_idx = max(n - clip_length + 1, 0)
    if start is None:
        start = max_idx / 2  # test: NUM_ENSEMBLE_VIEWS = 1
    end = start + clip_length - interval
    index = torch.linspace(start, end, T)
    return torch.clamp(index, 0, n - 1).long().tolist()


@pytest.mark.parametrize("n,fps", [(100, 30.0), (100, 12.0), (250, 25.0), (300, 12.0), (40, 30.0)])
def test_kinetics100_rule_is_theirs_at_test(n, fps):
    assert frame_indices("kinetics100", n, 8, 1, fps) == _their_k100(n, fps)


def test_kinetics100_100_frames_end_at_63():
    idx = frame_indices("kinetics100", 100, 8, 1, 30.0)
    assert idx[-1] == 63 and idx[0] == 2
    assert official_rule("kinetics100") == "kinetics100" and official_rule("hmdb51") == "uniform"
    with pytest.raises(ValueError, match="fps"):
        frame_indices("kinetics100", 100, 8, 1, None)


def test_kinetics100_f_clips_are_their_rule_at_spread_starts():
    n, fps, F = 300, 12.0, 4
    idx = frame_indices("kinetics100", n, 8, F, fps)
    max_idx = n - 8 * 35 * fps / 12 + 1
    for k in range(F):
        want = _their_k100(n, fps, start=max_idx * (2 * k + 1) / (2 * F))
        assert idx[k::F] == want


def _stored(B, T, F):
    """Clips whose frame at stored position p has every pixel = p: (B, T*F, 2, 2, 3) uint8."""
    pos = torch.arange(T * F, dtype=torch.uint8)[None, :, None, None, None]
    return pos.expand(B, T * F, 2, 2, 3).clone()


def test_f2_trains_with_jitter_and_evaluates_deterministically():
    B, T, F = 6, 8, 2
    clips = _stored(B, T, F)
    seen = []
    for seed in (0, 1):
        pos = train_choice(B, T, F, torch.Generator().manual_seed(seed))
        frames = pick_frames(clips, pos)  # (B, T, 2, 2, 3)
        assert frames.shape == (B, T, 2, 2, 3)
        got = frames[..., 0, 0, 0].long()
        assert ((got // F) == torch.arange(T)).all()  # one candidate of each segment, in order
        seen.append(got)
    assert not torch.equal(seen[0], seen[1])  # two seeds see different frames
    again = train_choice(B, T, F, torch.Generator().manual_seed(1))
    assert torch.equal(pick_frames(clips, again)[..., 0, 0, 0].long(), seen[1])
    a = pick_frames(clips, eval_choice(B, T, F, "centre"))
    b = pick_frames(clips, eval_choice(B, T, F, "centre"))
    assert torch.equal(a, b) and (a[..., 0, 0, 0].long() == torch.arange(T) * F + 1).all()


def test_random_test_choice_and_official_per_rule():
    B, T, F = 4, 8, 3
    r = [eval_choice(B, T, F, "random", generator=torch.Generator().manual_seed(s)) for s in (0, 1)]
    assert not torch.equal(r[0], r[1])
    assert torch.equal(
        eval_choice(B, T, F, "official", "kinetics100"), eval_choice(B, T, F, "centre")
    )
    with pytest.raises(ValueError, match="Generator"):
        eval_choice(B, T, F, "official", "uniform")
    with pytest.raises(ValueError, match="eval.frame_choice"):
        eval_choice(B, T, F, "middle")


def test_f1_choices_are_the_stored_frames():
    g = torch.Generator().manual_seed(0)
    want = torch.arange(8).expand(3, 8)
    assert torch.equal(train_choice(3, 8, 1, g), want)
    assert torch.equal(eval_choice(3, 8, 1, "official"), want)


def test_kinetics100_jitter_is_one_start_per_clip():
    pos = train_choice(16, 8, 4, torch.Generator().manual_seed(3), "kinetics100")
    k = pos - torch.arange(8) * 4
    assert (k == k[:, :1]).all() and len(set(k[:, 0].tolist())) > 1
