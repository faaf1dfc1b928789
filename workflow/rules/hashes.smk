# What each stage produced, next to each table: results/tables/{table}_hashes.csv (stage, item,
# path, sha256). Two machines' tables that differ are traced to the first stage whose hashes differ
# (data -> trunk -> run -> table).


def hash_items(table):
    """(stage, item, path) of every file a table depends on, in pipeline order.

    data: each shard folder of the table's datasets (its shards.csv, which lists every shard's
    sha256, and its manifest.csv); trunk: each backbone weights file the runs load (the pretrained
    trunk of the demo); run: each run's trained weights; table: the table CSV.
    """
    runs = [RUNS[r] for r in table_runs(table)]
    items = []
    for ds, frames in sorted({(r.dataset, r.frames) for r in runs}):
        for part in config["datasets"][ds]["partitions"]:
            folder = shard_dir(ds, part, frames)
            items += [
                ("data", folder, f"{folder}/shards.csv"),
                ("data", folder, manifest(ds, part, frames)),
            ]
    for r in runs:
        wfile = weights_of(r)[1]
        if wfile:
            items.append(("trunk", f"{r.dataset}/{r.backbone}", wfile))
    items += [
        ("run", r.name, expand(rules.train.output.model, run=r.name)[0]) for r in runs
    ]
    items.append(("table", table, expand(rules.table.output.csv, table=table)[0]))
    return list(dict.fromkeys(items))


def hash_inputs(wc):
    # shards.csv is written by `d2st prepare` before manifest.csv, which is the rule's output
    return [p for _, _, p in hash_items(wc.table) if Path(p).name != "shards.csv"]


def hash_targets(tables):
    return [f"results/tables/{t}_hashes.csv" for t in tables]


rule stage_hashes:
    input:
        hash_inputs,
    output:
        "results/tables/{table}_hashes.csv",
    log:
        "logs/stage_hashes/{table}.log",
    conda:
        CONDA_ENV
    params:
        files=lambda wc: hash_items(wc.table),
    script:
        "../scripts/stage_hashes.py"


localrules:
    stage_hashes,
