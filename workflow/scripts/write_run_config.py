"""Write one run's resolved `d2st train` config (rule run_config)."""

import sys

import yaml

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    cfg = snakemake.params.cfg
    with open(snakemake.output[0], "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    print(f"wrote {snakemake.output[0]}", file=log)
