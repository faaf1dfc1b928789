# Episodic few-shot training of one run (frozen backbone + adapters + matching metric).


def run_inputs(wc):
    run = RUNS[wc.run]
    inputs = {
        "train": manifest(run.dataset, "train", run.frames),
    }
    _, wfile = weights_of(run)
    if wfile:
        inputs["weights"] = wfile
    return inputs


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


def resolved_run_config(name):
    from d2st.tables import run_config

    run = RUNS[name]
    return run_config(
        config,
        run,
        train_shards=shard_dir(run.dataset, "train", run.frames),
        test_shards=shard_dir(run.dataset, "test", run.frames),
        weights=weights_of(run)[0],
        out_dir="results/runs",
    )


rule train:
    input:
        unpack(run_inputs),
        config="results/configs/{run}.yaml",
    output:
        model="results/runs/{run}/model.safetensors",
        done="results/runs/{run}/done",
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
        "{D2ST} train --config {input.config} > {log} 2>&1"
