"""The ``d2st`` command line: one sub-command per pipeline stage.

Each sub-command lives in ``d2st.commands.<module>`` and defines two functions:
``add_arguments(parser)`` and ``main(args) -> int``. Modules are imported lazily, so
``d2st --help`` stays fast and a stage's heavy imports (torch, h5py) load only when used.

Errors: a command that fails prints one line ``d2st <command>: error: <what>`` naming the file,
line or key (and a ``hint:`` line where there is advice) and exits 1; ``d2st --debug <command>``
(or ``D2ST_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import argparse
import copy
import errno
import importlib
import os
import sys
from pathlib import Path

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
    "resolve": ("resolve", "resolve one run's settings into its frozen spec (config.yaml)"),
    "train": ("train", "episodic few-shot training from a YAML config"),
    "evaluate": ("evaluate", "evaluate a trained run on test episodes, write eval.csv"),
    "tables": ("tables", "aggregate eval.csv files into the paper's tables"),
    "bench": ("bench", "run a benchmark and write results/bench/*.csv"),
    "visualize": ("visualize", "draw aDSTA's shifted reference points and attention (Fig. 5)"),
    "casestudy": ("casestudy", "classes where one run gains/loses most vs another (Fig. 3)"),
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """``--help`` of every command: each option's default (unless its help already names one)."""

    @staticmethod
    def _shows_default(action: argparse.Action) -> bool:
        return bool(action.option_strings) and not any(
            action.default is v for v in (None, False, argparse.SUPPRESS)
        )

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and self._shows_default(action):  # no help text: the default alone
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str:
        help_ = action.help or ""
        if "default" in help_ or not self._shows_default(action):
            return help_
        return f"{help_} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    from d2st import __version__

    parser = argparse.ArgumentParser(
        prog="d2st", description=__doc__.splitlines()[0], formatter_class=HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"d2st {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the Python traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser


def _yaml_files(args: argparse.Namespace) -> list[str]:
    """YAML file arguments of a command (to name the file in a YAML syntax error)."""
    out = []
    for v in vars(args).values():
        for x in v if isinstance(v, list) else [v]:
            if isinstance(x, (str, Path)) and str(x).endswith((".yaml", ".yml")):
                out.append(str(x))
    return out


def describe_error(e: BaseException, args: argparse.Namespace | None = None) -> list[str]:
    """One or two lines for an exception escaping a command: what (file/line/key), then a hint."""
    import yaml

    from d2st.config import ConfigError
    from d2st.errors import UserError
    from d2st.io import disk_full_error, is_no_space

    if isinstance(e, UserError):
        return [e.message] + ([f"hint: {e.hint}"] if e.hint else [])
    if isinstance(e, ConfigError):
        return [f"config: {e}", "hint: docs/CONTRACTS.md lists every key and its values"]
    if isinstance(e, yaml.YAMLError):
        mark = getattr(e, "problem_mark", None)
        name = getattr(mark, "name", "") or ""
        if name.startswith("<"):
            name = ", ".join(_yaml_files(args)) if args is not None else ""
        where = f"{name or 'YAML'}" + (f":{mark.line + 1}:{mark.column + 1}" if mark else "")
        what = " ".join(str(getattr(e, "problem", "") or e).split())
        return [f"{where}: YAML syntax error: {what}", "hint: fix the file (indentation, colons)"]
    if isinstance(e, (OSError, RuntimeError)) and is_no_space(e):
        err = disk_full_error(getattr(e, "filename", None) or "(a file being written)")
        return [err.message, f"hint: {err.hint}"]
    if isinstance(e, OSError) and e.filename:
        why = os.strerror(e.errno) if e.errno else str(e)
        if e.errno == errno.ENOENT:
            why = "not found"
        return [f"{e.filename}: {why}"]
    first = (str(e).strip().splitlines() or [""])[0][:300]
    return [f"{type(e).__name__}: {first}", "hint: run with d2st --debug for the traceback"]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("D2ST_DEBUG", "") not in ("", "0")
    while argv and argv[0] == "--debug":
        debug, argv = True, argv[1:]
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help / version / error and exits
        parser.print_help()
        return 2
    name = argv[0]
    module_name, help_ = COMMANDS[name]
    module = importlib.import_module(f"d2st.commands.{module_name}")
    sub = argparse.ArgumentParser(
        prog=f"d2st {name}", description=help_, formatter_class=HelpFormatter
    )
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    try:
        return int(module.main(args) or 0)
    except Exception as e:
        if debug:
            raise
        lines = describe_error(e, args)
        print(f"d2st {name}: error: {lines[0]}", file=sys.stderr)
        for line in lines[1:]:
            print(f"  {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
