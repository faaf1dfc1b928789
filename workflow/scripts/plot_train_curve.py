"""Training curves of one run (rule train_curve): loss and accuracy vs episode."""

import sys
from pathlib import Path

import pandas as pd

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    from d2st.plots import plot_train_curve

    path = Path(snakemake.params.run_dir) / "train_log.csv"
    train_log = pd.read_csv(path) if path.is_file() and path.stat().st_size else None
    plot_train_curve(
        train_log,
        snakemake.output[0],
        title=f"{snakemake.wildcards.run}: training curves",
        way=snakemake.params.way,
    )
    print(f"{path}: {0 if train_log is None else len(train_log)} rows", file=log)
