# "ImageNet" of the synthetic demo: regress per-frame geometry (x, y, size, orientation, opacity)
# from single frames of the base (train) classes; the trunk is then frozen by every run. One
# trunk per seed: a run's seed covers its adapter init, its episodes and its trunk.


rule pretrain:
    input:
        shards=lambda wc: manifest(
            wc.synth, "train", config["run_defaults"].get("frames", 8)
        ),
        geometry=f"{DATA}/{{synth}}/geometry.csv",
    output:
        f"{DATA}/pretrained/{{synth}}/{{backbone}}_s{{seed}}.safetensors",
    log:
        "logs/pretrain/{synth}_{backbone}_s{seed}.log",
    priority: 5  # every run's job reads a trunk: before them
    conda:
        CONDA_ENV
    threads: config["pretrain"].get("threads", 1)
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=lambda wc, attempt: 30 * attempt,
    params:
        shards=lambda wc, input: str(Path(input.shards).parent),
        # torch threads fixed by the config, not by --cores: results depend on the thread count
        threads=config["pretrain"].get("threads", 1),
        flags=lambda wc: cli_flags(config["pretrain"].get("args", {})),
    shell:
        "d2st pretrain --shards {params.shards} --geometry {input.geometry} "
        "--backbone {wildcards.backbone} --seed {wildcards.seed} --threads {params.threads} "
        "{params.flags} --out {output} 2>&1 "
        "| d2st-progress {log} 'pretrain {wildcards.synth}/{wildcards.backbone} seed {wildcards.seed}'"
