"""Build one result table (rule table): CSV + markdown + plot + rendered HTML from eval.csv files."""

import json
import sys
from pathlib import Path

import pandas as pd

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive


def run_lr(runs_dir, run):
    """The lr a run trained with (its resolved spec), blank for untrained or mean rows."""
    from d2st.config import load_config

    if not run:
        return ""
    spec = load_config(Path(runs_dir) / run / "config.yaml")
    return spec.train.lr if spec.train.episodes > 0 else ""


with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    from d2st.plan import expand_matrix
    from d2st.plots import plot_table
    from d2st.report import table_html
    from d2st.tables import build_table, to_markdown, trained_episodes

    p = snakemake.params
    # the rows themselves (params.rows is their readable form): the same expansion as the rule's
    rows = expand_matrix(snakemake.config).tables[snakemake.wildcards.table]
    evals = pd.concat([pd.read_csv(f) for f in snakemake.input.evals], ignore_index=True)
    reported = pd.read_csv(snakemake.input.reported) if snakemake.input.get("reported") else None
    episodes = trained_episodes({r.run: f"{p.runs_dir}/{r.run}" for r in rows})
    info = None
    if snakemake.input.get("info"):  # efficiency tables: d2st model-info JSON per run
        info = {Path(f).stem: json.loads(Path(f).read_text()) for f in snakemake.input.info}
    df = build_table(rows, evals, reported, kind=p.kind, train_episodes=episodes, model_info=info)
    if p.kind == "demo" and not df.empty:  # the lr each run trained with (chosen on val classes)
        df.insert(df.columns.get_loc("run"), "lr", df.run.map(lambda r: run_lr(p.runs_dir, r)))
    out = Path(snakemake.output.csv)
    df.to_csv(out, index=False)
    Path(snakemake.output.md).write_text(to_markdown(df, title=p.title))
    if snakemake.output.get("png"):
        if p.kind == "demo":
            from d2st.demo_report import plot_demo_seeds

            plot_demo_seeds(df, snakemake.output.png, title=p.title)
        else:
            plot_table(df, p.kind, snakemake.output.png, title=p.title)
    if snakemake.output.get("html"):
        Path(snakemake.output.html).write_text(
            table_html(df, p.kind, title=p.title, note=p.caption.replace("**", ""))
        )
    print(
        f"{out}: {len(df)} rows, {int(df.isna().any(axis=1).sum())} with missing values", file=log
    )
