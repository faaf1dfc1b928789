"""``d2st prepare --videos DIR [--split CSV] --out DIR --frames T --size S [--jobs N] ...``.

Decodes T uniformly sampled frames (segment centres) of every video of a split with ffmpeg,
resized to S x S, into HDF5 shards + manifest.csv (docs/CONTRACTS.md). Atomic per shard,
resumable (a rerun keeps complete shards and retries the failed rows), parallel over processes,
one writer per --out folder. Without --split, every video file under --videos is used with
label = parent folder name and video_id = its path under --videos.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    import inspect

    from d2st.data.shards import (
        DEFAULT_ATTEMPTS,
        DEFAULT_FORMAT,
        DEFAULT_JPEG_QUALITY,
        DEFAULT_SHARD_SIZE,
        FORMATS,
    )
    from d2st.data.shards import prepare as _prepare

    lib = {k: v.default for k, v in inspect.signature(_prepare).parameters.items()}  # one source
    p.add_argument(
        "--videos", type=Path, required=True, help="video root (relpaths are relative to it)"
    )
    p.add_argument(
        "--split",
        type=Path,
        default=None,
        help="split CSV (video_id,label,label_idx,relpath); default: all videos under --videos",
    )
    p.add_argument("--out", type=Path, required=True, help="shard folder, e.g. .../test/8f_256px")
    p.add_argument(
        "--frames",
        type=int,
        default=lib["frames"],
        help="frames stored per video: T, or T*F for F candidates per segment (temporal jitter)",
    )
    p.add_argument(
        "--frame-rule",
        default=lib["frame_rule"],
        choices=["uniform", "kinetics100"],
        help="frame indices: segment centres, or the authors' Kinetics-100 rule",
    )
    p.add_argument(
        "--size", type=int, default=lib["size"], help="output side in pixels (aspect ignored)"
    )
    p.add_argument("--jobs", type=int, default=lib["jobs"], help="decoding processes")
    p.add_argument(
        "--shard-size",
        type=int,
        default=DEFAULT_SHARD_SIZE,
        help="split rows per shard (row k goes to shard k // shard-size)",
    )
    p.add_argument(
        "--on-error",
        choices=("skip", "fail"),
        default=lib["on_error"],
        help="skip: record bad videos in the manifest and go on; fail: stop at the first",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=DEFAULT_FORMAT,
        dest="fmt",
        help="frame storage in HDF5 (jpeg: per-frame JPEG; raw: uint8 arrays)",
    )
    p.add_argument("--jpeg-quality", type=int, default=DEFAULT_JPEG_QUALITY)
    p.add_argument(
        "--strict",
        action="store_true",
        help="videos whose decoder logs errors are 'corrupt' even if all frames decoded",
    )
    p.add_argument(
        "--attempts",
        type=int,
        default=DEFAULT_ATTEMPTS,
        help="tries for an unreadable / corrupt video before it counts as bad",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from d2st.data.shards import prepare

    s = prepare(
        args.split,
        args.videos,
        args.out,
        frames=args.frames,
        size=args.size,
        jobs=args.jobs,
        shard_size=args.shard_size,
        on_error=args.on_error,
        fmt=args.fmt,
        jpeg_quality=args.jpeg_quality,
        strict=args.strict,
        progress=not args.no_progress,
        attempts=args.attempts,
        frame_rule=args.frame_rule,
    )
    for note in s.notes:
        print(f"[prepare] note: {note}")
    print(f"[prepare] {args.out}: {s.line()}")
    return 0
