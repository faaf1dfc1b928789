"""``d2st pretrain --shards TRAIN_SHARDS --geometry geometry.csv --backbone resnet_tiny --out F``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--shards", type=Path, required=True, help="train-partition shard folder")
    p.add_argument("--geometry", type=Path, required=True, help="geometry.csv from d2st synth")
    p.add_argument("--backbone", default="resnet_tiny", help="trunk name (resnet_tiny, ...)")
    p.add_argument("--out", type=Path, required=True, help="output .safetensors (trunk weights)")
    p.add_argument("--epochs", type=int, default=8, help="passes over the frames")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (one-cycle AdamW)")
    p.add_argument("--batch-size", type=int, default=128, help="frames per step")
    p.add_argument("--holdout", type=float, default=0.1, help="fraction of videos held out")
    p.add_argument("--seed", type=int, default=0, help="seed (split, init, batch order)")
    p.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (fixed: results depend on it)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from d2st.build import fix_threads
    from d2st.pretrain import pretrain

    fix_threads(args.threads)
    report = pretrain(
        args.shards,
        args.geometry,
        args.out,
        backbone=args.backbone,
        epochs=args.epochs,
        lr=args.lr,
        batch_size=args.batch_size,
        holdout=args.holdout,
        seed=args.seed,
        progress=not args.no_progress,
    )
    print(json.dumps({"out": str(args.out), **report}, indent=2))
    return 0
