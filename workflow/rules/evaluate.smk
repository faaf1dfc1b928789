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


# Learning-rate selection (lr_selection): each candidate run scored on the validation classes,
# then one table of every candidate's score and the lr chosen per method.
rule evaluate_val:
    input:
        done=f"{RUNS_DIR}/{{run}}/done",
        val=lambda wc: manifest(
            RUNS[wc.run].dataset, SELECTION.partition, RUNS[wc.run].frames
        ),
    output:
        f"{EVALS_DIR}/{{run}}/val/eval.csv",
    log:
        "logs/evaluate_val/{run}.log",
    conda:
        CONDA_ENV
    threads: RES["eval_threads"]
    resources:
        mem_mb=lambda wc, attempt: RES["eval_mem_mb"] * attempt,
        runtime=lambda wc, attempt: RES["eval_runtime"] * attempt,
        gpu=RES["gpu"],
    params:
        run_dir=lambda wc: f"{RUNS_DIR}/{wc.run}",
        overrides=lambda wc: " ".join(val_overrides(wc.run)),
    shell:
        "d2st evaluate --run {params.run_dir} --out {output} {params.overrides} 2>&1 "
        "| d2st-progress {log} 'validate {wildcards.run}'"


rule select_lr:
    input:
        selection_inputs,
    output:
        LR_TABLE,
    log:
        "logs/select_lr.log",
    conda:
        CONDA_ENV
    params:
        candidates=lambda wc: lr_candidate_rows(),
        shot=lambda wc: SELECTION.shot if SELECTION else 1,
    script:
        "../scripts/select_lr.py"
