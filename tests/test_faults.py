"""Faults and bad input: nothing cached wrongly, nothing read from outside, nothing hangs.

One section per failure mode: environment failures vs bad videos, paths leaving the video root,
incomplete or mismatched shard folders, damaged shards, two writers, error messages, folder mode.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_data_helpers import numbered_frames, write_video

from d2st.cli import main as cli_main
from d2st.data.shards import (
    PrepareError,
    ShardError,
    ShardSet,
    open_shards,
    prepare,
    read_manifest,
    shard_files,
    verify,
)
from d2st.errors import UserError
from d2st.io import (
    LOCK_NAME,
    CheckpointError,
    FolderLock,
    LockedError,
    atomic_write_text,
    load_checkpoint,
    lock_holder,
    save_checkpoint,
)

T, SIZE = 4, 24
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Six good videos of three classes, and their split (two rows per class)."""
    root = tmp_path_factory.mktemp("videos")
    rows = []
    for c in range(3):
        for j in range(2):
            write_video(root / f"c{c}" / f"v{c}{j}.mp4", numbered_frames(8 + 3 * j + c, side=32))
            rows.append((f"v{c}{j}", f"c{c}", c, f"c{c}/v{c}{j}.mp4"))
    return root, pd.DataFrame(rows, columns=["video_id", "label", "label_idx", "relpath"])


def _csv(df: pd.DataFrame, path: Path) -> Path:
    df.to_csv(path, index=False)
    return path


def _env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def _d2st(*args, env=None, timeout=180, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "d2st.cli", *map(str, args)]
    return subprocess.run(
        cmd, env=env or _env(), capture_output=True, text=True, timeout=timeout, **kw
    )


def _prepare_args(root, split_csv, out, *extra):
    return ["prepare", "--videos", root, "--split", split_csv, "--out", out, "--frames", T,
            "--size", SIZE, "--no-progress", *extra]  # fmt: skip


def _cli_args(args) -> list[str]:
    return [str(a) for a in args]


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


# --------------------------------------------------------------------------- 1. environment


def test_missing_ffmpeg_fails_in_one_line_caches_nothing_and_rerun_decodes_all(
    videos, tmp_path, monkeypatch, capsys
):
    root, split = videos
    csv_path, out = _csv(split, tmp_path / "split.csv"), tmp_path / "out"
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    with monkeypatch.context() as m:
        m.setenv("PATH", str(empty_bin))
        assert cli_main(_cli_args(_prepare_args(root, csv_path, out))) == 1
    err = _lines(capsys.readouterr().err)
    assert 1 <= len(err) <= 2 and "ffmpeg" in err[0]
    assert not shard_files(out) and not (out / "manifest.csv").exists()
    assert cli_main(_cli_args(_prepare_args(root, csv_path, out))) == 0
    assert (read_manifest(out)["status"] == "ok").all()
    assert len(open_shards(out, frames=T, size=SIZE)) == len(split)


FLAKY = """#!/bin/sh
# fails the first call with each argument list (a decoder that fails now and then)
[ "$1" = "-version" ] && exec {real} "$@"
key=$(printf '%s ' "$0" "$@" | cksum | cut -d' ' -f1)
if [ ! -e "{state}/$key" ]; then : > "{state}/$key"; echo "flaky: try again" >&2; exit 1; fi
exec {real} "$@"
"""


def test_transient_decoder_failures_are_retried_not_cached(videos, tmp_path, monkeypatch):
    root, split = videos
    fake, state = tmp_path / "fakebin", tmp_path / "state"
    fake.mkdir()
    state.mkdir()
    for exe in ("ffmpeg", "ffprobe"):
        (fake / exe).write_text(FLAKY.format(real=shutil.which(exe), state=state))
        (fake / exe).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "out"
    prepare(split, root, out, frames=T, size=SIZE, progress=False)
    assert (read_manifest(out)["status"] == "ok").all(), read_manifest(out)[["status", "message"]]
    assert len(list(state.iterdir())) >= 2 * len(split)  # every video did fail once


