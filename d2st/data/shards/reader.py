"""Shard reader: a shard folder is checked whole before its first clip is read.

:func:`inspect_folder` is the one check, shared by the reader (which raises on the first problem)
and ``d2st verify`` (which lists them all). In order, stopping where a later step would be unsafe:

1. the folder is complete: ``manifest.csv`` and ``shards.csv`` present, no ``*.tmp*`` leftovers,
   no live writer (:func:`d2st.io.lock_holder`);
2. the manifest: its columns, unique ids, and (reader) no failed rows unless allowed;
3. every shard file listed in ``shards.csv`` and no other, with the recorded byte size and (with
   ``checksums``) SHA-256, in plain Python IO: a damaged file never reaches libhdf5, which can
   spin forever on a zeroed global heap;
4. every shard's attributes (one ``frames``/``size``/format/sampling rule for the folder, equal to
   what the caller expects), its datasets' shapes, and its chunk index (every chunk inside the
   file) before any clip is read;
5. manifest and shards agree row by row (video_id, label_idx; every landed row claimed once), and
   the classes are what the caller expects.

Failed rows (status other than ok / too_short) are the videos the writer could not decode. The
raw :class:`ShardSet` accepts them (they are recorded); :func:`open_shards`, the entry point for
training and evaluation, refuses a folder with failed rows unless ``allow_failed`` permits that
many (an int count, or a fraction of the split when < 1), because a run on a split missing
videos is not the experiment its config names.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from d2st.data.shards.layout import (
    MANIFEST,
    MANIFEST_COLUMNS,
    SHARD_FORMAT,
    SHARD_TABLE,
    ShardError,
    attr,
    decode_jpeg,
    file_sha256,
    read_manifest,
    read_shard_table,
    shard_files,
)
from d2st.data.video import OK_STATUSES
from d2st.io import lock_holder

REQUIRED_ATTRS = ("frames", "size", "sampling_rule", "frame_format", "d2st_version")


@dataclass
class Expect:
    """What the caller needs from a folder, and the config keys to name in a mismatch."""

    frames: int | None = None
    size: int | None = None
    num_classes: int | None = None
    allow_failed: int | float | None = None  # None: any number (recorded failures are fine)
    frames_key: str = "model.frames"
    size_key: str = "data.size"
    classes_key: str = "num_classes"


@dataclass
class FolderIndex:
    """What :func:`inspect_folder` read: shard paths, attrs and the per-clip index."""

    paths: list[Path] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    video_ids: list[str] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    frame_indices: list[np.ndarray] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


def _chunk_problem(ds: h5py.Dataset, file_size: int) -> str | None:
    """A chunk (or the contiguous block) of ``ds`` lying outside the file, else None."""
    dsid = ds.id
    if ds.chunks is None:
        off = dsid.get_offset()
        if off is not None and off + dsid.get_storage_size() > file_size:
            return f"{ds.name}: data block beyond the end of the file"
        return None
    n = dsid.get_num_chunks()
    limit = int(np.prod([-(-s // c) for s, c in zip(ds.shape, ds.chunks)]))
    if n > limit:
        return f"{ds.name}: chunk index lists {n} chunks, the shape holds at most {limit}"
    for i in range(n):
        info = dsid.get_chunk_info(i)
        if info.byte_offset is None or info.byte_offset + info.size > file_size:
            return f"{ds.name}: chunk {i} lies beyond the end of the file"
    return None


def _shapes(f: h5py.File, a: dict) -> tuple[int, list[str]]:
    """Row count of a shard and the problems with its datasets' shapes."""
    problems = []
    missing = [d for d in ("frames", "video_id", "label_idx", "frame_indices", "clip_crc32")
               if d not in f]  # fmt: skip
    if missing:
        return 0, [f"missing datasets {missing}"]
    n, T, S = f["video_id"].shape[0], int(a["frames"]), int(a["size"])
    want = {
        "frames": (n, T, S, S, 3) if a["frame_format"] == "raw" else (n, T),
        "video_id": (n,),
        "label_idx": (n,),
        "frame_indices": (n, T),
        "clip_crc32": (n,),
    }
    for d, shape in want.items():
        if f[d].shape != shape:
            problems.append(f"{d} shape {f[d].shape} != {shape}")
    if "rows" in a and int(a["rows"]) != n:
        problems.append(f"attrs rows {int(a['rows'])} != {n}")
    return n, problems


