# Split CSVs splits/{dataset}/{partition}.csv (video_id,label,label_idx,relpath).


rule splits_synthetic:
    input:
        f"{DATA}/{{synth}}/splits/{{partition}}.csv",
    output:
        f"{SPLITS}/{{synth}}/{{partition}}.csv",
    log:
        "logs/splits/{synth}_{partition}.log",
    conda:
        CONDA_ENV
    shell:
        "cp {input} {output} > {log} 2>&1"


rule splits:
    output:
        expand(
            f"{SPLITS}/{{{{real}}}}/{{partition}}.csv",
            partition=["train", "val", "test"],
        ),
    log:
        "logs/splits/{real}.log",
    conda:
        CONDA_ENV
    resources:
        runtime=10,
    params:
        out=lambda wc, output: str(Path(output[0]).parent.parent),
        protocol=lambda wc: config["datasets"][wc.real]["protocol"],
        source=lambda wc: (
            f"--source-dir {config['datasets'][wc.real]['split_source']}"
            if config["datasets"][wc.real].get("split_source")
            else ""
        ),
    shell:
        "d2st splits --dataset {wildcards.real} --protocol {params.protocol} {params.source} "
        "--out {params.out} > {log} 2>&1"
