# What each stage produced, next to each table: results/tables/{table}_hashes.csv (stage, item,
# path, sha256). Two machines' tables that differ are traced to the first stage whose hashes differ
# (data -> trunk -> run -> table).


rule stage_hashes:
    input:
        hash_inputs,
    output:
        f"{TABLES_DIR}/{{table}}_hashes.csv",
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