def inspect_folder(
    root: str | Path, expect: Expect | None = None, checksums: bool = True
) -> tuple[list[str], FolderIndex | None]:
    """Check a shard folder (module docstring, steps 1-5); returns (problems, index or None).

    Every problem is one line starting with the file it concerns (relative to ``root``). The
    index is None when a problem makes the folder unreadable.
    """
    root = Path(root)
    ex = expect or Expect()
    if not root.is_dir():
        return ["not a directory (run d2st prepare first)"], None
    problems: list[str] = []
    holder = lock_holder(root)
    if holder:
        problems.append(f"being written by PID {holder.get('pid')} on {holder.get('host')}")
    if not (root / MANIFEST).is_file():
        problems.append(f"{MANIFEST}: missing: prepare did not finish (killed, failed or running)")
    for tmp in sorted(root.glob("*.tmp*")):
        problems.append(f"{tmp.name}: leftover temporary file (an interrupted write)")
    if not (root / MANIFEST).is_file():
        return problems, None
    table = read_shard_table(root)
    if table is None:
        problems.append(
            f"{SHARD_TABLE}: missing or unreadable (written by an older d2st, or damaged)"
        )
        return problems, None
    man = read_manifest(root)
    missing_cols = [c for c in MANIFEST_COLUMNS if c not in man.columns]
    if missing_cols:
        return [*problems, f"{MANIFEST}: missing columns {missing_cols}"], None
    if man["video_id"].duplicated().any():
        k = int(man.index[man["video_id"].duplicated()][0])
        problems.append(f"{MANIFEST}:{k + 2}: duplicate video_id {man.at[k, 'video_id']!r}")
    failed = man[~man["status"].isin(OK_STATUSES)]
    if ex.allow_failed is not None and len(failed):
        limit = ex.allow_failed if ex.allow_failed >= 1 else ex.allow_failed * len(man)
        if len(failed) > limit:
            first = ", ".join(f"{v} ({s})" for v, s in zip(failed["video_id"], failed["status"]))
            problems.append(
                f"{MANIFEST}: {len(failed)} of {len(man)} videos failed to decode "
                f"({first[:150]}); allowed: {ex.allow_failed}"
            )

    # shard files: listed, present, right size and digest, before libhdf5 opens any
    on_disk = {p.name: p for p in shard_files(root)}
    for name in sorted(set(table) - set(on_disk)):
        problems.append(f"{name}: missing (listed in {SHARD_TABLE})")
    for name in sorted(set(on_disk) - set(table)):
        problems.append(f"{name}: not listed in {SHARD_TABLE} (left from another run?)")
    good: list[Path] = []
    for name in sorted(set(on_disk) & set(table)):
        p, e = on_disk[name], table[name]
        size = p.stat().st_size
        if size != e["bytes"]:
            problems.append(f"{name}: {size} bytes, {SHARD_TABLE} says {e['bytes']} (truncated?)")
        elif checksums and file_sha256(p) != e["sha256"]:
            problems.append(f"{name}: SHA-256 differs from {SHARD_TABLE} (damaged on disk)")
        else:
            good.append(p)
    if len(good) < len(on_disk) or set(table) - set(on_disk):
        return problems, None

    # HDF5 structure: attributes, shapes, chunk index; then the per-clip index
    idx = FolderIndex(paths=good)
    ref = None
    shard_rows: dict[str, tuple[list[str], np.ndarray]] = {}
    broken: set[str] = set()  # named already; their manifest rows are not listed again
    for p in good:
        try:
            with h5py.File(p, "r") as f:
                a = {k: attr(v) for k, v in f.attrs.items()}
                if any(k not in a for k in REQUIRED_ATTRS):
                    problems.append(f"{p.name}: missing attributes")
                    continue
                if int(a.get("shard_format", 1)) != SHARD_FORMAT:
                    problems.append(f"{p.name}: shard format {a.get('shard_format', 1)}, "
                                    f"this d2st reads {SHARD_FORMAT}")  # fmt: skip
                    continue
                key = {k: a[k] for k in ("frames", "size", "sampling_rule", "frame_format")}
                if ref is None:
                    ref, idx.attrs = key, a
                elif key != ref:
                    problems.append(f"{p.name}: attributes {key} differ from {ref}")
                    continue
                n, bad = _shapes(f, a)
                bad += [
                    c
                    for d in ("frames", "video_id", "label_idx", "frame_indices", "clip_crc32")
                    if d in f and (c := _chunk_problem(f[d], p.stat().st_size))
                ]
                if bad:
                    problems += [f"{p.name}: {b}" for b in bad]
                    broken.add(p.name)
                    continue
                vids = [v.decode() if isinstance(v, bytes) else v for v in f["video_id"][()]]
                labels = f["label_idx"][()].astype(np.int64)
                idx.video_ids += vids
                idx.labels.append(labels)
                idx.frame_indices.append(f["frame_indices"][()].astype(np.int64))
                idx.counts.append(n)
                shard_rows[p.name] = (vids, labels)
                if table[p.name]["rows"] != n:
                    problems.append(
                        f"{p.name}: {n} rows, {SHARD_TABLE} says {table[p.name]['rows']}"
                    )
        except (OSError, KeyError, ValueError, TypeError) as e:
            problems.append(f"{p.name}: unreadable ({type(e).__name__}: {e})")
            broken.add(p.name)
    if ref is not None:
        for what, have, want, key in (
            ("frames per video", ref["frames"], ex.frames, ex.frames_key),
            ("px frames", ref["size"], ex.size, ex.size_key),
        ):
            if want is not None and int(have) != int(want):
                problems.insert(0, f"shards hold {have} {what}, the run expects {key}={want}")

    # manifest <-> shards, row by row
    claimed = {name: np.zeros(len(v), bool) for name, (v, _) in shard_rows.items()}
    for k, r in man.iterrows():
        line = f"{MANIFEST}:{k + 2}"
        if r["status"] in OK_STATUSES:
            sh = r["shard"]
            if sh in broken:
                continue
            if sh not in shard_rows:
                problems.append(f"{line}: {r['video_id']}: shard {sh!r} missing")
                continue
            try:
                row = int(r["row"])
            except (TypeError, ValueError):
                problems.append(f"{line}: {r['video_id']}: bad row {r['row']!r}")
                continue
            vids, labels = shard_rows[sh]
            if not 0 <= row < len(vids):
                problems.append(f"{line}: {r['video_id']}: row {row} not in {sh}")
                continue
            if vids[row] != r["video_id"] or int(labels[row]) != int(r["label_idx"]):
                problems.append(
                    f"{line}: {sh} row {row} holds {vids[row]!r} (label {int(labels[row])}), "
                    f"manifest says {r['video_id']!r} (label {r['label_idx']})"
                )
            if claimed[sh][row]:
                problems.append(f"{line}: {sh} row {row} claimed twice")
            claimed[sh][row] = True
        elif str(r["shard"]) or str(r["row"]):
            problems.append(f"{line}: status {r['status']} but shard/row set")
    for name, c in claimed.items():
        if not c.all():
            problems.append(f"{name}: {int((~c).sum())} rows not in the manifest")
    if ex.num_classes is not None:
        split_classes = sorted({int(x) for x in man["label_idx"]})
        landed = {int(x) for lab in idx.labels for x in lab}
        if split_classes != list(range(ex.num_classes)):
            problems.insert(
                0,
                f"shards hold {len(split_classes)} classes (label_idx {split_classes[0]}.."
                f"{split_classes[-1]}), the run expects {ex.classes_key}={ex.num_classes}",
            )
        elif len(landed) < ex.num_classes:
            lost = sorted(set(range(ex.num_classes)) - landed)
            problems.append(f"{MANIFEST}: classes {lost[:10]} have no video that decoded")
    return problems, (idx if ref is not None or not good else None)


