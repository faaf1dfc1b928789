# Episodic few-shot training of one run (frozen backbone + adapters + matching metric) and its
# evaluation.


rule run_config:
    input:
        # train classes size the auxiliary head (metric.aux_classes) when it is on; runs whose lr
        # is chosen on the validation classes read it from the selection table
        unpack(run_config_inputs),
    output:
        f"{CONFIGS_DIR}/{{run}}.yaml",
    log:
        "logs/run_config/{run}.log",
    priority: 30  # half a second: never the reason a run's job waits
    conda:
        CONDA_ENV
    params:
        # the run's settings are a param: editing the matrix or hparams re-runs exactly the
        # affected runs (Snakemake's params rerun trigger); d2st resolve resolves them once
        settings=lambda wc: run_settings(wc.run),
        lr=lr_args,
    shell:
        "d2st resolve --settings {params.settings:q} {params.lr} --out {output} > {log} 2>&1"


rule train:
    # One job per run: train it (or resume it, or adopt an identical lr candidate), then evaluate
    # it in the same process (d2st train --evaluate = d2st evaluate): test episodes for the runs
    # of the tables, validation episodes for an lr candidate (its eval.csv is its validation
    # score). A finished run whose evaluation settings changed is evaluated again, not retrained
    # (its last checkpoint is the finished state).
    input:
        # + the lr candidates this run may be identical to (reused_candidates in common.smk)
        unpack(train_inputs),
        unpack(eval_inputs),
        config=f"{CONFIGS_DIR}/{{run}}.yaml",
    output:
        model=f"{RUNS_DIR}/{{run}}/model.safetensors",
        done=f"{RUNS_DIR}/{{run}}/done",
        eval=f"{EVALS_DIR}/{{run}}/eval.csv",
        per_class=f"{EVALS_DIR}/{{run}}/per_class.csv",
    log:
        "logs/train/{run}.log",
    conda:
        CONDA_ENV
    threads: RES["train_threads"]
    resources:
        mem_mb=lambda wc, attempt: RES["train_mem_mb"] * attempt,
        runtime=lambda wc, attempt: (RES["train_runtime"] + RES["eval_runtime"])
        * attempt,
        gpu=RES["gpu"],
    params:
        reuse=reuse_args,
        # the workflow's evaluation settings, as overrides of the run spec's eval section
        evaluate=lambda wc, input: evaluate_args(wc.run, input),
    shell:
        # resumes from {results_dir}/runs/{run}/checkpoint.pt when a previous attempt was cut off;
        # d2st-progress (workflow/bin): full output to the log, a progress line to the console
        "d2st train --config {input.config} {params.reuse} --evaluate {output.eval} "
        "{params.evaluate} 2>&1 | d2st-progress {log} 'train {wildcards.run}'"


localrules:
    run_config,
