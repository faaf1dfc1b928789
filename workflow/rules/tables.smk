# Result tables: results/tables/{table}.{csv,md,png}, reported and reproduced side by side.
# `snakemake table4` builds one table, `snakemake all_tables` all of them.


rule table:
    input:
        unpack(table_inputs),
    output:
        csv=report(
            "results/tables/{table}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}", "file": "csv"},
        ),
        md="results/tables/{table}.md",
        png=report(
            "results/tables/{table}.png",
            caption="../report/table_plot.rst",
            category="Plots",
            labels={"table": "{table}", "file": "png"},
        ),
    log:
        "logs/table/{table}.log",
    conda:
        CONDA_ENV
    params:
        rows=lambda wc: MATRIX.tables[wc.table],
        kind=lambda wc: config["tables"][wc.table].get("kind", "paper"),
        title=lambda wc: config["tables"][wc.table].get("title", wc.table),
    script:
        "../scripts/make_table.py"


rule per_class:
    input:
        per_class_inputs,
    output:
        report(
            "results/tables/{table}_per_class.png",
            caption="../report/per_class.rst",
            category="Plots",
            labels={"table": "{table}", "file": "per-class png"},
        ),
    log:
        "logs/per_class/{table}.log",
    conda:
        CONDA_ENV
    params:
        title=lambda wc: f"{wc.table}: per-class accuracy of the Bi-MHM runs (novel classes)",
    script:
        "../scripts/plot_per_class.py"


rule all_tables:
    input:
        all_table_targets(),


for _t in TABLES:

    rule:
        name:
            _t
        input:
            table_outputs(_t),


localrules:
    all,
    all_tables,
    run_config,
    splits_synthetic,
    table,
    per_class,


workflow._localrules.update(
    TABLES
)  # the per-table target rules defined in the loop above
