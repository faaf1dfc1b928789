"""Resolve one run's settings into its frozen spec and write it (rule run_config).

The one resolver, :func:`d2st.config.resolve`, fills every derived value (run name, auxiliary
head size from the train shards); a run whose learning rate is chosen on the validation classes
(`lr_selection`) takes it from the selection table. `d2st train` then only reads the file.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    from d2st.config import resolve
    from d2st.train import count_classes

    overrides = []
    if snakemake.params.method:
        import pandas as pd

        table = pd.read_csv(snakemake.input.lr)
        chosen = table[(table.method_key == snakemake.params.method) & table.chosen]
        if len(chosen) != 1:
            raise ValueError(f"{snakemake.input.lr}: no chosen lr for {snakemake.params.method}")
        from d2st.plan import lr_overrides

        overrides += [f"{k}={v!r}" for k, v in lr_overrides(float(chosen.lr.iloc[0]))]
        print(f"train.lr from {snakemake.input.lr}: {overrides[-1]}", file=log)
    spec = resolve(
        snakemake.params.cfg,
        overrides,
        train_classes=lambda s: count_classes(Path(snakemake.input.train).parent),
    )
    spec.save(snakemake.output[0])
    print(f"wrote {snakemake.output[0]}", file=log)
