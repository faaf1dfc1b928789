"""The report's headline page and its config + versions page (rule report_pages)."""

import json
import sys
from pathlib import Path

import pandas as pd
import yaml

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    from d2st.report import config_html, headline_fragment, versions

    vers = versions()
    tables = {}
    for csv, (name, (kind, title)) in zip(
        snakemake.input.tables, snakemake.params.tables.items(), strict=True
    ):
        tables[name] = (pd.read_csv(csv), kind, title)
    made_with = ", ".join(f"{k} {v}" for k, v in vers.items())
    Path(snakemake.output.headline).write_text(
        headline_fragment(tables)
        + f"\n<p style='color:#555'>Made with {made_with}. The config and versions are under "
        "Summary; every table, plot and training curve under its category.</p>\n"
    )
    cfg = yaml.safe_dump(json.loads(json.dumps(snakemake.config)), sort_keys=False)
    Path(snakemake.output.config).write_text(
        config_html(cfg, vers, note=f"config sha256 {snakemake.params.config_sha}…")
    )
    print(f"{snakemake.output.headline}, {snakemake.output.config}: written", file=log)
