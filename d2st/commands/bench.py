"""``d2st bench {data,adapter,eval,train,all} --out results/bench [--quick]`` and ``d2st bench gpu``.

``all`` runs the CPU benchmarks; ``gpu`` is the CUDA check (``make gpu-check``), which runs a tiny
CPU smoke version where there is no GPU.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from d2st.bench import BENCHMARKS, ON_DEMO_DATA

D = "(default: %(default)s)"
HELP = {
    "data": "decode, prepare, clip loading and storage (data.csv)",
    "adapter": "aDSTA forward/backward time and memory (adapter.csv)",
    "eval": "evaluation on cached features vs recomputing (eval.csv)",
    "train": "training throughput and peak RSS, fp32 vs bf16, on the CPU (train.csv)",
    "all": "every CPU benchmark above",
    "loop": "the demo's job start-up and episode loop, clip cache off vs on (loop.csv; after "
    "make demo)",
}


def _plans_epilog() -> str:
    from d2st.bench.gpu import PLANS

    lines = ["plans (sizes per device; --plan overrides):"]
    for name, p in PLANS.items():
        lines.append(
            f"  {name}: {', '.join(p.backbones)} at {p.frames}x{p.size}^2, warm-up {p.warmup}, "
            f"median of {p.repeats} x {p.steps} episodes, loader workers {list(p.workers)}, "
            f"compile {'on' if p.compile else 'off'}"
        )
    lines.append("CSV schema: docs/BENCHMARKS.md, section 'GPU check'.")
    return "\n".join(lines)


def add_gpu_arguments(p: argparse.ArgumentParser) -> None:
    from d2st.bench.gpu import PLANS, SECTIONS

    p.add_argument("--out", type=Path, default=Path("results/bench"), help=f"output folder {D}")
    p.add_argument("--device", default="auto", help=f"auto (CUDA if present), cuda:N or cpu {D}")
    p.add_argument(
        "--plan",
        choices=list(PLANS),
        default=None,
        help="sizes (default: full on CUDA, else smoke)",
    )
    p.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of the sections to run {D}",
    )
    p.add_argument("--workers", type=int, default=None, help="loader workers (default: the plan's)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default: the plan's)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (default: the plan's)")
    p.add_argument("--steps", type=int, default=None, help="steps per repeat (default: the plan's)")
    p.add_argument(
        "--time-budget",
        type=float,
        default=360.0,
        help=f"seconds after which the remaining measurements are recorded as skipped {D}",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="which", metavar="BENCH", required=True)
    for name in (*BENCHMARKS, "all", *ON_DEMO_DATA):
        s = sub.add_parser(
            name, help=HELP.get(name, name), formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
        s.add_argument("--out", type=Path, default=Path("results/bench"), help="output folder")
        s.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    g = sub.add_parser(
        "gpu",
        help="CUDA check: correctness, train memory/speed, data path, compile (gpu.csv)",
        description="GPU check: writes OUT/gpu.csv (on a machine without CUDA: the CPU smoke).",
        epilog=_plans_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_gpu_arguments(g)


def main(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    if args.which == "gpu":
        from d2st.bench import gpu

        path = gpu.run(
            args.out,
            device=args.device,
            plan=args.plan,
            sections=tuple(s for s in args.sections.split(",") if s),
            workers=args.workers,
            warmup=args.warmup,
            repeats=args.repeats,
            steps=args.steps,
            time_budget=args.time_budget,
        )
        print(f"[bench] gpu: {path}")
        return 0
    names = BENCHMARKS if args.which == "all" else (args.which,)
    for name in names:
        module = importlib.import_module(f"d2st.bench.{name}")
        path = module.run(args.out, quick=args.quick)
        print(f"[bench] {name}: {path}")
    return 0
