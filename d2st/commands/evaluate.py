"""``d2st evaluate --run RUN_DIR --shards TEST_SHARDS [--shots 1 5] [--episodes N] [--seed S]
[--pairs pairs.csv] [--split CSV] [--no-cache] --out eval.csv``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--run", required=True, type=Path, help="run directory (config.yaml, model.safetensors)"
    )
    p.add_argument(
        "--shards", type=Path, default=None, help="test shard folder (default: data.test_shards)"
    )
    p.add_argument(
        "--shots", type=int, nargs="+", default=None, help="shots to test (default: eval.shots)"
    )
    p.add_argument(
        "--episodes", type=int, default=None, help="test episodes (default: eval.episodes)"
    )
    p.add_argument("--seed", type=int, default=None, help="episode-list seed (default: eval.seed)")
    p.add_argument(
        "--pairs", type=Path, default=None, help="pairs.csv: add protocol=reversed_pairs rows"
    )
    p.add_argument(
        "--split", type=Path, default=None, help="split CSV mapping class names to label_idx"
    )
    p.add_argument("--no-cache", action="store_true", help="recompute features in every episode")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("eval.csv"))


def main(args: argparse.Namespace) -> int:
    from d2st.evaluate import evaluate

    table = evaluate(args.run, args.shards, args.out, shots=args.shots, episodes=args.episodes,
                     seed=args.seed, pairs=args.pairs, split=args.split,
                     cache=False if args.no_cache else None, device=args.device)  # fmt: skip
    print(table[["protocol", "way", "shot", "episodes", "accuracy", "ci95"]].to_string(index=False))
    return 0
