"""``d2st train --config FILE [key=value ...]``: episodic training (resumes an interrupted run).

Multi-GPU: ``torchrun --nproc_per_node N -m d2st.cli train --config FILE``.
"""

from __future__ import annotations

import argparse

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


def main(args: argparse.Namespace) -> int:
    from d2st.train import main as train_main

    out = train_main(
        args.config,
        list(args.overrides),
        max_episodes=args.max_episodes,
        cache_mb=args.cache_mb,
        reuse_from=args.reuse_from or (),
    )
    print(out)
    return 0
