# Episodic few-shot training of one run (frozen backbone + adapters + matching metric).


rule run_config:
    output:
        "results/configs/{run}.yaml",
    params:
        # the resolved config is a param: editing the matrix or hparams re-runs exactly the
        # affected runs (Snakemake's params rerun trigger)
        cfg=lambda wc: resolved_run_config(wc.run),
    log:
        "logs/run_config/{run}.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/write_run_config.py"


rule train:
    input:
        unpack(run_inputs),
        config="results/configs/{run}.yaml",
    output:
        model="results/runs/{run}/model.safetensors",
        done="results/runs/{run}/done",
    params:
        d2st=D2ST,
    log:
        "logs/train/{run}.log",
    threads: RES["train_threads"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=lambda wc, attempt: RES["train_mem_mb"] * attempt,
        runtime=lambda wc, attempt: RES["train_runtime"] * attempt,
        gpu=RES["gpu"],
    shell:
        # resumes from results/runs/{run}/checkpoint.pt when a previous attempt was cut off
        "{params.d2st} train --config {input.config} > {log} 2>&1"
