"""The ``d2st`` command line: one sub-command per pipeline stage.

Each sub-command lives in ``d2st.commands.<module>`` and defines two functions:
``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported lazily, so
``d2st --help`` stays fast and a stage's heavy imports (torch, h5py) load only when used.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module under d2st.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "splits": (
        "splits",
        "turn upstream few-shot split lists into splits/{dataset}/{partition}.csv",
    ),
    "prepare": ("prepare", "decode videos of a split into 8-frame HDF5 shards + manifest.csv"),
    "verify": ("verify", "check HDF5 shards against their manifest"),
    "synth": ("synth", "generate the synthetic motion benchmark (videos + split CSVs)"),
    "pretrain": ("pretrain", "pretrain a small image backbone on single synthetic frames"),
    "model-info": ("model_info", "print parameter counts and aDSTA grids of a model as JSON"),
    "train": ("train", "episodic few-shot training from a YAML config"),
    "evaluate": ("evaluate", "evaluate a trained run on test episodes, write eval.csv"),
    "tables": ("tables", "aggregate eval.csv files into the paper's tables"),
    "bench": ("bench", "run a benchmark and write results/bench/*.csv"),
    "visualize": ("visualize", "draw aDSTA's shifted reference points and attention (Fig. 5)"),
    "casestudy": ("casestudy", "classes where one run gains/loses most vs another (Fig. 3)"),
}


def build_parser() -> argparse.ArgumentParser:
    from d2st import __version__

    parser = argparse.ArgumentParser(prog="d2st", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"d2st {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help / version / error and exits
        parser.print_help()
        return 2
    name = argv[0]
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(f"d2st.commands.{module_name}")
    sub = argparse.ArgumentParser(prog=f"d2st {name}", description=help_)
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    return int(module.main(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
