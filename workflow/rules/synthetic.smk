# The synthetic motion benchmark (docs/CONTRACTS.md "Synthetic benchmark"): videos in real
# containers, split CSVs, per-frame geometry, reversed class pairs.


def synth_flags():
    """`d2st synth` extra flags from synthetic.args ({videos_per_class: 30} -> --videos-per-class 30)."""
    flags = []
    for k, v in config["synthetic"].get("args", {}).items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            flags.append(flag if v else "")
        elif isinstance(v, list):
            flags.append(f"{flag} " + " ".join(map(str, v)))
        else:
            flags.append(f"{flag} {v}")
    return " ".join(f for f in flags if f)


rule synth:
    output:
        videos=directory(f"{DATA}/{{synth}}/videos"),
        splits=expand(f"{DATA}/{{{{synth}}}}/splits/{{partition}}.csv", partition=["train", "val", "test"]),
        geometry=f"{DATA}/{{synth}}/geometry.csv",
        pairs=f"{DATA}/{{synth}}/pairs.csv",
        classes=f"{DATA}/{{synth}}/classes.csv",
    params:
        seed=config["synthetic"]["seed"],
        flags=synth_flags(),
        out=lambda wc: synth_dir(wc.synth),
    log:
        "logs/synth/{synth}.log",
    threads: 2
    conda:
        CONDA_ENV
    resources:
        mem_mb=lambda wc, attempt: 2000 * attempt,
        runtime=lambda wc, attempt: 15 * attempt,
    shell:
        "{D2ST} synth --out {params.out} --seed {params.seed} --jobs {threads} {params.flags} > {log} 2>&1"