def test_failed_rows_are_retried_on_the_next_run(videos, tmp_path):
    root, split = videos
    vroot = tmp_path / "videos"
    shutil.copytree(root, vroot)
    late = vroot / split.at[4, "relpath"]
    kept = late.read_bytes()
    late.unlink()  # row 4 is missing on the first run
    out = tmp_path / "out"
    s1 = prepare(split, vroot, out, frames=T, size=SIZE, shard_size=2, fmt="raw", progress=False)
    man = read_manifest(out)
    assert man.at[4, "status"] == "missing" and s1.counts["ok"] == len(split) - 1
    before = ShardSet(out).get_many(range(len(split) - 1))
    late.write_bytes(kept)
    s2 = prepare(split, vroot, out, frames=T, size=SIZE, shard_size=2, fmt="raw", progress=False)
    assert s2.retried == 1 and s2.recovered == 1
    assert s2.shards_written == 1 and s2.shards_reused == 2  # only row 4's shard is rewritten
    assert (read_manifest(out)["status"] == "ok").all() and verify(out, deep=True) == []
    after = ShardSet(out)
    assert after.video_ids == list(split["video_id"])
    keep = [i for i in range(len(split)) if i != 4]
    assert np.array_equal(after.get_many(keep), before)  # copied clips are the same clips
    s3 = prepare(split, vroot, out, frames=T, size=SIZE, shard_size=2, fmt="raw", progress=False)
    assert s3.retried == 0 and s3.shards_written == 0


# --------------------------------------------------------------------------- 2. paths


@pytest.mark.parametrize("bad", ["../outside/x.mp4", "ABS", "c0/../../outside/x.mp4"])
def test_relpath_leaving_the_video_root_is_an_error_naming_the_line(videos, tmp_path, capsys, bad):
    root, split = videos
    outside = write_video(tmp_path / "outside" / "x.mp4", numbered_frames(8, side=32))
    vroot = tmp_path / "root"
    shutil.copytree(root, vroot)
    df = split.copy()
    df.loc[2, "relpath"] = str(outside) if bad == "ABS" else bad
    csv_path = _csv(df, tmp_path / "split.csv")
    with pytest.raises(PrepareError, match=r"split\.csv:4: relpath .* video root"):
        prepare(csv_path, vroot, tmp_path / "out", frames=T, size=SIZE, progress=False)
    assert not (tmp_path / "out").exists()
    assert cli_main(_cli_args(_prepare_args(vroot, csv_path, tmp_path / "out2"))) == 1
    err = _lines(capsys.readouterr().err)
    assert "split.csv:4" in err[0] and len(err) <= 2


def test_symlinks_inside_the_root_are_followed(videos, tmp_path):
    root, split = videos
    vroot = tmp_path / "root"
    vroot.mkdir()
    for c in ("c0", "c1", "c2"):
        os.symlink(root / c, vroot / c)  # a root of links to another disk
    out = tmp_path / "out"
    prepare(split, vroot, out, frames=T, size=SIZE, progress=False)
    assert (read_manifest(out)["status"] == "ok").all()


# --------------------------------------------------------------------------- 3. reader checks


def test_reader_refuses_incomplete_and_mismatched_folders(videos, tmp_path):
    root, split = videos
    out = tmp_path / "out"
    prepare(split, root, out, frames=T, size=SIZE, shard_size=2, progress=False)
    assert len(open_shards(out, frames=T, size=SIZE, num_classes=3)) == len(split)
    with pytest.raises(ShardError, match=rf"shards hold {T} frames per video.*model\.frames=8"):
        open_shards(out, frames=8)
    with pytest.raises(ShardError, match=rf"shards hold {SIZE} px frames.*data\.size=32"):
        open_shards(out, frames=T, size=32)
    with pytest.raises(ShardError, match="3 classes.*num_classes=5"):
        open_shards(out, frames=T, num_classes=5)
    # a killed prepare: shards on disk, no manifest (and the last shard never written)
    (out / "manifest.csv").unlink()
    shard_files(out)[-1].unlink()
    for opener in (lambda: ShardSet(out), lambda: open_shards(out, frames=T)):
        with pytest.raises(ShardError, match="manifest.csv: missing"):
            opener()
    assert cli_main(["verify", str(out)]) == 1


def test_failed_rows_are_refused_unless_allowed(videos, tmp_path):
    root, split = videos
    df = split.copy()
    df.loc[1, "relpath"] = "c0/gone.mp4"
    out = tmp_path / "out"
    prepare(df, root, out, frames=T, size=SIZE, progress=False)
    with pytest.raises(ShardError, match=r"1 of 6 videos failed.*v01 \(missing\)"):
        open_shards(out, frames=T)
    assert len(open_shards(out, frames=T, allow_failed=1)) == 5
    assert len(ShardSet(out)) == 5 and verify(out) == []  # recorded failures are not damage


# --------------------------------------------------------------------------- 4. damage


def _check_in_subprocess(out: Path, tmp_path: Path) -> list[str]:
    """verify, verify --deep and ShardSet on ``out`` in a child; each must end (no hang)."""
    code = textwrap.dedent(f"""
        from d2st.data.shards import ShardSet, verify
        print("verify", len(verify({str(out)!r})))
        print("deep", len(verify({str(out)!r}, deep=True)))
        try:
            s = ShardSet({str(out)!r})
            s.get_many(range(len(s)))
            print("read ok")
        except Exception as e:
            print("refused", type(e).__name__, e)
    """)
    r = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


