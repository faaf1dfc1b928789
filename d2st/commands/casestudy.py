"""``d2st casestudy --evals A B [C ...] --out PREFIX [--shot S] [--k 4] [--labels ...]``.

Figure 3 of the paper: the classes where the first run gains most and loses most against the
others, from ``per_class.csv`` of runs scored on the same test episodes; writes PREFIX.csv and
PREFIX.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--evals", nargs="+", required=True, type=Path,
        help="per_class.csv files or eval folders; the first is the method studied",
    )  # fmt: skip
    p.add_argument("--out", required=True, type=Path, help="output prefix (.csv and .png)")
    p.add_argument("--shot", type=int, default=None, help="shot (default: smallest common)")
    p.add_argument("--k", type=int, default=4, help="classes per group (paper: 4)")
    p.add_argument("--labels", nargs="+", default=None, help="display names, one per run")
    p.add_argument("--title", default=None)


def main(args: argparse.Namespace) -> int:
    from d2st.casestudy import run_case_study

    study = run_case_study(args.evals, args.out, args.k, args.shot, args.labels, args.title)
    print(study.to_string(index=False))
    return 0
