"""HDF5 shards: manifest, statuses, reader, resume, crash safety, verify, parallel, CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
from test_data_helpers import frame_numbers, numbered_frames, write_video

from d2st.cli import main as cli_main
from d2st.data.shards import (
    MANIFEST_COLUMNS,
    ClipDataset,
    PrepareError,
    ShardError,
    ShardSet,
    prepare,
    read_manifest,
    shard_files,
    verify,
)
from d2st.data.video import decode_frames, sample_indices

T, SIZE = 4, 24


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small video root with good videos of two classes and every kind of bad one."""
    root = tmp_path_factory.mktemp("videos")
    rows = []
    lengths = {"a": [9, 12, 20], "b": [10, 15, 7]}
    for c, ns in lengths.items():
        for j, n in enumerate(ns):
            ext = ".mp4" if j % 2 == 0 else ".avi"
            write_video(root / c / f"{c}{j}{ext}", numbered_frames(n))
            rows.append((f"{c}{j}", c, 0 if c == "a" else 1, f"{c}/{c}{j}{ext}"))
    write_video(root / "b" / "short.mp4", numbered_frames(2))
    rows.insert(2, ("short", "b", 1, "b/short.mp4"))
    (root / "a" / "junk.mp4").write_bytes(np.random.default_rng(1).bytes(3000))
    rows.insert(4, ("junk", "a", 0, "a/junk.mp4"))
    (root / "b" / "empty.webm").write_bytes(b"")
    rows.insert(5, ("empty", "b", 1, "b/empty.webm"))
    rows.insert(7, ("gone", "a", 0, "a/gone.mp4"))  # in the split, not on disk
    split = pd.DataFrame(rows, columns=["video_id", "label", "label_idx", "relpath"])
    expected = {
        "short": "too_short",
        "junk": ("unreadable", "corrupt"),
        "empty": "empty",
        "gone": "missing",
    }
    return root, split, expected


def _good(split, expected):
    return [v for v in split["video_id"] if v not in expected or v == "short"]


@pytest.mark.parametrize("fmt", ["raw", "jpeg"])
def test_prepare_manifest_reader_and_verify(corpus, tmp_path, fmt):
    root, split, expected = corpus
    out = tmp_path / "4f_24px"
    s = prepare(split, root, out, frames=T, size=SIZE, shard_size=3, fmt=fmt, progress=False)
    man = read_manifest(out)
    assert list(man.columns) == MANIFEST_COLUMNS
    assert list(man["video_id"]) == list(split["video_id"])  # nothing dropped, same order
    for v, st in zip(man["video_id"], man["status"]):
        want = expected.get(v, "ok")
        assert st in (want if isinstance(want, tuple) else (want,)), (v, st)
    bad = man[~man["status"].isin(["ok", "too_short"])]
    assert (bad["shard"] == "").all() and (bad["row"] == "").all() and (bad["message"] != "").all()
    assert sum(s.counts.values()) == len(split) and s.shards_written == len(shard_files(out))
    assert verify(out, deep=True) == []

    ds = ShardSet(out)
    good = _good(split, expected)
    assert ds.video_ids == good and len(ds) == len(good)
    lab = dict(zip(split["video_id"], split["label_idx"]))
    assert list(ds.labels) == [lab[v] for v in good]
    assert ds.frames == T and ds.size == SIZE and ds.frame_format == fmt
    for i, v in enumerate(good):
        rp = split.loc[split["video_id"] == v, "relpath"].item()
        ref, info, idx = decode_frames(root / rp, T, SIZE)
        assert list(ds.frame_indices[i]) == idx == sample_indices(info.frames, T)
        clip = ds[i]
        assert clip.shape == (T, SIZE, SIZE, 3) and clip.dtype == np.uint8
        if fmt == "raw":
            assert np.array_equal(clip, ref)
        else:
            assert np.abs(clip.astype(int) - ref.astype(int)).mean() < 4
        assert frame_numbers(clip) == idx  # it really is frame idx[t]
        row = man[man["video_id"] == v].iloc[0]
        assert int(row["source_frames"]) == info.frames
    pick = [3, 0, 3, len(ds) - 1, 1]
    assert np.array_equal(ds.get_many(pick), np.stack([ds[i] for i in pick]))
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_rerun_reuses_shards_and_split_change_rebuilds_only_its_shard(corpus, tmp_path):
    root, split, _ = corpus
    out = tmp_path / "s"
    first = prepare(split, root, out, frames=T, size=SIZE, shard_size=4, fmt="raw", progress=False)
    stamps = {p.name: os.stat(p).st_mtime_ns for p in shard_files(out)}
    again = prepare(split, root, out, frames=T, size=SIZE, shard_size=4, fmt="raw", progress=False)
    assert again.shards_written == 0 and again.shards_reused == first.shards_written
    assert {p.name: os.stat(p).st_mtime_ns for p in shard_files(out)} == stamps
    assert again.counts == first.counts and verify(out) == []
    changed = split.copy()
    changed.loc[len(changed) - 1, "label_idx"] = 0  # last row lives in the last shard
    s3 = prepare(changed, root, out, frames=T, size=SIZE, shard_size=4, fmt="raw", progress=False)
    assert s3.shards_written == 1 and s3.shards_reused == first.shards_written - 1
    assert verify(out) == [] and ShardSet(out).labels[-1] == 0
    # different T: every shard is rebuilt (attrs differ)
    s4 = prepare(split, root, out, frames=3, size=SIZE, shard_size=4, fmt="raw", progress=False)
    assert s4.shards_reused == 0 and ShardSet(out).frames == 3


