# Test episodes of one trained run: eval.csv (one row per protocol x shot) + per_class.csv.


rule evaluate:
    input:
        unpack(eval_inputs),
    output:
        eval="results/evals/{run}/eval.csv",
        per_class="results/evals/{run}/per_class.csv",
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
        run_dir=lambda wc: f"results/runs/{wc.run}",
        shards=lambda wc, input: str(Path(input.test).parent),
        shots=lambda wc: " ".join(map(str, MATRIX.eval_shots[wc.run])),
        episodes=lambda wc: config["eval"]["episodes_by_metric"].get(
            RUNS[wc.run].metric, config["eval"]["episodes"]
        ),
        seed=config["eval"]["seed"],
        pairs=lambda wc, input: (
            f"--pairs {input.pairs}" if "pairs" in input.keys() else ""
        ),
    shell:
        "d2st evaluate --run {params.run_dir} --shards {params.shards} --shots {params.shots} "
        "--episodes {params.episodes} --seed {params.seed} --split {input.split} {params.pairs} "
        "--out {output.eval} 2>&1 | d2st-progress {log} 'evaluate {wildcards.run}'"
