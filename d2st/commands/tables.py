"""``d2st tables --config CFG [--table T ...] [--evals DIR] [--reported DIR] --out DIR``.

Builds ``{out}/{table}.csv`` (+ ``.md`` and ``.png``) for the tables of a workflow config
(``workflow/config/paper.yaml`` / ``default.yaml``) from the ``{evals}/{run}/eval.csv`` files
that exist: what the Snakemake ``table`` rule does, for use without Snakemake. Runs not evaluated
yet give empty ``reproduced`` cells and are listed on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", type=Path, required=True, help="workflow config with a `tables:` section"
    )
    p.add_argument("--table", nargs="+", default=None, help="tables to build (default: all)")
    p.add_argument(
        "--evals", type=Path, default=Path("results/evals"), help="folder of {run}/eval.csv"
    )
    p.add_argument(
        "--reported", type=Path, default=Path("results/reported"), help="the paper's CSVs"
    )
    p.add_argument(
        "--runs", type=Path, default=Path("results/runs"), help="run folders (for `done`)"
    )
    p.add_argument("--out", type=Path, default=Path("results/tables"), help="output folder")
    p.add_argument("--no-plot", action="store_true", help="skip the .png plots")


def main(args: argparse.Namespace) -> int:
    import pandas as pd
    import yaml

    from d2st.plan import MatrixError, expand_matrix
    from d2st.plots import plot_table
    from d2st.tables import build_table, to_markdown, trained_episodes

    config = yaml.safe_load(args.config.read_text())
    tables = config.get("tables", {})
    wanted = args.table or list(tables)
    unknown = [t for t in wanted if t not in tables]
    if unknown:
        print(
            f"d2st tables: unknown table(s) {unknown}; the config has {list(tables)}",
            file=sys.stderr,
        )
        return 2
    try:
        matrix = expand_matrix(config, only=wanted)
    except MatrixError as e:
        print(f"d2st tables: {args.config}: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for t in wanted:
        spec = tables[t]
        runs = list(dict.fromkeys(r.run for r in matrix.tables[t]))
        found = [
            args.evals / r / "eval.csv" for r in runs if (args.evals / r / "eval.csv").is_file()
        ]
        missing = [r for r in runs if not (args.evals / r / "eval.csv").is_file()]
        evals = (
            pd.concat([pd.read_csv(f) for f in found], ignore_index=True)
            if found
            else pd.DataFrame()
        )
        reported = pd.read_csv(args.reported / spec["reported"]) if spec.get("reported") else None
        kind = spec.get("kind", "paper")
        episodes = trained_episodes({r: args.runs / r for r in runs})
        df = build_table(matrix.tables[t], evals, reported, kind=kind, train_episodes=episodes)
        title = spec.get("title", t)
        df.to_csv(args.out / f"{t}.csv", index=False)
        (args.out / f"{t}.md").write_text(to_markdown(df, title=title))
        if not args.no_plot:
            plot_table(df, kind, args.out / f"{t}.png", title=title)
        note = f"; not evaluated yet: {len(missing)} run(s)" if missing else ""
        print(f"[tables] {args.out / (t + '.csv')}: {len(df)} rows{note}")
        for r in missing:
            print(f"    missing {args.evals / r / 'eval.csv'}", file=sys.stderr)
    return 0
