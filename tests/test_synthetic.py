"""Contracts of the synthetic motion benchmark (docs/SYNTHETIC.md, docs/CONTRACTS.md)."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from d2st.data import synthetic as syn
from d2st.data.splits import COLUMNS


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    counts = syn.generate(
        out, seed=3, size=16, frames=8, videos_per_class=3, jobs=1, progress=False
    )
    return out, counts


def test_same_seed_same_videos_different_seed_different():
    for cls in ("move_right", "rotate_cw", "meet_horizontal"):
        a, ga = syn.render_video(cls, seed=1, index=2, size=16)
        b, gb = syn.render_video(cls, seed=1, index=2, size=16)
        c, _ = syn.render_video(cls, seed=2, index=2, size=16)
        assert np.array_equal(a, b) and np.array_equal(ga, gb)
        assert not np.array_equal(a, c)


@pytest.mark.parametrize("pair", syn.reversed_pairs("test") + syn.reversed_pairs("train"))
def test_reversed_member_is_the_exact_time_reverse(pair):
    fwd, rev, _ = pair
    rng = np.random.default_rng(0)
    a = syn.sample_appearance(rng, 8)
    s_fwd = syn.motion_states(fwd, a, 8)
    s_rev = syn.motion_states(rev, a, 8)
    np.testing.assert_array_equal(s_rev, s_fwd[:, ::-1])
    v_fwd = syn.render_states(s_fwd, a, 16)
    v_rev = syn.render_states(s_rev, a, 16)
    np.testing.assert_array_equal(v_rev, v_fwd[::-1])
    assert not np.array_equal(v_fwd, v_rev), "a reversed pair must differ in frame order"


def test_appearance_never_sees_the_class():
    params = inspect.signature(syn.sample_appearance).parameters
    assert list(params) == ["rng", "frames"]
    # the same appearance draw is used whatever the class: per-video colour statistics of two
    # reversed classes are identical frame sets, so colour cannot tell them apart
    fwd, rev, _ = syn.reversed_pairs("test")[0]
    for i in range(3):
        va, _ = syn.render_video(fwd, 0, i, size=16)
        a = syn.sample_appearance(np.random.default_rng(syn.video_seed(0, fwd, i)), 8)
        vb = syn.render_states(syn.motion_states(rev, a, 8), a, 16)
        np.testing.assert_allclose(
            np.sort(va.reshape(8, -1).mean(1)), np.sort(vb.reshape(8, -1).mean(1))
        )


def test_every_test_reversal_kind_has_a_base_analogue(bench):
    out, _ = bench
    classes = pd.read_csv(out / "classes.csv", keep_default_na=False)
    pairs = pd.read_csv(out / "pairs.csv")
    assert len(pairs) >= 4
    base_kinds = set(classes[(classes.partition == "train") & (classes.reverse_of != "")].kind)
    for kind in pairs.kind:
        assert kind in base_kinds, f"test reversal kind {kind!r} has no reversed base class"
    test = set(classes[classes.partition == "test"]["class"])
    assert set(pairs.class_a) <= test and set(pairs.class_b) <= test


def test_split_csvs_follow_the_contract_and_are_class_disjoint(bench):
    out, counts = bench
    seen = {}
    for p in ("train", "val", "test"):
        df = pd.read_csv(out / "splits" / f"{p}.csv", dtype={"video_id": str})
        assert list(df.columns) == list(COLUMNS)
        assert len(df) == counts[p] and df.video_id.is_unique
        # label_idx is 0-based, dense, one per class
        assert sorted(df.label_idx.unique()) == list(range(df.label.nunique()))
        assert (df.groupby("label").label_idx.nunique() == 1).all()
        for rel in df.relpath:
            assert (out / "videos" / rel).is_file()
        seen[p] = set(df.label)
    assert not (seen["train"] & seen["test"]) and not (seen["train"] & seen["val"])
    assert not (seen["val"] & seen["test"])


def test_geometry_has_a_row_per_rendered_frame_in_range(bench):
    out, counts = bench
    geo = pd.read_csv(out / "geometry.csv", dtype={"video_id": str})
    assert len(geo) == sum(counts.values()) * 8
    assert geo.groupby("video_id").frame.apply(lambda f: sorted(f) == list(range(8))).all()
    assert geo[["x", "y", "size", "opacity"]].apply(lambda c: c.between(0, 1).all()).all()
    assert np.allclose(geo["cos"] ** 2 + geo["sin"] ** 2, 1.0, atol=1e-4)


def test_all_three_containers_decode_to_the_rendered_frames(bench):
    from d2st.data.video import decode_frames, probe

    out, _ = bench
    df = pd.read_csv(out / "splits" / "train.csv", dtype={"video_id": str})
    by_ext = {}
    for vid, rel in zip(df.video_id, df.relpath):
        by_ext.setdefault(rel.rsplit(".", 1)[1], (vid, rel))
    assert set(by_ext) == {"mp4", "webm", "avi"}
    for ext, (vid, rel) in by_ext.items():
        info = probe(out / "videos" / rel)
        assert (info.frames, info.width, info.height) == (8, 16, 16), ext
        frames, _, idx = decode_frames(out / "videos" / rel, T=8, size=16)
        cls, i = vid.rsplit("-", 1)
        ref, _ = syn.render_video(cls, 3, int(i), size=16)
        assert list(idx) == list(range(8))
        # near-lossless encodes: decoded frames stay close to what was rendered
        err = np.abs(frames.astype(int) - ref.astype(int)).mean()
        assert err < 12, f"{ext}: mean abs error {err:.1f}"


def test_a_batch_encodes_each_file_to_the_bytes_it_has_alone(tmp_path):
    """encode_videos (one ffmpeg process for many clips) writes what encode_video writes per clip,
    in every container, so batching the benchmark's encoding changes no byte of it."""
    clips = [syn.render_video(syn.CLASSES[i].name, 0, i, 32, 8)[0] for i in range(6)]
    names = [f"v{i}.{ext}" for i, ext in enumerate(syn.CONTAINERS * 2)]
    (tmp_path / "one").mkdir()
    (tmp_path / "batch").mkdir()
    for clip, name in zip(clips, names, strict=True):
        syn.encode_video(clip, tmp_path / "one" / name)
    syn.encode_videos([(c, tmp_path / "batch" / n) for c, n in zip(clips, names, strict=True)])
    assert sorted(p.name for p in (tmp_path / "batch").iterdir()) == sorted(names)  # no temp left
    for name in names:
        one = (tmp_path / "one" / name).read_bytes()
        assert one and (tmp_path / "batch" / name).read_bytes() == one, name
    with pytest.raises(ValueError, match="one shape"):
        syn.encode_videos([(clips[0], tmp_path / "x.mp4"), (clips[1][:4], tmp_path / "y.mp4")])
