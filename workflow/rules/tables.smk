# Result tables: {results_dir}/tables/{table}.{csv,md,png,html}, reported and reproduced side by side.
# `snakemake table4` builds one table, `snakemake all_tables` all of them.


rule table:
    input:
        unpack(table_inputs),
    output:
        csv=report(
            f"{TABLES_DIR}/{{table}}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}", "file": "csv (download)"},
        ),
        md=f"{TABLES_DIR}/{{table}}.md",
        png=report(
            f"{TABLES_DIR}/{{table}}.png",
            caption="../report/table_plot.rst",
            category="Plots",
            labels={"table": "{table}", "file": "png"},
        ),
        html=report(
            f"{TABLES_DIR}/{{table}}.html",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}", "file": "table (rendered)"},
        ),
    log:
        "logs/table/{table}.log",
    conda:
        CONDA_ENV
    params:
        rows=lambda wc: row_labels(wc.table),
        runs_dir=RUNS_DIR,
        kind=lambda wc: config["tables"][wc.table].get("kind", "paper"),
        title=lambda wc: config["tables"][wc.table].get("title", wc.table),
        caption=lambda wc: table_caption(wc.table),
    script:
        "../scripts/make_table.py"


rule per_class:
    input:
        per_class_inputs,
    output:
        report(
            f"{TABLES_DIR}/{{table}}_per_class.png",
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
        labels=lambda wc: method_labels(wc.table),
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
