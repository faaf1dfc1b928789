"""Decoding: sampling rule, frame identity, statuses of real odd videos, rotation, VFR."""

from __future__ import annotations

import re
from dataclasses import replace
from fractions import Fraction
from math import floor

import numpy as np
import pytest
from test_data_helpers import frame_numbers, level, numbered_frames, write_video

from d2st.data.video import (
    SAMPLING_RULE,
    VideoError,
    decode_clip,
    decode_clips,
    decode_frames,
    probe,
    sample_indices,
)


def test_sample_indices_match_segment_centre_definition():
    for n in range(1, 120):
        for T in (1, 2, 3, 4, 8, 16):
            got = sample_indices(n, T)
            ref = [floor((Fraction(i) + Fraction(1, 2)) * n / T) for i in range(T)]
            assert got == ref
            assert all(0 <= k < n for k in got)
            assert got == sorted(got)
            # frame k spans [k, k+1) on the time axis and contains the centre of segment i
            assert all(k <= (i + Fraction(1, 2)) * n / T < k + 1 for i, k in enumerate(got))
            if n >= T:  # centres are >= 1 frame apart: T distinct frames
                assert len(set(got)) == T
    assert "floor((i + 0.5) * n / T)" in SAMPLING_RULE
    with pytest.raises(ValueError):
        sample_indices(0, 8)


@pytest.mark.parametrize(
    "ext,n", [(".mp4", 8), (".mp4", 50), (".avi", 23), (".webm", 17), (".mkv", 9)]
)
def test_decoded_frame_is_the_sampled_frame(tmp_path, ext, n):
    path = write_video(tmp_path / f"v{ext}", numbered_frames(n))
    info = probe(path)
    assert info.frames == n
    clip, info2, idx = decode_frames(path, T=8, size=36)
    assert clip.shape == (8, 36, 36, 3) and clip.dtype == np.uint8
    assert idx == sample_indices(n, 8)
    assert frame_numbers(clip) == idx
    # the resize keeps the corner marker in the top-left quarter (no flip / transpose)
    assert clip[:, :2, :2].mean() > 200 and clip[:, :2, -2:].mean() < 220


def test_too_short_repeats_frames_by_the_same_rule(tmp_path):
    path = write_video(tmp_path / "short.mp4", numbered_frames(3))
    r = decode_clip(path, T=8, size=24)
    assert r.status == "too_short" and "3 frames" in r.message
    assert r.indices == [0, 0, 0, 1, 1, 2, 2, 2] == sample_indices(3, 8)
    assert frame_numbers(r.frames) == r.indices


def test_non_square_size_and_levels(tmp_path):
    path = write_video(tmp_path / "v.mp4", numbered_frames(12, side=48))
    clip, _, idx = decode_frames(path, T=4, size=(20, 36))
    assert clip.shape == (4, 20, 36, 3)
    assert frame_numbers(clip) == idx
    top = clip[:, 4:9, 18:].astype(float).mean(axis=(1, 2, 3))  # grey level, below the marker
    assert np.allclose(top, [level(k) for k in idx], atol=3)


def test_missing_empty_and_overlong_selection(tmp_path):
    assert decode_clip(tmp_path / "nope.mp4").status == "missing"
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert decode_clip(tmp_path / "empty.mp4").status == "empty"
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    assert decode_clip(tmp_path / "junk.mp4").status in ("unreadable", "corrupt")
    # a header that promises more frames than decode -> corrupt, with the counts in the message
    path = write_video(tmp_path / "v.mp4", numbered_frames(10))
    info = probe(path)
    with pytest.raises(VideoError) as e:
        decode_frames(path, T=8, size=16, info=replace(info, frames=40))
    assert e.value.status == "corrupt" and "decoded" in e.value.message


# ------------------------------------------------------------------ real videos (../shared)


def _provenance_counts(shared):
    """file -> frames decoded by ffprobe -count_frames, as recorded in PROVENANCE.md."""
    text = (shared / "realdata/videos/PROVENANCE.md").read_text()
    out = {}
    for block in text.split("\n### ")[1:]:
        name = block.split("`")[1]
        m = re.search(r"video frames decoded \(ffprobe -count_frames\): (\d+)", block)
        out[name] = int(m.group(1)) if m else None
    return out


EXPECTED = {  # status decided by the documented rules in d2st/data/video.py
    "decord__corrupted.mp4": "ok",  # every selected frame decodes; decoder warning in message
    "decord__video_180.mov": "too_short",  # 3 frames
    "thumborve__tearing-me-apart.m4a": "no_video",
    "videometa__truncated.mp4": "unreadable",
}


