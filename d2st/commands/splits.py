"""``d2st splits --dataset DS|all --protocol d2st|trx [--source-dir DIR] [--cache-dir DIR] --out splits``.

Writes ``OUT/{dataset}/{partition}.csv`` (``video_id,label,label_idx,relpath``) from the upstream
few-shot split lists, fetched by URL (pinned commit) or read from ``--source-dir`` (a folder laid
out like the shared ``splits/``), each verified by sha256. See splits/README.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    from d2st.data.splits import DATASETS, PROTOCOLS

    p.add_argument("--dataset", required=True, choices=[*DATASETS, "all"])
    p.add_argument(
        "--protocol",
        default="d2st",
        choices=PROTOCOLS,
        help="d2st: the paper's own lists (default); trx: trx/CMN/ARN/OTAM lists",
    )
    p.add_argument(
        "--source-dir",
        type=Path,
        default=None,
        help="local folder with the upstream lists (CHECKSUMS.tsv local_copy layout); "
        "default: download from raw.githubusercontent.com at the pinned commit",
    )
    p.add_argument(
        "--cache-dir", type=Path, default=None, help="download cache (default ~/.cache/d2st/splits)"
    )
    p.add_argument(
        "--ext",
        default=None,
        help="extension for lists without one (default: .webm SSv2, .mp4 Kinetics, .avi HMDB/UCF)",
    )
    p.add_argument("--out", type=Path, default=Path("splits"), help="output folder")


def main(args: argparse.Namespace) -> int:
    from d2st.data.splits import DATASETS, write_splits

    datasets = DATASETS if args.dataset == "all" else (args.dataset,)
    for ds in datasets:
        paths = write_splits(ds, args.out, args.protocol, args.source_dir, args.cache_dir, args.ext)
        print(f"[splits] {args.protocol}/{ds}: " + ", ".join(str(p) for p in paths))
    return 0
