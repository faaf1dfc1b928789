"""``d2st verify DIR [--deep]``: check HDF5 shards against their manifest; nonzero exit on problems."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", type=Path, help="shard folder (with manifest.csv and shard-*.h5)")
    p.add_argument(
        "--deep",
        action="store_true",
        help="also read every stored clip, compare its CRC-32 and decode it",
    )


def main(args: argparse.Namespace) -> int:
    from d2st.data.shards import verify

    problems = verify(args.root, deep=args.deep)
    for p in problems:
        print(f"{args.root}: {p}")
    if problems:
        print(f"[verify] {args.root}: {len(problems)} problem(s); d2st prepare rebuilds the folder")
        return 1
    print(f"[verify] {args.root}: ok")
    return 0
