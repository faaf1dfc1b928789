"""``d2st evaluate --run RUN_DIR [--pairs pairs.csv] [--split CSV] --out eval.csv [eval.key=value ...]``.

Every evaluation setting is the run spec's ``eval`` section (``RUN_DIR/config.yaml``); flags and
``eval.*=value`` overrides replace single values of it (the resolved spec lands next to --out).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--run", required=True, type=Path, help="run directory (config.yaml, model.safetensors)"
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="eval.* or data.test_shards overrides, e.g. eval.episodes=500 eval.shots=[1,5]",
    )
    p.add_argument("--shards", type=Path, help="test shard folder (= data.test_shards=DIR)")
    p.add_argument("--shots", type=int, nargs="+", help="shots to test (= eval.shots=[...])")
    p.add_argument("--episodes", type=int, help="test episodes (= eval.episodes=N)")
    p.add_argument("--seed", type=int, help="episode-list seed (= eval.seed=S)")
    p.add_argument(
        "--pairs", type=Path, default=None, help="pairs.csv: add protocol=reversed_pairs rows"
    )
    p.add_argument(
        "--split", type=Path, default=None, help="split CSV mapping class names to label_idx"
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="recompute features in every episode (= eval.cache_features=false)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i]")
    p.add_argument("--out", type=Path, default=Path("eval.csv"), help="eval.csv to write")


def overrides_of(args: argparse.Namespace) -> list[str]:
    """The flags given, as ``key=value`` overrides (flags left out keep the run spec's value)."""
    out = []
    if args.shards is not None:
        out.append(f"data.test_shards={args.shards}")
    if args.shots is not None:
        out.append(f"eval.shots=[{','.join(map(str, args.shots))}]")
    if args.episodes is not None:
        out.append(f"eval.episodes={args.episodes}")
    if args.seed is not None:
        out.append(f"eval.seed={args.seed}")
    if args.no_cache:
        out.append("eval.cache_features=false")
    return out + list(args.overrides)


def main(args: argparse.Namespace) -> int:
    from d2st.evaluate import evaluate

    table = evaluate(
        args.run,
        args.out,
        overrides=overrides_of(args),
        pairs=args.pairs,
        split=args.split,
        device=args.device,
    )
    print(table[["protocol", "way", "shot", "episodes", "accuracy", "ci95"]].to_string(index=False))
    return 0