KILL_SCRIPT = """
import os, signal, sys
from d2st.data.shards import writer
add = writer._ShardWriter.add
def add_then_die(self, *a, **k):  # SIGKILL while writing row 1 of shard 2 (b1): tmp half full
    if (self.index, self.n) == (2, 1):
        self.f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    return add(self, *a, **k)
writer._ShardWriter.add = add_then_die
from d2st.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_killed_mid_write_leaves_nothing_verify_accepts_and_rerun_completes(corpus, tmp_path):
    root, split, _ = corpus
    csv_path = tmp_path / "split.csv"
    split.to_csv(csv_path, index=False)
    out = tmp_path / "crash"
    args = ["prepare", "--videos", str(root), "--split", str(csv_path), "--out", str(out),
            "--frames", str(T), "--size", str(SIZE), "--shard-size", "3", "--no-progress"]  # fmt: skip
    r = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, *args], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == -9, r.stderr
    assert (out / "shard-0002.tmp.h5").exists() and not (out / "manifest.csv").exists()
    problems = verify(out)
    assert any("tmp" in p for p in problems) and any("manifest" in p for p in problems)
    assert [p.name for p in shard_files(out)] == ["shard-0000.h5", "shard-0001.h5"]
    with pytest.raises(ShardError, match="manifest.csv: missing"):  # incomplete: never read
        ShardSet(out)
    s = prepare(csv_path, root, out, frames=T, size=SIZE, shard_size=3, progress=False)
    assert s.shards_reused == 2 and s.shards_written == len(shard_files(out)) - 2
    assert not list(out.glob("*.tmp*")) and verify(out, deep=True) == []
    assert len(ShardSet(out)) == len(_good(split, corpus[2]))


def test_verify_detects_tampering(corpus, tmp_path):
    root, split, _ = corpus
    out = tmp_path / "v"
    prepare(split, root, out, frames=T, size=SIZE, shard_size=4, fmt="raw", progress=False)
    assert verify(out) == []
    man = read_manifest(out)
    ok = man.index[man["status"] == "ok"][0]
    m2 = man.copy()
    m2.loc[ok, "video_id"] = "someone_else"
    m2.to_csv(out / "manifest.csv", index=False)
    assert any("someone_else" in p for p in verify(out))
    m3 = man.copy()
    m3.loc[ok, "status"] = "corrupt"  # a landed row the manifest no longer claims
    m3.to_csv(out / "manifest.csv", index=False)
    assert any("not in the manifest" in p or "shard/row set" in p for p in verify(out))
    man.to_csv(out / "manifest.csv", index=False)
    assert verify(out) == []
    last = shard_files(out)[-1]
    last.write_bytes(last.read_bytes()[:200])  # a damaged shard
    assert any(last.name in p for p in verify(out))
    last.unlink()
    assert any("missing" in p for p in verify(out))
    with h5py.File(out / "shard-0000.h5", "a") as f:
        f.attrs["size"] = SIZE + 1
    assert verify(out) != []


def test_on_error_fail_stops_with_the_reason(corpus, tmp_path, capsys):
    root, split, _ = corpus
    with pytest.raises(PrepareError, match=r"b/short.mp4|a/junk.mp4"):
        # too_short is not an error; junk (row 4) is the first failure
        prepare(
            split,
            root,
            tmp_path / "f",
            frames=T,
            size=SIZE,
            shard_size=3,
            on_error="fail",
            progress=False,
        )
    assert verify(tmp_path / "f") != []
    csv_path = tmp_path / "split.csv"
    split.to_csv(csv_path, index=False)
    rc = cli_main(
        [
            "prepare",
            "--videos",
            str(root),
            "--split",
            str(csv_path),
            "--out",
            str(tmp_path / "g"),
            "--frames",
            str(T),
            "--size",
            str(SIZE),
            "--on-error",
            "fail",
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1 and "a/junk.mp4" in err
    assert cli_main(["verify", str(tmp_path / "g")]) == 1


def test_parallel_equals_serial_and_folder_mode_and_dataloader(corpus, tmp_path):
    import torch
    from torch.utils.data import DataLoader

    root, _, _ = corpus
    a = prepare(
        None,
        root,
        tmp_path / "serial",
        frames=T,
        size=SIZE,
        shard_size=4,
        fmt="raw",
        jobs=1,
        progress=False,
    )
    rc = cli_main(
        [
            "prepare",
            "--videos",
            str(root),
            "--out",
            str(tmp_path / "par"),
            "--frames",
            str(T),
            "--size",
            str(SIZE),
            "--shard-size",
            "4",
            "--format",
            "raw",
            "--jobs",
            "2",
            "--no-progress",
        ]
    )
    assert rc == 0 and cli_main(["verify", str(tmp_path / "par")]) == 0
    ma, mb = read_manifest(tmp_path / "serial"), read_manifest(tmp_path / "par")
    pd.testing.assert_frame_equal(ma, mb)
    assert set(ma["label"]) == {"a", "b"}  # folder mode: label = parent folder
    assert (ma["label_idx"] == (ma["label"] == "b").astype(int)).all()
    assert sum(a.counts.values()) == len(ma)
    sa, sb = ShardSet(tmp_path / "serial"), ShardSet(tmp_path / "par")
    assert np.array_equal(sa.get_many(range(len(sa))), sb.get_many(range(len(sb))))

    ds = ClipDataset(tmp_path / "par", transform=lambda x: x.permute(0, 3, 1, 2))
    loader = DataLoader(ds, batch_size=3, num_workers=2, shuffle=False)
    xs, ys, ids = zip(*loader)
    x = torch.cat(xs)
    assert x.shape == (len(sb), T, 3, SIZE, SIZE) and x.dtype == torch.uint8
    assert torch.equal(x, torch.from_numpy(sb.get_many(range(len(sb)))).permute(0, 1, 4, 2, 3))
    assert torch.cat(ys).tolist() == sb.labels.tolist()
    assert torch.cat(ids).tolist() == list(range(len(sb)))


@pytest.mark.realdata
def test_real_videos_land_as_decoded(shared, tmp_path):
    """Folder mode over ../shared/realdata: statuses by the documented rules, clips = decoder."""
    from test_video import EXPECTED

    src = shared / "realdata/videos"
    out = tmp_path / "real"
    prepare(None, src, out, frames=8, size=32, fmt="raw", progress=False)
    man = read_manifest(out)
    assert list(man["video_id"]) == sorted(p.name for p in src.iterdir() if p.suffix != ".md")
    assert dict(zip(man["video_id"], man["status"])) == {
        v: EXPECTED.get(v, "ok") for v in man["video_id"]
    }
    ds = ShardSet(out)
    landed = man[man["status"].isin(["ok", "too_short"])]
    assert ds.video_ids == list(landed["video_id"]) and verify(out, deep=True) == []
    for i, v in enumerate(ds.video_ids):
        ref, info, idx = decode_frames(src / v, 8, 32)
        assert np.array_equal(ds[i], ref) and list(ds.frame_indices[i]) == idx, v
