"""SHA-256 of each stage's outputs next to a table (rule stage_hashes): data, trunk, runs, table."""

import sys

snakemake = globals()["snakemake"]  # injected by Snakemake's script directive

with open(snakemake.log[0], "w") as log:
    sys.stderr = log
    from d2st.demo_report import stage_hash_rows

    df = stage_hash_rows(snakemake.params.files)
    df.to_csv(snakemake.output[0], index=False)
    print(f"{snakemake.output[0]}: {len(df)} files hashed", file=log)
