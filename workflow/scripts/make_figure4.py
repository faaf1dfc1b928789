"""Figure 4 (rule figure4): Table 1's CLIP block joined with the efficiency table, CSV + PNG."""

import sys

import pandas as pd

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    from d2st.plots import figure4_data, plot_figure4

    df = figure4_data(
        pd.read_csv(snakemake.input.accuracy), pd.read_csv(snakemake.input.efficiency)
    )
    df.to_csv(snakemake.output.csv, index=False)
    plot_figure4(df, snakemake.output.png, title=snakemake.params.title)
    print(f"{snakemake.output.png}: {len(df)} methods", file=log)