class ShardSet:
    """Random access to the clips of a shard folder, in split order of the landed videos.

    The folder is checked whole on construction (:func:`inspect_folder`): incomplete, damaged
    or mismatched folders raise :class:`ShardError` naming the file (and, for a mismatch, both
    values). HDF5 files are then opened lazily, once per process (the handle cache is keyed by
    PID and dropped when pickled), so a ShardSet can be handed to DataLoader workers.

    Args:
        root: the shard folder.
        frames, size, num_classes, allow_failed: expectations (None: not checked); see
            :func:`open_shards`.
        checksums: compare every shard's SHA-256 with ``shards.csv`` (reads every byte once;
            ~2 s per GB). False still compares sizes.

    Attributes:
        video_ids: list[str]; labels: np.int64 (N,); frame_indices: np.int64 (N, T);
        frames (T), size, frame_format, attrs (of the first shard).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        frames: int | None = None,
        size: int | None = None,
        num_classes: int | None = None,
        allow_failed: int | float | None = None,
        checksums: bool = True,
        expect: Expect | None = None,
    ):
        self.root = Path(root)
        ex = expect or Expect(frames, size, num_classes, allow_failed)
        problems, index = inspect_folder(self.root, ex, checksums)
        if problems or index is None or not index.attrs:
            first = problems[0] if problems else "no shard files"
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ShardError(
                f"{self.root}: {first}{more}",
                f"d2st verify {self.root} lists every problem; d2st prepare rebuilds the folder",
            )
        self.paths = index.paths
        self.attrs = index.attrs
        self.video_ids: list[str] = index.video_ids
        self.frames = int(self.attrs["frames"])
        self.size = int(self.attrs["size"])
        self.frame_format = str(self.attrs.get("frame_format", "raw"))
        self.labels = (
            np.concatenate(index.labels).astype(np.int64) if index.labels else np.zeros(0, np.int64)
        )
        self.frame_indices = (
            np.concatenate(index.frame_indices)
            if index.frame_indices
            else np.zeros((0, self.frames), np.int64)
        )
        self._starts = np.concatenate([[0], np.cumsum(index.counts)]).astype(np.int64)
        self._files: dict[int, h5py.File] = {}
        self._pid = os.getpid()
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()  # (shard, row)
        self._cache_limit = 0  # bytes of decoded clips kept (0: none); see cache_clips
        self._cache_bytes = 0

    def cache_clips(self, megabytes: float) -> None:
        """Keep up to ``megabytes`` of decoded clips in memory (least recently used dropped).

        Training draws each clip many times (an episode re-reads videos earlier episodes read);
        a cached clip is the same uint8 array the shard decodes to, so results do not change,
        only the JPEG decoding is saved. Each process (DataLoader worker) has its own cache.
        """
        self._cache_limit = int(max(0.0, megabytes) * 2**20)
        while self._cache_bytes > self._cache_limit:
            self._cache_bytes -= self._cache.popitem(last=False)[1].nbytes

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_files"] = {}
        state["_cache"], state["_cache_bytes"] = OrderedDict(), 0  # each worker fills its own
        return state

    def _file(self, s: int) -> h5py.File:
        if self._pid != os.getpid():  # forked worker: never reuse the parent's handles
            self._files, self._pid = {}, os.getpid()
        f = self._files.get(s)
        if f is None:
            f = self._files[s] = h5py.File(self.paths[s], "r")
        return f

    def locate(self, i: int) -> tuple[int, int]:
        """Global index -> (shard number, row in shard)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} clips")
        i = i % n
        s = int(np.searchsorted(self._starts, i, side="right") - 1)
        return s, int(i - self._starts[s])

    def get(self, i: int) -> np.ndarray:
        """Clip ``i`` as uint8 (T, H, W, 3)."""
        s, r = self.locate(int(i))
        data = self._file(s)["frames"][r]
        return decode_jpeg(data) if self.frame_format == "jpeg" else data

    __getitem__ = get

    def get_many(self, idx: Iterable[int]) -> np.ndarray:
        """Clips ``idx`` as uint8 (n, T, H, W, 3), in the order given (reads grouped per shard)."""
        idx = [int(i) for i in idx]
        out = np.empty((len(idx), self.frames, self.size, self.size, 3), np.uint8)
        by_shard: dict[int, list[tuple[int, int]]] = {}
        for j, i in enumerate(idx):
            s, r = self.locate(i)
            hit = self._cache.get((s, r)) if self._cache_limit else None
            if hit is not None:
                self._cache.move_to_end((s, r))
                out[j] = hit
            else:
                by_shard.setdefault(s, []).append((r, j))
        for s, pairs in by_shard.items():
            rows = sorted({r for r, _ in pairs})
            data = self._file(s)["frames"][rows]  # h5py needs increasing indices
            pos = {r: q for q, r in enumerate(rows)}
            for r, j in pairs:
                out[j] = decode_jpeg(data[pos[r]]) if self.frame_format == "jpeg" else data[pos[r]]
                if self._cache_limit:
                    self._remember((s, r), out[j])
        return out

    def _remember(self, key: tuple[int, int], clip: np.ndarray) -> None:
        if key in self._cache or clip.nbytes > self._cache_limit:
            return
        self._cache[key] = clip.copy()
        self._cache_bytes += clip.nbytes
        while self._cache_bytes > self._cache_limit:
            self._cache_bytes -= self._cache.popitem(last=False)[1].nbytes

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}


