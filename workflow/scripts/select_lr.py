"""Choose each method's learning rate from its validation scores (rule select_lr)."""

import sys

import pandas as pd

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    from d2st.tables import selection_table

    evals = pd.concat([pd.read_csv(f) for f in snakemake.input], ignore_index=True)
    df = selection_table(snakemake.params.candidates, evals, shot=snakemake.params.shot)
    df.to_csv(snakemake.output[0], index=False)
    print(df.to_string(index=False), file=log)
