# Decode T uniformly sampled frames per video into HDF5 shards + manifest.csv (docs/CONTRACTS.md).


rule prepare:
    input:
        unpack(prepare_inputs),
    output:
        f"{DATA}/shards/{{dataset}}/{{partition}}/{{frames}}f_{{size}}px/manifest.csv",
    log:
        "logs/prepare/{dataset}_{partition}_{frames}f_{size}px.log",
    # before every training job (each shard folder is an input of some run's job), the train
    # split first (pretraining and every run read it), then validation (the lr candidates), test
    priority: lambda wc: 20 + {"train": 2, "val": 1}.get(wc.partition, 0)
    conda:
        CONDA_ENV
    threads: RES["prepare_threads"]
    resources:
        mem_mb=lambda wc, attempt: RES["prepare_mem_mb"] * attempt,
        runtime=lambda wc, attempt: RES["prepare_runtime"] * attempt,
    params:
        videos=lambda wc: video_root(wc.dataset),
        out=lambda wc, output: str(Path(output[0]).parent),
        # the authors' frame-index rule of the dataset (Kinetics-100 has its own)
        rule=lambda wc: frame_index_scheme(wc.dataset),
    shell:
        "( test -d {params.videos:q} || {{ echo 'd2st: video root of {wildcards.dataset} not found: "
        "{params.videos} (set datasets.{wildcards.dataset}.videos in the config)'; exit 1; }} ; "
        "d2st prepare --videos {params.videos:q} --split {input.split} --out {params.out} "
        "--frames {wildcards.frames} --size {wildcards.size} --frame-rule {params.rule} "
        "--jobs {threads} --no-progress ) > {log} 2>&1"