def open_shards(
    root: str | Path,
    *,
    frames: int,
    size: int | None = None,
    num_classes: int | None = None,
    allow_failed: int | float = 0,
    checksums: bool = True,
    frames_key: str = "model.frames",
    size_key: str = "data.size",
    classes_key: str = "num_classes",
) -> ShardSet:
    """The shard folder a run trains or evaluates on, checked against the run's spec.

    Args:
        root: the shard folder (``data.train_shards`` / ``data.test_shards``).
        frames: T the run's model expects; the shards must hold exactly T frames per video.
        size: stored frame side the run expects (None: any).
        num_classes: classes the split must have, ``label_idx`` 0..C-1, each with a landed
            video (None: not checked).
        allow_failed: failed rows tolerated (count, or fraction of the split when < 1).
        checksums: SHA-256 of every shard against ``shards.csv`` before the first read.
        frames_key, size_key, classes_key: config keys named in a mismatch message, e.g.
            ``data/x: shards hold 8 frames per video, the run expects model.frames=4``.

    Raises:
        ShardError: one line naming the folder, the file and, for a mismatch, both values.
    """
    ex = Expect(frames, size, num_classes, allow_failed, frames_key, size_key, classes_key)
    return ShardSet(root, expect=ex, checksums=checksums)


def count_classes(root: str | Path | None) -> int:
    """Classes of a train shard folder (largest landed label index + 1): ``metric.aux_classes``.

    The folder is checked as :class:`ShardSet` checks it, but for its SHA-256s (the run that
    trains on it compares those).
    """
    if root is None:
        raise ShardError("data.train_shards: no shard folder given")
    return int(np.asarray(ShardSet(root, checksums=False).labels).max()) + 1


def ClipDataset(root: str | Path, transform=None):  # noqa: N802 (a class factory, reads as a class)
    """torch Dataset over a shard folder: item -> (uint8 tensor (T,H,W,3), label_idx, index).

    ``transform`` (optional) is applied to the uint8 tensor.
    """
    return _clip_dataset_cls()(root, transform)


_CLS = None


def _clip_dataset_cls():
    global _CLS
    if _CLS is None:
        import torch
        from torch.utils.data import Dataset

        class _ClipDataset(Dataset):
            def __init__(self, root, transform=None):
                self.shards = ShardSet(root)
                self.transform = transform
                self.labels = self.shards.labels
                self.video_ids = self.shards.video_ids

            def __len__(self):
                return len(self.shards)

            def __getitem__(self, i):
                x = torch.from_numpy(np.ascontiguousarray(self.shards.get(i)))  # (T,H,W,3) uint8
                if self.transform is not None:
                    x = self.transform(x)
                return x, int(self.labels[i]), int(i)

        _ClipDataset.__name__ = _ClipDataset.__qualname__ = "ClipDataset"
        _CLS = _ClipDataset
    return _CLS