@pytest.mark.realdata
def test_every_real_video_decodes_or_gets_its_status(shared):
    counts = _provenance_counts(shared)
    files = sorted(p for p in (shared / "realdata/videos").iterdir() if p.suffix != ".md")
    assert {p.name for p in files} == set(counts)
    for p in files:
        r = decode_clip(p, T=8, size=32)
        assert r.status == EXPECTED.get(p.name, "ok"), (p.name, r.status, r.message)
        if r.status in ("ok", "too_short"):
            assert r.frames.shape == (8, 32, 32, 3) and r.frames.dtype == np.uint8
            assert r.frames.max() > r.frames.min(), p.name  # not a constant image
            assert r.indices == sample_indices(r.source_frames, 8)
            assert "\n" not in r.message
            if p.name != "decord__corrupted.mp4":
                assert r.source_frames == counts[p.name], p.name
                assert r.message == ("" if r.status == "ok" else r.message)
        else:
            assert r.frames is None and r.message and "\n" not in r.message
            assert not re.search(r"0x[0-9a-f]{6,}", r.message)  # no run-dependent pointers


@pytest.mark.realdata
def test_corrupted_mp4_warns_or_fails_in_strict_mode(shared):
    p = shared / "realdata/videos/decord__corrupted.mp4"
    r = decode_clip(p, T=8, size=32)
    assert r.status == "ok" and r.message.startswith("decoder warning:")
    assert decode_clip(p, T=8, size=32, strict=True).status == "corrupt"
    # asking for frames past the 49 decodable ones is a decode shortfall -> corrupt
    assert decode_clip(p, T=50, size=16).status == "corrupt"


@pytest.mark.realdata
def test_rotation_is_honoured(shared):
    p = shared / "realdata/videos/decord__video_180.mov"
    info = probe(p)
    assert abs(info.rotation) == 180
    auto, _, _ = decode_frames(p, T=3, size=48)
    raw, _, _ = decode_frames(p, T=3, size=48, autorotate=False)
    flipped, _, _ = decode_frames(
        p, T=3, size=48, autorotate=False, extra_filters=(("hflip", ()), ("vflip", ()))
    )
    assert np.abs(auto.astype(int) - flipped.astype(int)).mean() < 1.0
    assert np.abs(auto.astype(int) - raw.astype(int)).mean() > 5.0  # the rotation is visible
    assert np.abs(auto.astype(int) - raw[:, ::-1, ::-1].astype(int)).mean() < 3.0


@pytest.mark.realdata
def test_vfr_without_duration(shared):
    p = shared / "realdata/videos/moviepy__no_duration.webm"
    info = probe(p)
    assert info.duration is None and info.frames_source == "packets"
    assert info.frames == _provenance_counts(shared)[p.name]
    clip, _, idx = decode_frames(p, T=8, size=32)
    assert clip.shape == (8, 32, 32, 3) and idx == sample_indices(info.frames, 8)


def test_benchmark_baseline_picks_the_same_frames(tmp_path):
    from d2st.bench.data import naive_decode

    path = write_video(tmp_path / "v.mp4", numbered_frames(21))
    ours, _, idx = decode_frames(path, T=8, size=36)
    base = naive_decode(path, T=8, size=36)
    assert base.shape == ours.shape and frame_numbers(base) == idx == frame_numbers(ours)


@pytest.mark.realdata
def test_decoding_a_batch_gives_each_video_its_single_verdict_and_frames(shared):
    """decode_clips (one ffmpeg process for the clean videos, the rest alone) returns, for every
    real video, broken ones among them, exactly what decode_clip returns for it alone."""
    files = sorted(p for p in (shared / "realdata/videos").iterdir() if p.suffix != ".md")
    for batch in (files, [p for p in files if p.name not in EXPECTED]):  # with and without
        together = decode_clips(batch, T=8, size=32)
        for p, r in zip(batch, together, strict=True):
            alone = decode_clip(p, T=8, size=32)
            assert (r.status, r.message, r.indices, r.source_frames) == (
                alone.status, alone.message, alone.indices, alone.source_frames
            ), p.name  # fmt: skip
            if alone.frames is None:
                assert r.frames is None
            else:
                assert np.array_equal(r.frames, alone.frames), p.name


def test_a_clean_batch_decodes_in_one_process_to_the_single_bytes(tmp_path):
    """Synthetic videos of different lengths and containers: decoded together, byte-equal."""
    paths = []
    for i, (n, ext) in enumerate([(30, "mp4"), (9, "webm"), (5, "avi"), (17, "mp4")]):
        paths.append(tmp_path / f"v{i}.{ext}")
        write_video(paths[-1], numbered_frames(n))
    together = decode_clips(paths, T=8, size=24)
    for p, r in zip(paths, together, strict=True):
        frames, _, idx = decode_frames(p, 8, 24)
        assert r.status in ("ok", "too_short") and r.indices == idx
        assert np.array_equal(r.frames, frames), p.name
