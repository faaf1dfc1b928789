"""``d2st train --config FILE [key=value ...]``: episodic training (resumes an interrupted run).

``--evaluate EVAL_CSV`` then scores the finished run in the same process, exactly as ``d2st
evaluate --run RUN_DIR --out EVAL_CSV`` would (``--split``, ``--pairs``, ``--eval key=value``
as there): the workflow's job per run, which saves a second interpreter and torch import.

Multi-GPU: ``torchrun --nproc_per_node N -m d2st.cli train --config FILE``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from d2st.catalog import CLIP_CACHE_MB


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="run config YAML (docs/CONTRACTS.md); omitted: defaults")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="e.g. train.lr=1e-3 preset=hmdb51/resnet50",
    )
    p.add_argument(
        "--max-episodes", type=int, default=None, help="stop (resumably) after this many episodes"
    )
    p.add_argument(
        "--cache-mb",
        type=float,
        default=CLIP_CACHE_MB,
        help="decoded clips kept in memory per process (speed only; results do not depend on it)",
    )
    p.add_argument(
        "--reuse-from",
        action="append",
        metavar="RUN_DIR",
        help="a finished run (repeatable): one whose config equals this one but for run.name "
        "is adopted (its weights copied) instead of training",
    )

    p.add_argument(
        "--evaluate",
        type=Path,
        metavar="EVAL_CSV",
        help="then evaluate the run into this eval.csv in the same process (= d2st evaluate "
        "--run RUN_DIR --out EVAL_CSV)",
    )
    p.add_argument("--split", type=Path, help="with --evaluate: as d2st evaluate --split")
    p.add_argument("--pairs", type=Path, help="with --evaluate: as d2st evaluate --pairs")
    p.add_argument(
        "--eval",
        action="append",
        dest="eval_overrides",
        metavar="key=value",
        help="with --evaluate: an eval.* or data.test_shards override (repeatable)",
    )


def main(args: argparse.Namespace) -> int:
    from d2st.train import main as train_main

    if (args.split or args.pairs or args.eval_overrides) and args.evaluate is None:
        from d2st.errors import UserError

        raise UserError("--split, --pairs and --eval apply to --evaluate EVAL_CSV, not given")
    out = train_main(
        args.config,
        list(args.overrides),
        max_episodes=args.max_episodes,
        cache_mb=args.cache_mb,
        reuse_from=args.reuse_from or (),
    )
    print(out)
    if args.evaluate is not None and int(os.environ.get("RANK", "0")) == 0:
        from d2st.evaluate import evaluate

        table = evaluate(
            out,
            args.evaluate,
            overrides=list(args.eval_overrides or ()),
            pairs=args.pairs,
            split=args.split,
        )
        print(
            table[["protocol", "way", "shot", "episodes", "accuracy", "ci95"]].to_string(
                index=False
            )
        )
    return 0