@pytest.mark.parametrize("nbytes", [512, 4096])
def test_damaged_shard_is_reported_without_hanging(videos, tmp_path, nbytes):
    root, split = videos
    out = tmp_path / "out"
    prepare(split, root, out, frames=T, size=SIZE, shard_size=len(split), progress=False)
    shard = shard_files(out)[0]
    data = bytearray(shard.read_bytes())
    at = len(data) // 2  # inside the JPEG heap: libhdf5 used to loop forever on this
    assert any(data[at : at + nbytes])
    data[at : at + nbytes] = bytes(nbytes)
    shard.write_bytes(bytes(data))
    lines = _check_in_subprocess(out, tmp_path)
    assert lines[0] != "verify 0" and lines[1] != "deep 0", lines
    assert lines[2].startswith("refused ShardError") and shard.name in lines[2]
    assert any(shard.name in p for p in verify(out))
    shard.write_bytes(bytes(data[: len(data) // 3]))  # truncated
    assert any("truncated" in p for p in verify(out))


def test_deep_verify_finds_a_clip_whose_bytes_changed(videos, tmp_path):
    import h5py

    from d2st.data.shards.layout import file_sha256, read_shard_table, shard_table_text

    root, split = videos
    out = tmp_path / "out"
    prepare(split, root, out, frames=T, size=SIZE, shard_size=len(split), fmt="raw", progress=False)
    shard = shard_files(out)[0]
    with h5py.File(shard, "a") as f:  # a clip changed after it was written (e.g. bad RAM)
        f["frames"][3, 0, 0, 0, 0] ^= 0xFF
    table = read_shard_table(out)
    table[shard.name].update(bytes=shard.stat().st_size, sha256=file_sha256(shard))
    atomic_write_text(out / "shards.csv", shard_table_text(table))
    assert verify(out) == []
    assert verify(out, deep=True) == [f"{shard.name}: row 3: CRC-32 differs from the one written"]


# --------------------------------------------------------------------------- 5. one writer

HOLD = """
import sys, time
from d2st.io import FolderLock
lock = FolderLock(sys.argv[1], "test holder").acquire()
print("held", flush=True)
time.sleep(120)
"""


def _holder(folder: Path) -> subprocess.Popen:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], env=_env(), stdout=subprocess.PIPE, text=True
    )
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_writer_fails_at_once_naming_the_holder(videos, tmp_path, capsys):
    root, split = videos
    out = tmp_path / "out"
    p = _holder(out)
    try:
        assert lock_holder(out)["pid"] == p.pid
        t0 = time.monotonic()
        with pytest.raises(LockedError, match=rf"in use by PID {p.pid} on "):
            prepare(split, root, out, frames=T, size=SIZE, progress=False)
        assert time.monotonic() - t0 < 30  # failed at once, did not wait for the holder
        assert cli_main(_cli_args(_prepare_args(root, _csv(split, tmp_path / "s.csv"), out))) == 1
        err = _lines(capsys.readouterr().err)
        assert f"PID {p.pid}" in err[0] and len(err) <= 2
        with pytest.raises(ShardError, match=f"being written by PID {p.pid}"):
            ShardSet(out)
    finally:
        p.kill()
        p.wait()
    # killed with SIGKILL: its lock file stays, but the lock is gone and reported as stale
    assert (out / LOCK_NAME).exists() and lock_holder(out) is None
    s = prepare(split, root, out, frames=T, size=SIZE, progress=False)
    assert any(f"stale lock of PID {p.pid}" in n for n in s.notes)
    assert not (out / LOCK_NAME).exists() and len(ShardSet(out)) == len(split)


def test_folder_lock_excludes_a_second_holder_in_the_same_process(tmp_path):
    with FolderLock(tmp_path / "run", "first") as first:
        assert first.stale is None
        with pytest.raises(LockedError, match=f"PID {os.getpid()}.*first"):
            FolderLock(tmp_path / "run").acquire()
    with FolderLock(tmp_path / "run"):  # released: free again
        pass


# --------------------------------------------------------------------------- 6. messages


def test_cli_errors_are_one_or_two_lines_and_tracebacks_need_debug(tmp_path, capsys):
    bad_key = tmp_path / "bad_key.yaml"
    bad_key.write_text("train:\n  no_such_key: 1\n")
    assert cli_main(["train", "--config", str(bad_key)]) == 1
    err = _lines(capsys.readouterr().err)
    assert len(err) <= 2 and "train.no_such_key" in err[0]
    bad_yaml = tmp_path / "bad_syntax.yaml"
    bad_yaml.write_text("train:\n  lr: [1, 2\n  shot: 1\n")
    assert cli_main(["train", "--config", str(bad_yaml)]) == 1
    err = _lines(capsys.readouterr().err)
    assert len(err) <= 2 and "bad_syntax.yaml" in err[0] and "YAML" in err[0]
    from d2st.config import ConfigError

    with pytest.raises((yaml.YAMLError, ConfigError)):  # --debug: the exception escapes
        cli_main(["--debug", "train", "--config", str(bad_yaml)])
    assert cli_main(["verify", str(tmp_path / "nowhere")]) == 1  # a list, not an exception


def test_split_file_errors_name_file_and_line(videos, tmp_path, capsys):
    root, split = videos
    df = split.copy().astype({"label_idx": object})
    df.loc[3, "label_idx"] = "two"
    bad = _csv(df, tmp_path / "labels.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    for path, where in ((bad, "labels.csv:5: label_idx 'two'"), (empty, "empty.csv: empty")):
        assert cli_main(_cli_args(_prepare_args(root, path, tmp_path / "out"))) == 1
        err = _lines(capsys.readouterr().err)
        assert where in err[0] and len(err) <= 2, err


def test_checkpoint_errors_name_the_path(tmp_path):
    import torch

    good = save_checkpoint({"w": torch.arange(1000.0), "episode": 3}, tmp_path / "ok.pt")
    assert load_checkpoint(good)["episode"] == 3
    data = good.read_bytes()
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.pt").write_bytes(np.random.default_rng(0).bytes(2000))
    torch.save({"f": Path("x")}, tmp_path / "pickle.pt")
    for name, what in [("empty", "empty"), ("cut", "truncated"), ("junk", "not a checkpoint"),
                       ("pickle", "refused"), ("missing", "not found")]:  # fmt: skip
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(tmp_path / f"{name}.pt")
        assert str(e.value).startswith(str(tmp_path / f"{name}.pt")) and what in str(e.value)
        assert "\n" not in str(e.value)


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))  # a "disk" of 60 kB per file
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes then fail with EFBIG, as ENOSPC would


