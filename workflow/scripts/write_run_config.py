"""Resolve one run's settings into its frozen spec and write it (rule run_config).

The one resolver, :func:`d2st.config.resolve`, fills every derived value (run name, auxiliary
head size from the train shards); `d2st train` then only reads the file.
"""

import sys
from pathlib import Path

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    from d2st.config import resolve
    from d2st.train import count_classes

    spec = resolve(
        snakemake.params.cfg,
        train_classes=lambda s: count_classes(Path(snakemake.input.train).parent),
    )
    spec.save(snakemake.output[0])
    print(f"wrote {snakemake.output[0]}", file=log)
