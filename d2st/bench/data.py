"""Data-stage benchmark: decoder, loader and storage, each measured side by side in one run.

Rows of ``data.csv`` (plus :func:`d2st.bench.common.machine_info` columns):

* ``decode``: videos/s of :func:`d2st.data.video.decode_frames` (select T frames and resize inside
  ffmpeg) vs the naive baseline (every frame at full resolution through a pipe into numpy, then
  pick the same T and resize with torch bilinear). ``ratio`` = speed-up over the baseline.
* ``prepare``: videos/s of the whole shard builder (decode + store) for raw and JPEG storage.
* ``load``: clips/s of random access from shards (raw, JPEG) vs decoding the source video on
  the fly for every clip (what peers' loaders do). ``ratio`` = speed-up over on-the-fly.
* ``bytes``: bytes per stored video (raw vs JPEG-in-HDF5; source files for reference), and the
  JPEG round-trip PSNR in dB. ``ratio`` = raw bytes / this variant's bytes.

Videos: the real test videos of the shared folder (``D2ST_SHARED`` or ``../shared``), repeated for
a stable number; without it, a few ffmpeg ``testsrc`` clips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from d2st.bench.common import machine_info, say, timer

T, SIZE = 8, 256


def _shared_roots() -> list[Path]:
    env = os.environ.get("D2ST_SHARED")
    roots = [Path(env)] if env else []
    roots.append(Path(__file__).resolve().parents[2].parent / "shared")
    return roots


def _shared_videos() -> list[Path]:
    for r in _shared_roots():
        d = r / "realdata" / "videos"
        if d.is_dir():
            return sorted(p for p in d.iterdir() if p.suffix in (".mp4", ".webm", ".avi", ".mov"))
    return []


def _testsrc_videos(folder: Path, n: int = 4) -> list[Path]:
    out = []
    for i in range(n):
        p = folder / f"testsrc{i}.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-nostdin",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"testsrc=duration={2 + i}:size=320x240:rate=25",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-pix_fmt",
                "yuv420p",
                str(p),
            ],
            check=True,
        )
        out.append(p)
    return out


def naive_decode(path: str | Path, T: int = T, size: int = SIZE) -> np.ndarray:
    """Baseline: decode every frame at full resolution into numpy, pick T, resize with torch."""
    import ffmpeg
    import torch
    import torch.nn.functional as F

    from d2st.data.video import probe, sample_indices

    info = probe(path)
    raw, _ = (
        ffmpeg.input(str(path))["v:0"]
        .output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough")
        .global_args("-nostdin", "-v", "error")
        .run(capture_stdout=True, capture_stderr=True)
    )
    w, h = info.width, info.height
    if abs(info.rotation) in (90, 270):
        w, h = h, w
    frames = np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)  # (n, H, W, 3) full resolution
    idx = sample_indices(len(frames), T)
    x = torch.from_numpy(frames[idx].copy()).permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()  # (T, size, size, 3)


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("nan")


def run(out_dir: Path, quick: bool = False) -> Path:
    """Measure and write ``out_dir/data.csv``; returns its path."""
    from d2st.data.shards import ShardSet, decode_jpeg, prepare, shard_files
    from d2st.data.video import decode_clip, decode_frames

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="d2st-bench-data-"))
    rows: list[dict] = []

    def add(measure, variant, value, unit, ratio, n, note=""):
        rows.append(
            dict(
                measure=measure,
                variant=variant,
                value=round(float(value), 4),
                unit=unit,
                ratio=round(float(ratio), 3),
                n=n,
                note=note,
            )
        )

    try:
        videos = [
            p for p in _shared_videos() if decode_clip(p, 2, 16).status in ("ok", "too_short")
        ]
        source = "shared realdata videos"
        if not videos:
            where = ", ".join(str(r / "realdata" / "videos") for r in _shared_roots())
            say(
                f"no real videos in {where} (set D2ST_SHARED): measuring 4 ffmpeg testsrc clips "
                "instead; these numbers are not comparable with rows measured on real videos",
                "data",
            )
            videos, source = _testsrc_videos(work), "ffmpeg testsrc"
        say(f"{len(videos)} {source}; decode, prepare, load, bytes", "data")
        reps = 1 if quick else 5
        batch = videos * reps

        # --- decode: ours vs naive (same indices, same output size)
        decode_frames(videos[0], T, SIZE)  # warm caches
        with timer() as t_ours:
            for p in batch:
                decode_frames(p, T, SIZE)
        with timer() as t_naive:
            for p in batch:
                naive_decode(p, T, SIZE)
        ours, naive = _rate(len(batch), t_ours()), _rate(len(batch), t_naive())
        note = f"{len(videos)} {source} x{reps}, T={T}, {SIZE}px, 1 process"
        add("decode", "naive_full_decode", naive, "videos/s", 1.0, len(batch), note)
        add("decode", "ffmpeg_select_scale", ours, "videos/s", ours / naive, len(batch), note)

        # --- prepare shards (raw and JPEG) from a split repeating the videos
        n_items = len(videos) * (1 if quick else 6)
        root = work / "videos"
        root.mkdir()
        for p in videos:
            os.symlink(p, root / p.name)
        split = pd.DataFrame(
            {
                "video_id": [f"v{k:04d}" for k in range(n_items)],
                "label": ["x"] * n_items,
                "label_idx": [0] * n_items,
                "relpath": [videos[k % len(videos)].name for k in range(n_items)],
            }
        )
        sizes, rates = {}, {}
        for fmt in ("raw", "jpeg"):
            with timer() as t:
                prepare(
                    split,
                    root,
                    work / fmt,
                    frames=T,
                    size=SIZE,
                    shard_size=64,
                    fmt=fmt,
                    progress=False,
                )
            rates[fmt] = _rate(n_items, t())
            sizes[fmt] = sum(f.stat().st_size for f in shard_files(work / fmt)) / n_items
        for fmt in ("raw", "jpeg"):
            add(
                "prepare",
                f"shards_{fmt}",
                rates[fmt],
                "videos/s",
                rates[fmt] / rates["raw"],
                n_items,
                "decode + store, 1 process",
            )

        # --- load: random clips from shards vs decoding the source on the fly
        rng = np.random.default_rng(0)
        n_reads = 100 if quick else 2000
        order = rng.integers(0, n_items, n_reads)
        load = {}
        for fmt in ("raw", "jpeg"):
            ds = ShardSet(work / fmt)
            with timer() as t:
                for i in order:
                    ds.get(int(i))
            load[fmt] = _rate(n_reads, t())
            ds.close()
        n_fly = len(videos) * (1 if quick else 3)
        with timer() as t:
            for k in order[:n_fly]:
                decode_frames(root / split.at[int(k), "relpath"], T, SIZE)
        load["on_the_fly"] = _rate(n_fly, t())
        add(
            "load",
            "decode_on_the_fly",
            load["on_the_fly"],
            "clips/s",
            1.0,
            n_fly,
            "ffmpeg select+scale per clip (already faster than decord full decode)",
        )
        for fmt in ("raw", "jpeg"):
            add(
                "load",
                f"shards_{fmt}",
                load[fmt],
                "clips/s",
                load[fmt] / load["on_the_fly"],
                n_reads,
                "random access, 1 process, page cache warm",
            )

        # --- bytes per video and JPEG fidelity
        src_bytes = np.mean([os.path.getsize(videos[k % len(videos)]) for k in range(n_items)])
        add("bytes", "source_files", src_bytes, "bytes/video", sizes["raw"] / src_bytes, n_items)
        add("bytes", "shards_raw", sizes["raw"], "bytes/video", 1.0, n_items)
        add(
            "bytes",
            "shards_jpeg",
            sizes["jpeg"],
            "bytes/video",
            sizes["raw"] / sizes["jpeg"],
            n_items,
            "JPEG q90 per frame, vlen uint8 in HDF5",
        )
        raw_ds, jpg_ds = ShardSet(work / "raw"), ShardSet(work / "jpeg")
        m = min(len(raw_ds), 16)
        a = raw_ds.get_many(range(m)).astype(np.float64)
        b = jpg_ds.get_many(range(m)).astype(np.float64)
        psnr = 10 * np.log10(255.0**2 / max(np.mean((a - b) ** 2), 1e-12))
        add("bytes", "jpeg_psnr", psnr, "dB", float("nan"), m, "JPEG vs raw frames")
        with h5py_file(work / "jpeg") as blobs:
            with timer() as t:
                for _ in range(5 if quick else 20):
                    for b_ in blobs:
                        decode_jpeg(b_)
            add(
                "load",
                "jpeg_decode_only",
                _rate(len(blobs) * (5 if quick else 20), t()),
                "clips/s",
                float("nan"),
                len(blobs),
                "Pillow, 8 frames",
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    info = machine_info()
    df = pd.DataFrame([{**info, **r} for r in rows])
    path = out_dir / "data.csv"
    df.to_csv(path, index=False)
    return path


class h5py_file:  # noqa: N801 (small context manager: JPEG blobs of the first shard)
    def __init__(self, root: Path):
        import h5py

        from d2st.data.shards import shard_files

        self.f = h5py.File(shard_files(root)[0], "r")

    def __enter__(self):
        return [self.f["frames"][i] for i in range(self.f["frames"].shape[0])]

    def __exit__(self, *exc):
        self.f.close()