def test_disk_full_during_prepare_is_one_line_not_a_crash(videos, tmp_path):
    root, split = videos
    out = tmp_path / "out"
    args = _prepare_args(root, _csv(split, tmp_path / "s.csv"), out, "--format", "raw")
    r = _d2st(*args, "--size", 64, "--shard-size", 100, preexec_fn=_limit_file_size)
    err = _lines(r.stderr)
    assert r.returncode == 1, r.stderr  # not 139 (segfault) or a traceback
    assert len(err) <= 2 and str(out) in err[0] and "needs" in err[0] and "videos" in err[0]
    assert not list(out.glob("*.tmp*")) and not (out / "manifest.csv").exists()


def test_offline_split_download_names_the_url_and_the_offline_option(tmp_path):
    import urllib.error

    from d2st.data import splits as S

    def offline(url):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    with pytest.raises(S.SplitError) as e:
        S.load_split("hmdb51", "test", cache_dir=tmp_path, fetch=offline)
    src = S.get_source("hmdb51", "test")
    assert src.url in str(e.value) and "name resolution" in str(e.value)
    assert "datasets.hmdb51.split_source" in e.value.hint and "--source-dir" in e.value.hint
    assert isinstance(e.value, UserError)


# --------------------------------------------------------------------------- 7. folder mode


def test_folder_mode_keys_video_id_on_the_relative_path(tmp_path):
    root = tmp_path / "videos"
    write_video(root / "jump" / "a.mp4", numbered_frames(9, side=32))
    write_video(root / "jump" / "a.webm", numbered_frames(10, side=32))
    write_video(root / "run" / "a.mp4", numbered_frames(11, side=32))
    out = tmp_path / "out"
    assert cli_main(["prepare", "--videos", str(root), "--out", str(out), "--frames", str(T),
                     "--size", str(SIZE), "--no-progress"]) == 0  # fmt: skip
    man = read_manifest(out)
    assert list(man["video_id"]) == ["jump/a.mp4", "jump/a.webm", "run/a.mp4"]
    assert (man["status"] == "ok").all() and list(man["label"]) == ["jump", "jump", "run"]
    assert list(man["source_frames"]) == [9, 10, 11] and len(ShardSet(out)) == 3


def test_chunk_index_is_checked_against_the_file_size(videos, tmp_path):
    import h5py

    from d2st.data.shards.reader import _chunk_problem

    root, split = videos
    out = tmp_path / "out"
    prepare(split, root, out, frames=T, size=SIZE, fmt="raw", progress=False)
    shard = shard_files(out)[0]
    with h5py.File(shard, "r") as f:
        assert _chunk_problem(f["frames"], shard.stat().st_size) is None
        assert "beyond the end of the file" in _chunk_problem(f["frames"], 4096)
