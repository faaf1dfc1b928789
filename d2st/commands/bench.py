"""``d2st bench {data,adapter,eval,train,all} --out results/bench [--quick]``."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from d2st.bench import BENCHMARKS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("which", choices=[*BENCHMARKS, "all"], help="benchmark to run")
    p.add_argument("--out", type=Path, default=Path("results/bench"), help="output folder")
    p.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")


def main(args: argparse.Namespace) -> int:
    names = BENCHMARKS if args.which == "all" else (args.which,)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        module = importlib.import_module(f"d2st.bench.{name}")
        path = module.run(args.out, quick=args.quick)
        print(f"[bench] {name}: {path}")
    return 0
