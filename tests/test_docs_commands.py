"""Every command the documentation shows works as written.

Commands are read from the shell code blocks of README.md and docs/*.md, from inline code spans
that start with `d2st ` or `snakemake `, and from the `#   snakemake ...` comment lines of the
configs and Snakefiles. Then:

* `d2st ...`: the sub-command exists and its arguments parse (argparse, nothing runs); a usage
  synopsis (`[--quick]`, `{a,b}`, `...`) or a bare mention (`d2st prepare`) only names the
  sub-command;
* `snakemake ...`: dry-run (`-n`) as written, in a temporary directory that sees the repository's
  `workflow/`, `.test/`, `Snakefile` and `profiles` (so relative paths mean what they mean in a
  clone); a `--report` command is dry-run without `--report` (a report needs built outputs);
  a config the user is told to copy (`my_paper.yaml`) is a copy of workflow/config/paper.yaml;
* `make X`: X is a target of the Makefile; `bash FILE` / paths under workflow/, tests/, .test/:
  the file exists.
Every `d2st` sub-command's `--help` shows the defaults of its options.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from d2st.cli import COMMANDS, HelpFormatter

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMENTED = [
    REPO / "Snakefile",
    REPO / "workflow" / "Snakefile",
    *sorted((REPO / "workflow" / "config").glob("*.yaml")),
]
PROGRAMS = ("snakemake", "d2st", "make", "bash", ".venv/bin/pytest", "pip", "conda")
REPO_PATH_PREFIXES = ("workflow/", "tests/", ".test/", "requirements/", "docs/", "config/")
LINKED = ("workflow", ".test", "Snakefile", "profiles")  # what a dry-run's folder sees


def _strip_comment(line: str) -> str:
    return re.split(r"\s+#", line, maxsplit=1)[0].strip()


def documented_commands() -> list[tuple[str, str]]:
    """(where, command) for every shell command shown in the docs and config comments."""
    found: list[tuple[str, str]] = []
    for path in DOCS:
        rel = path.relative_to(REPO)
        in_block, shell_block, pending = False, False, ""
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pending:  # a command continued with a trailing backslash
                line, pending = pending + " " + line.strip(), ""
            fence = re.match(r"^\s*```(\w*)", line)
            if fence:
                in_block = not in_block
                shell_block = in_block and fence.group(1) in ("", "bash", "sh", "shell", "console")
                continue
            if in_block:
                if shell_block:
                    if line.rstrip().endswith("\\"):
                        pending = line.rstrip()[:-1].rstrip()
                        continue
                    cmd = _strip_comment(line)
                    if cmd.split(" ", 1)[0] in PROGRAMS:
                        found.append((f"{rel}:{n}", cmd))
                continue
            for span in re.findall(r"`([^`]+)`", line):
                if re.match(r"^(d2st|snakemake) ", span) and "<" not in span:
                    found.append((f"{rel}:{n}", span.strip()))
    for path in COMMENTED:
        rel = path.relative_to(REPO)
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = re.match(r"^#\s+((snakemake|d2st) .*)$", line)
            if m:
                found.append((f"{rel}:{n}", _strip_comment(m.group(1))))
    seen, unique = set(), []
    for where, cmd in found:
        key = re.sub(r"\s(--cores|-c|--jobs|-j)\s\S+", "", cmd)  # same plan whatever the cores
        if key not in seen:
            seen.add(key)
            unique.append((where, cmd))
    return unique


COMMANDS_SHOWN = documented_commands()


def _by_program(program: str) -> list:
    return [
        pytest.param(cmd, id=f"{where}: {cmd}")
        for where, cmd in COMMANDS_SHOWN
        if cmd.split(" ", 1)[0] == program
    ]


def test_the_docs_show_commands():
    """The extraction finds what the docs obviously contain (guards the parser above)."""
    programs = {cmd.split(" ", 1)[0] for _, cmd in COMMANDS_SHOWN}
    assert {"snakemake", "d2st", "make"} <= programs, programs
    slurm = [c for _, c in COMMANDS_SHOWN if "--profile workflow/profiles/slurm" in c]
    assert slurm, "README/docs show no SLURM command"


def _subparser(name: str) -> argparse.ArgumentParser:
    module = importlib.import_module(f"d2st.commands.{COMMANDS[name][0]}")
    parser = argparse.ArgumentParser(prog=f"d2st {name}", formatter_class=HelpFormatter)
    module.add_arguments(parser)
    return parser


@pytest.mark.parametrize("cmd", _by_program("d2st"))
def test_d2st_command_parses(cmd):
    argv = shlex.split(cmd)[1:]
    while argv and argv[0] == "--debug":  # the one global flag (d2st/cli.py)
        argv = argv[1:]
    if argv[0] in ("--help", "-h", "--version"):
        return
    assert argv[0] in COMMANDS, f"`{cmd}`: no sub-command {argv[0]!r} (d2st/cli.py COMMANDS)"
    if len(argv) == 1 or re.search(r"\.\.\.|\[|\{|\|", cmd):
        return  # a mention or a usage synopsis: the sub-command exists, nothing to parse
    try:
        _subparser(argv[0]).parse_args(argv[1:])
    except SystemExit as e:
        assert e.code == 0, f"`{cmd}` does not parse (argparse exit {e.code})"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_shows_defaults(name):
    parser = _subparser(name)
    text = parser.format_help().split("\noptions:\n", 1)[1]
    with_default = [
        a
        for a in parser._actions
        if a.option_strings
        and a.default is not None
        and a.default is not False
        and a.default is not argparse.SUPPRESS
    ]
    for action in with_default:
        flag = action.option_strings[-1]
        block = re.split(rf"\n  (?:-\w, )?{re.escape(flag)}\b", text, maxsplit=1)[1]
        block = block.split("\n  -", 1)[0]
        assert "default" in block, f"d2st {name} --help: {flag} does not show its default"


def _makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.M))


@pytest.mark.parametrize("cmd", _by_program("make"))
def test_make_target_exists(cmd):
    targets = [t for t in shlex.split(cmd)[1:] if not t.startswith("-") and "=" not in t]
    missing = [t for t in targets if t not in _makefile_targets()]
    assert not missing, f"`{cmd}`: no Makefile target {missing}"


@pytest.mark.parametrize("where, cmd", COMMANDS_SHOWN, ids=[f"{w}: {c}" for w, c in COMMANDS_SHOWN])
def test_repository_paths_exist(where, cmd):
    for token in shlex.split(cmd):
        value = token.split("=", 1)[1] if token.startswith("--") and "=" in token else token
        if value.startswith(REPO_PATH_PREFIXES):
            assert (REPO / value).exists(), f"{where}: `{cmd}` names {value}, which does not exist"


def _dry_run_argv(cmd: str, workdir: Path) -> list[str]:
    argv = shlex.split(cmd)
    out = [str(SNAKEMAKE)]
    it = iter(argv[1:])
    for token in it:
        if token in ("--cores", "-c", "--jobs", "-j"):
            next(it, None)
            out += [token, "1"]
        elif token == "--report":
            next(it, None)  # dry-run the rest: a report needs the outputs of a real run
        elif token.startswith("--configfile="):
            out.append("--configfile=" + _config_path(token.split("=", 1)[1], workdir))
        else:
            out.append(token)
    if not ({"-n", "--dry-run", "--dryrun"} & set(out)):
        out.append("-n")
    return out


def _config_path(value: str, workdir: Path) -> str:
    if (REPO / value).is_file():
        return value  # resolved through the links in workdir
    assert "paper" in value, f"config file {value} is neither in the repository nor a paper copy"
    shutil.copy(REPO / "workflow" / "config" / "paper.yaml", workdir / value)
    return value


@pytest.mark.parametrize("cmd", _by_program("snakemake"))
def test_snakemake_command_dry_runs(cmd, tmp_path):
    if not SNAKEMAKE.is_file():
        pytest.skip(f"snakemake is not installed next to {sys.executable}")
    for name in LINKED:
        (tmp_path / name).symlink_to(REPO / name)
    argv = _dry_run_argv(cmd, tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    res = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=180, env=env)
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"`{cmd}` (as {' '.join(argv[1:])}) failed:\n{out[-3000:]}"
    assert "Nothing to be done" not in out, f"`{cmd}`: an empty folder should need jobs"
