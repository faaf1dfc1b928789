"""Per-class accuracy plot of a table's runs (rule per_class)."""

import sys

import pandas as pd

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    from d2st.plots import plot_per_class

    pc = pd.concat([pd.read_csv(f) for f in snakemake.input], ignore_index=True)
    plot_per_class(
        pc, snakemake.output[0], title=snakemake.params.title, labels=dict(snakemake.params.labels)
    )
