"""Shard writer (``d2st prepare``): decode a split into HDF5 shards, atomic, resumable, parallel.

Deterministic assignment: split row ``k`` (CSV order) belongs to shard ``k // shard_size``. A
shard holds the videos of its row range that decoded (status ok or too_short), in split order;
videos that failed are recorded (``records``, then ``manifest.csv``) but take no row. Every shard
of the range is written, even one with zero rows, so a rerun knows the range is done.

One writer per folder: :class:`d2st.io.FolderLock` on the output folder for the whole run.

Atomicity: a shard is written to ``shard-i.tmp.h5``, fsynced, renamed, hashed into
``shards.csv``; ``manifest.csv`` is written last. A killed run leaves no manifest, which every
reader rejects, and the rerun resumes: a shard is kept if its size and SHA-256 match
``shards.csv`` and its attributes and row digest match the split; everything else is rebuilt.

Failures: a video's own failure (``missing``, ``corrupt``, ...) is recorded; on the next run the
failed rows of kept shards are decoded again, and a shard is rewritten (its landed clips copied,
not decoded again) when one of them now lands or fails differently. ``unreadable`` / ``corrupt``
videos are tried :data:`DEFAULT_ATTEMPTS` times before they count as bad. A failure of the
machine (no ffmpeg, no permission, disk full) stops the run with one line
(:class:`d2st.data.video.DecodeEnvironmentError`, :class:`d2st.io.DiskFullError`); the shard
being written is discarded, so nothing a rerun would trust records it.

Paths: every ``relpath`` must be relative and stay inside the video root after normalisation
(no absolute paths, no ``..`` components); anything else is an error naming the split line.
Symlinks inside the video root are followed wherever they point: whoever owns the root placed
them there (a root of links to other disks is common); the split file is the untrusted input.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import h5py
import numpy as np
import pandas as pd

from d2st import __version__
from d2st.data.shards.layout import (
    DEFAULT_FORMAT,
    DEFAULT_JPEG_QUALITY,
    DEFAULT_SHARD_SIZE,
    FORMATS,
    MANIFEST,
    MANIFEST_COLUMNS,
    SHARD_TABLE,
    attr,
    clip_crc32,
    encode_jpeg,
    expected_attrs,
    file_sha256,
    read_shard_table,
    shard_name,
    shard_table_text,
)
from d2st.data.splits import COLUMNS, read_split_csv
from d2st.data.video import OK_STATUSES, check_decoders, decode_clips, list_videos
from d2st.errors import UserError
from d2st.io import (
    NO_SPACE_ERRNOS,
    DiskFullError,
    FolderLock,
    atomic_write_text,
    disk_full_error,
    fsync_path,
)

DEFAULT_ATTEMPTS = 3  # tries for an unreadable / corrupt video before it counts as bad


class PrepareError(UserError):
    """``on_error='fail'`` met a bad video, or the split cannot be prepared."""


def _str_dtype():
    return h5py.string_dtype("utf-8")


# --------------------------------------------------------------------------- split checks


@dataclass
class PrepareSummary:
    """What :func:`prepare` did: status counts, shards written / reused, and the manifest path."""

    counts: Counter = field(default_factory=Counter)
    shards_written: int = 0
    shards_reused: int = 0
    retried: int = 0
    recovered: int = 0
    manifest: Path | None = None
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        c = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        retry = f", failed rows retried {self.retried} (landed {self.recovered})"
        return (
            f"{sum(self.counts.values())} videos: {c or 'none'} | shards written "
            f"{self.shards_written}, reused {self.shards_reused}" + (retry if self.retried else "")
        )


def split_from_folder(videos: str | Path) -> pd.DataFrame:
    """Split rows for every video file under ``videos``: label = parent folder name.

    ``video_id`` is the path relative to ``videos`` with its extension (``a/x.mp4``), so files
    that share a stem (``x.mp4``, ``x.webm``) both land; ``label_idx`` follows the sorted labels.
    """
    root = Path(videos)
    if not root.is_dir():
        raise PrepareError(f"{root}: video folder not found")
    rel = [f.relative_to(root).as_posix() for f in list_videos(root)]
    labels = [PurePosixPath(r).parent.name for r in rel]
    classes = {c: i for i, c in enumerate(sorted(set(labels)))}
    return pd.DataFrame(
        {
            "video_id": rel,
            "label": labels,
            "label_idx": [classes[c] for c in labels],
            "relpath": rel,
        }
    )


def _where(split_path: Path | None, k: int) -> str:
    return f"{split_path}:{k + 2}" if split_path is not None else f"split row {k}"


def check_relpaths(df: pd.DataFrame, videos: Path, split_path: Path | None = None) -> None:
    """Every ``relpath`` is relative, free of ``..`` and NUL, and non-empty; else a PrepareError.

    The error names the split line (``split.csv:LINE``; the header is line 1).
    """
    for k, rp in enumerate(df["relpath"]):
        rp = str(rp)
        norm = os.path.normpath(rp) if rp else ""
        bad = ""
        if not rp or norm == ".":
            bad = "is empty"
        elif "\0" in rp:
            bad = "contains a NUL character"
        elif os.path.isabs(rp) or rp.startswith(("/", "\\")):
            bad = "is absolute"
        elif norm == ".." or norm.startswith("../") or ".." in PurePosixPath(rp).parts:
            bad = "climbs out with '..'"
        if bad:
            raise PrepareError(
                f"{_where(split_path, k)}: relpath {rp!r} {bad}: it must stay inside the video "
                f"root {videos}",
                "relpaths are relative to --videos; fix the split file",
            )


def _load_split(split, videos: Path) -> tuple[pd.DataFrame, Path | None]:
    if split is None:
        return split_from_folder(videos), None
    if isinstance(split, (str, Path)):
        return read_split_csv(split), Path(split)
    return split.reset_index(drop=True), None


def _digest(rows: pd.DataFrame) -> str:
    h = hashlib.sha256()
    for v, li, rp in zip(rows["video_id"], rows["label_idx"], rows["relpath"]):
        h.update(f"{v}\t{int(li)}\t{rp}\n".encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- decoding


DECODE_BATCH = 8  # videos per worker task, decoded by one ffmpeg process (decode_clips)


def _decode_batch(tasks: list[tuple]) -> list[tuple]:
    """Worker: decode (and JPEG-encode) a few videos. Returns one picklable record per video."""
    _, _, T, size, threads, strict, fmt, quality, attempts, rule = tasks[0]
    paths = [t[1] for t in tasks]
    clips = decode_clips(
        paths, T, size, threads=threads, strict=strict, attempts=attempts, rule=rule
    )
    out = []
    for t, r in zip(tasks, clips, strict=True):
        payload = crc = None
        if r.frames is not None:
            payload = encode_jpeg(r.frames, quality) if fmt == "jpeg" else r.frames
            crc = clip_crc32(payload)
        out.append((t[0], r.status, r.message, r.source_frames, r.indices, payload, crc))
    return out


def _iter_results(tasks: list[tuple], jobs: int) -> Iterator[tuple]:
    """Records in task order; tasks decoded DECODE_BATCH at a time, by ``jobs`` workers."""
    batches = [tasks[i : i + DECODE_BATCH] for i in range(0, len(tasks), DECODE_BATCH)]
    if jobs <= 1 or len(batches) <= 1:
        for b in batches:
            yield from _decode_batch(b)
        return
    import multiprocessing as mp

    ctx = mp.get_context("forkserver" if sys.platform != "win32" else "spawn")
    with ctx.Pool(jobs) as pool:
        for records in pool.imap(_decode_batch, batches):
            yield from records


# --------------------------------------------------------------------------- one shard file


class _SpaceGuardFile(io.FileIO):
    """The file libhdf5 writes through (h5py's file-object driver).

    The first failed write for lack of space is recorded and every later write is accepted and
    dropped, so libhdf5 can still close the file: a write error inside libhdf5's own driver
    leaves a file it cannot close, and the process then crashes at exit (segfault). The writer
    checks :attr:`error` after each step and raises it as one line.
    """

    error: OSError | None = None

    def write(self, b) -> int:
        if self.error is None:
            try:
                return super().write(b)
            except OSError as e:
                if e.errno not in NO_SPACE_ERRNOS:
                    raise
                self.error = e
        n = len(memoryview(b))
        self.seek(n, os.SEEK_CUR)
        return n

    def truncate(self, size=None):
        if self.error is None:
            try:
                return super().truncate(size)
            except OSError as e:
                if e.errno not in NO_SPACE_ERRNOS:
                    raise
                self.error = e
        return size


class _ShardWriter:
    """Writes one shard to ``*.tmp.h5``; :meth:`commit` fsyncs, renames and hashes it."""

    def __init__(self, out: Path, i: int, capacity: int, T: int, size: int, fmt: str, attrs: dict):
        self.final = out / shard_name(i)
        self.tmp = out / shard_name(i).replace(".h5", ".tmp.h5")
        self.index = i
        self.raw = _SpaceGuardFile(self.tmp, "w+")
        self.f = h5py.File(self.raw, "w")
        cap = max(capacity, 1)
        if fmt == "raw":
            self.frames = self.f.create_dataset(
                "frames",
                (cap, T, size, size, 3),
                np.uint8,
                maxshape=(None, T, size, size, 3),
                chunks=(1, T, size, size, 3),
            )
        else:
            self.frames = self.f.create_dataset(
                "frames", (cap, T), h5py.vlen_dtype(np.uint8), maxshape=(None, T), chunks=(16, T)
            )
        self.vid = self.f.create_dataset("video_id", (cap,), _str_dtype(), maxshape=(None,))
        self.lab = self.f.create_dataset("label_idx", (cap,), np.int64, maxshape=(None,))
        self.idx = self.f.create_dataset("frame_indices", (cap, T), np.int64, maxshape=(None, T))
        self.crc = self.f.create_dataset("clip_crc32", (cap,), np.uint32, maxshape=(None,))
        for k, v in attrs.items():
            self.f.attrs[k] = v
        self.fmt = fmt
        self.n = 0
        self.bytes = 0  # payload bytes stored (for disk-full estimates)

    def _check_space(self) -> None:
        if self.raw.error is not None:
            raise disk_full_error(self.tmp)

    def add(self, video_id: str, label_idx: int, indices, payload, crc: int) -> int:
        """Store one clip (raw (T,H,W,3) uint8 or T JPEG blobs); returns its row."""
        r = self.n
        if self.fmt == "raw":
            self.frames[r] = payload
            self.bytes += payload.nbytes
        else:
            for t, blob in enumerate(payload):
                self.frames[r, t] = blob
                self.bytes += len(blob)
        self.vid[r] = video_id
        self.lab[r] = label_idx
        self.idx[r] = indices
        self.crc[r] = crc
        self.n += 1
        self._check_space()
        return r

    def commit(self, records: list[dict]) -> dict:
        """Finish, fsync, rename into place; returns the ``shards.csv`` entry."""
        for d in (self.frames, self.vid, self.lab, self.idx, self.crc):
            d.resize(self.n, axis=0)
        self.f.create_dataset("records", data=json.dumps(records), dtype=_str_dtype())
        self.f.attrs["rows"] = self.n
        self.f.close()
        self._check_space()
        try:
            self.raw.flush()
            os.fsync(self.raw.fileno())
        except OSError as e:
            if e.errno in NO_SPACE_ERRNOS:
                raise disk_full_error(self.tmp) from None
            raise
        self.raw.close()
        os.replace(self.tmp, self.final)
        fsync_path(self.final.parent)
        return {
            "rows": self.n,
            "bytes": self.final.stat().st_size,
            "sha256": file_sha256(self.final),
        }

    def abort(self) -> None:
        try:
            if self.f.id.valid:
                self.f.close()
        finally:
            self.raw.close()
            self.tmp.unlink(missing_ok=True)


def _read_complete_shard(path: Path, entry, expect: dict, start: int, stop: int, digest: str):
    """Records of a shard that can be kept, else None (rebuild).

    Kept when its size and SHA-256 match its ``shards.csv`` entry (checked before libhdf5 sees
    the file) and its attributes, split range, row digest and dataset lengths match.
    """
    if entry is None:
        return None
    try:
        if path.stat().st_size != entry["bytes"] or file_sha256(path) != entry["sha256"]:
            return None
        with h5py.File(path, "r") as f:
            a = f.attrs
            for k, v in expect.items():
                if k not in a or attr(a[k]) != v:
                    return None
            if (int(a["split_start"]), int(a["split_stop"]), attr(a["split_digest"])) != (
                start,
                stop,
                digest,
            ):
                return None
            records = json.loads(attr(f["records"][()]))
            n = sum(r["status"] in OK_STATUSES for r in records)
            lengths = {f[d].shape[0] for d in ("frames", "video_id", "clip_crc32")}
            if lengths != {n} or len(records) != stop - start or n != entry["rows"]:
                return None
            return records
    except (OSError, KeyError, ValueError, TypeError):
        return None


# --------------------------------------------------------------------------- prepare


def prepare(
    split: pd.DataFrame | str | Path | None,
    videos: str | Path,
    out: str | Path,
    frames: int = 8,
    size: int = 256,
    jobs: int = 1,
    shard_size: int = DEFAULT_SHARD_SIZE,
    on_error: str = "skip",
    fmt: str = DEFAULT_FORMAT,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
    strict: bool = False,
    progress: bool = True,
    attempts: int = DEFAULT_ATTEMPTS,
    frame_rule: str = "uniform",
) -> PrepareSummary:
    """Decode every video of a split into HDF5 shards under ``out`` and write ``manifest.csv``.

    Args:
        split: split DataFrame / CSV path (``video_id,label,label_idx,relpath``), or None for
            every video file under ``videos`` (label = parent folder, :func:`split_from_folder`).
        videos: video root; ``relpath`` is relative to it and must stay inside it.
        out: shard folder (``.../{T}f_{size}px``); locked for this run (one writer).
        frames, size: T sampled frames, resized to size x size.
        frame_rule: frame-index rule (``uniform`` segment centres; ``kinetics100`` the
            authors' rule for that dataset), :data:`d2st.data.sampling.FRAME_RULES`. F candidate
            frames per segment for temporal jitter: ``frames = T * F`` with the uniform rule.
        jobs: decoding processes.
        shard_size: split rows per shard (row k -> shard k // shard_size).
        on_error: ``skip`` records bad videos and goes on; ``fail`` stops at the first one
            (shards already complete stay valid; no manifest is written).
        fmt: ``jpeg`` or ``raw`` frame storage.
        jpeg_quality: JPEG quality for ``fmt='jpeg'``.
        strict: decoder errors make a video ``corrupt`` even if its frames decoded.
        progress: show a tqdm bar.
        attempts: tries for an unreadable / corrupt video before it counts as bad.

    Raises:
        PrepareError: ``on_error='fail'`` and a video failed, or the split is malformed (a
            duplicate ``video_id``, a ``relpath`` leaving the video root), naming the line.
        d2st.data.video.DecodeEnvironmentError: no ffmpeg / ffprobe, or no permission.
        d2st.io.DiskFullError: the disk filled up (names the folder and the bytes needed).
        d2st.io.LockedError: another process is writing ``out``.
    """
    from tqdm import tqdm

    if on_error not in ("skip", "fail"):
        raise ValueError(f"on_error must be 'skip' or 'fail', got {on_error!r}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if shard_size < 1 or frames < 1 or size < 1:
        raise ValueError("shard_size, frames and size must be >= 1")
    videos, out = Path(videos), Path(out)
    check_decoders()  # before anything is written: no decoder is not a property of the videos
    df, split_path = _load_split(split, videos)
    dup = df.index[df["video_id"].duplicated()]
    if len(dup):
        k = int(dup[0])
        raise PrepareError(
            f"{_where(split_path, k)}: duplicate video_id {df.at[k, 'video_id']!r}",
            "video_id must be unique within a split",
        )
    check_relpaths(df, videos, split_path)
    with FolderLock(out, "d2st prepare") as lock:
        summary = PrepareSummary()
        if lock.stale_line():
            summary.notes.append(lock.stale_line())
        _prepare_locked(
            df, videos, out, frames, size, jobs, shard_size, on_error, fmt, jpeg_quality,
            strict, progress, attempts, summary, tqdm, frame_rule,
        )  # fmt: skip
    return summary


def _prepare_locked(
    df, videos, out, frames, size, jobs, shard_size, on_error, fmt, quality, strict, progress,
    attempts, summary, tqdm, rule,
) -> None:  # fmt: skip
    for stale in out.glob("*.tmp*"):  # leftovers of a killed run: never complete
        stale.unlink()
    (out / MANIFEST).unlink(missing_ok=True)  # re-validated and rewritten at the end
    old_table = read_shard_table(out) or {}
    n_shards = max(1, -(-len(df) // shard_size))
    for extra in out.glob("shard-*.h5"):  # shards beyond the split (it shrank): remove
        stem = extra.name[len("shard-") : -len(".h5")]
        if not stem.isdigit() or int(stem) >= n_shards:
            extra.unlink()
    expect = expected_attrs(frames, size, fmt, quality, rule)

    def rng(i):
        return i * shard_size, min(len(df), (i + 1) * shard_size)

    records: dict[int, list[dict]] = {}
    table: dict[str, dict] = {}
    pending: list[int] = []
    retry: dict[int, list[int]] = {}  # kept shard -> its failed split rows, decoded again
    for i in range(n_shards):
        lo, hi = rng(i)
        name = shard_name(i)
        got = None
        if (out / name).is_file():
            got = _read_complete_shard(
                out / name, old_table.get(name), expect, lo, hi, _digest(df.iloc[lo:hi])
            )
        if got is None:
            pending.append(i)
            continue
        records[i], table[name] = got, old_table[name]
        failed = [lo + j for j, r in enumerate(got) if r["status"] not in OK_STATUSES]
        if failed:
            retry[i] = failed
    atomic_write_text(out / SHARD_TABLE, shard_table_text(table))

    threads = 1 if jobs > 1 else 0

    def task(k):
        path = str(videos / df.at[k, "relpath"])
        return (k, path, frames, size, threads, strict, fmt, quality, attempts, rule)

    order = sorted([*pending, *retry])
    rows_of = {i: (range(*rng(i)) if i in pending else retry[i]) for i in order}
    tasks = [task(k) for i in order for k in rows_of[i]]
    summary.retried = sum(len(v) for v in retry.values())
    bar = tqdm(total=len(tasks), desc=f"prepare {out.name}", unit="video", disable=not progress)
    results = _iter_results(tasks, jobs)
    writer: _ShardWriter | None = None
    done_videos, stored_bytes = 0, 0
    try:
        for i in order:
            lo, hi = rng(i)
            new: dict[int, tuple] = {}
            for k in rows_of[i]:
                res = next(results)
                assert res[0] == k
                new[k] = res
                bar.update(1)
                if res[1] not in OK_STATUSES and on_error == "fail":
                    raise PrepareError(f"{df.at[k, 'relpath']}: {res[1]}: {res[2]}")
            if i in retry:
                old = records[i]
                changed = [
                    k for k in new if (new[k][1], new[k][2]) != (old[k - lo]["status"],
                                                             old[k - lo]["message"])
                ]  # fmt: skip
                summary.recovered += sum(new[k][1] in OK_STATUSES for k in new)
                if not changed:
                    summary.shards_reused += 1
                    continue
            attrs = {
                **expect,
                "d2st_version": __version__,
                "split_start": lo,
                "split_stop": hi,
                "split_digest": _digest(df.iloc[lo:hi]),
            }
            writer = _ShardWriter(out, i, hi - lo, frames, size, fmt, attrs)
            old_file = h5py.File(out / shard_name(i), "r") if i in retry else None
            try:
                recs = []
                for k in range(lo, hi):
                    if k in new:
                        _, status, message, src, idx, payload, crc = new[k]
                    else:  # a landed clip of a kept shard: copied, not decoded again
                        rec = records[i][k - lo]
                        status, message, src = rec["status"], rec["message"], rec["source_frames"]
                        r = rec["row"]
                        if r is None:
                            payload = None
                        else:
                            payload = old_file["frames"][r]
                            idx = old_file["frame_indices"][r]
                            crc = int(old_file["clip_crc32"][r])
                    rec = {
                        "video_id": df.at[k, "video_id"],
                        "status": status,
                        "message": message,
                        "source_frames": src,
                        "row": None,
                    }
                    if status in OK_STATUSES:
                        vid, lab = df.at[k, "video_id"], int(df.at[k, "label_idx"])
                        rec["row"] = writer.add(vid, lab, idx, payload, crc)
                    recs.append(rec)
            finally:
                if old_file is not None:
                    old_file.close()
            table[shard_name(i)] = writer.commit(recs)
            done_videos += hi - lo
            stored_bytes += writer.bytes
            writer = None
            records[i] = recs
            summary.shards_written += 1
            atomic_write_text(out / SHARD_TABLE, shard_table_text(table))
    except DiskFullError:
        left = sum(rng(i)[1] - rng(i)[0] for i in order) - done_videos
        landed = done_videos + (writer.n if writer else 0)
        per = (stored_bytes + (writer.bytes if writer else 0)) / max(1, landed)
        if left <= 0:  # every video stored: the failing write names its own file and size
            raise
        need = int(per * left) if per > 0 else None
        what = f"for the {left} video{'s' if left > 1 else ''} not yet stored"
        raise disk_full_error(out, need, what) from None
    finally:
        bar.close()
        if writer is not None:
            writer.abort()
        if hasattr(results, "close"):
            results.close()
    summary.shards_reused += n_shards - len(order)

    rows = []
    for i in range(n_shards):
        lo = i * shard_size
        for j, rec in enumerate(records[i]):
            k = lo + j
            landed = rec["row"] is not None
            rows.append(
                {
                    **{c: df.at[k, c] for c in COLUMNS},
                    "status": rec["status"],
                    "message": rec["message"] or "",
                    "source_frames": ""
                    if rec["source_frames"] is None
                    else int(rec["source_frames"]),
                    "shard": shard_name(i) if landed else "",
                    "row": int(rec["row"]) if landed else "",
                }
            )
            summary.counts[rec["status"]] += 1
    man = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    atomic_write_text(out / SHARD_TABLE, shard_table_text(table))
    summary.manifest = atomic_write_text(out / MANIFEST, man.to_csv(index=False))


# --------------------------------------------------------------------------- arrays -> shards


def write_clips(
    root: str | Path,
    clips: np.ndarray,
    labels,
    *,
    video_ids: list[str] | None = None,
    class_names: list[str] | None = None,
    frame_indices: np.ndarray | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> Path:
    """Write decoded clips as a complete shard folder (raw storage): shards, table, manifest.

    For data that never was a video file (tests, generated data). Shapes: clips uint8
    (N, T, H, W, 3) with H == W; labels (N,) int.

    Args:
        root: the shard folder to create.
        clips, labels: the clips and their label_idx.
        video_ids: N ids (default ``v00000`` ...); class_names: name per label_idx.
        frame_indices: (N, T) source frame numbers (default 0..T-1).
        shard_size: clips per shard.
    """
    root = Path(root)
    clips = np.asarray(clips, np.uint8)
    n, T, H, W, _ = clips.shape  # (N, T, H, W, 3)
    if H != W:
        raise ValueError(f"clips must be square, got {H}x{W}")
    labels = np.asarray(labels, np.int64)
    ids = list(video_ids or [f"v{i:05d}" for i in range(n)])
    names = list(class_names or [f"class{c:02d}" for c in range(int(labels.max()) + 1)])
    fidx = np.tile(np.arange(T), (n, 1)) if frame_indices is None else np.asarray(frame_indices)
    df = pd.DataFrame(
        {
            "video_id": ids,
            "label": [names[c] for c in labels],
            "label_idx": labels,
            "relpath": [f"{names[c]}/{v}" for v, c in zip(ids, labels)],
        }
    )
    expect = expected_attrs(T, H, "raw", 0)
    table, rows = {}, []
    with FolderLock(root, "write_clips"):
        for i in range(max(1, -(-n // shard_size))):
            lo, hi = i * shard_size, min(n, (i + 1) * shard_size)
            attrs = {**expect, "d2st_version": __version__, "split_start": lo, "split_stop": hi,
                     "split_digest": _digest(df.iloc[lo:hi])}  # fmt: skip
            w = _ShardWriter(root, i, hi - lo, T, H, "raw", attrs)
            recs = []
            for k in range(lo, hi):
                r = w.add(ids[k], int(labels[k]), fidx[k], clips[k], clip_crc32(clips[k]))
                recs.append({"video_id": ids[k], "status": "ok", "message": "",
                             "source_frames": T, "row": r})  # fmt: skip
                rows.append({**df.iloc[k].to_dict(), "status": "ok", "message": "",
                             "source_frames": T, "shard": shard_name(i), "row": r})  # fmt: skip
            table[shard_name(i)] = w.commit(recs)
        atomic_write_text(root / SHARD_TABLE, shard_table_text(table))
        atomic_write_text(
            root / MANIFEST, pd.DataFrame(rows, columns=MANIFEST_COLUMNS).to_csv(index=False)
        )
    return root


__all__ = [
    "DEFAULT_ATTEMPTS",
    "PrepareError",
    "PrepareSummary",
    "check_relpaths",
    "prepare",
    "split_from_folder",
    "write_clips",
]
