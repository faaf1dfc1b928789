# Episodic few-shot training of one run (frozen backbone + adapters + matching metric).


rule run_config:
    input:
        # train classes size the auxiliary head (metric.aux_classes) when it is on; runs whose lr
        # is chosen on the validation classes read it from the selection table
        unpack(run_config_inputs),
    output:
        f"{CONFIGS_DIR}/{{run}}.yaml",
    log:
        "logs/run_config/{run}.log",
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
    input:
        # + the lr candidates this run may be identical to (reused_candidates in common.smk)
        unpack(train_inputs),
        config=f"{CONFIGS_DIR}/{{run}}.yaml",
    output:
        model=f"{RUNS_DIR}/{{run}}/model.safetensors",
        done=f"{RUNS_DIR}/{{run}}/done",
    log:
        "logs/train/{run}.log",
    conda:
        CONDA_ENV
    threads: RES["train_threads"]
    resources:
        mem_mb=lambda wc, attempt: RES["train_mem_mb"] * attempt,
        runtime=lambda wc, attempt: RES["train_runtime"] * attempt,
        gpu=RES["gpu"],
    params:
        reuse=reuse_args,
    shell:
        # resumes from {results_dir}/runs/{run}/checkpoint.pt when a previous attempt was cut off;
        # d2st-progress (workflow/bin): full output to the log, a progress line to the console
        "d2st train --config {input.config} {params.reuse} 2>&1 "
        "| d2st-progress {log} 'train {wildcards.run}'"


localrules:
    run_config,
