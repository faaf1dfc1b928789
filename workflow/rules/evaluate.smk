# Test episodes of one trained run: eval.csv (one row per protocol x shot) + per_class.csv.


rule evaluate:
    input:
        unpack(eval_inputs),
    output:
        eval=f"{EVALS_DIR}/{{run}}/eval.csv",
        per_class=f"{EVALS_DIR}/{{run}}/per_class.csv",
    log:
        "logs/evaluate/{run}.log",
    conda:
        CONDA_ENV
    threads: RES["eval_threads"]
    resources:
        mem_mb=lambda wc, attempt: RES["eval_mem_mb"] * attempt,
        runtime=lambda wc, attempt: RES["eval_runtime"] * attempt,
        gpu=RES["gpu"],
    params:
        run_dir=lambda wc: f"{RUNS_DIR}/{wc.run}",
        # the workflow's evaluation settings, as overrides of the run spec's eval section
        overrides=lambda wc, input: " ".join(eval_overrides(wc.run, input.test)),
        pairs=lambda wc, input: (
            f"--pairs {input.pairs}" if "pairs" in input.keys() else ""
        ),
    shell:
        "d2st evaluate --run {params.run_dir} --split {input.split} {params.pairs} "
        "--out {output.eval} {params.overrides} 2>&1 | d2st-progress {log} 'evaluate {wildcards.run}'"
