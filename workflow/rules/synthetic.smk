# The synthetic motion benchmark (docs/CONTRACTS.md "Synthetic benchmark"): videos in real
# containers, split CSVs, per-frame geometry, reversed class pairs.


rule synth:
    output:
        videos=directory(f"{DATA}/{{synth}}/videos"),
        splits=expand(
            f"{DATA}/{{{{synth}}}}/splits/{{partition}}.csv",
            partition=["train", "val", "test"],
        ),
        geometry=f"{DATA}/{{synth}}/geometry.csv",
        pairs=f"{DATA}/{{synth}}/pairs.csv",
        classes=f"{DATA}/{{synth}}/classes.csv",
    log:
        "logs/synth/{synth}.log",
    conda:
        CONDA_ENV
    threads: 2
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=lambda wc, attempt: 15 * attempt,
    params:
        seed=config["synthetic"]["seed"],
        flags=synth_flags(),
        out=lambda wc: synth_dir(wc.synth),
    shell:
        "d2st synth --out {params.out} --seed {params.seed} --jobs {threads} {params.flags} > {log} 2>&1"
