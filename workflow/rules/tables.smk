# Result tables: {results_dir}/tables/{table}.{csv,md,png,html}, reported and reproduced side by side.
# `snakemake table4` builds one table, `snakemake all_tables` all of them.


def _values(values):
    return ", ".join(str(v) for v in values)


def table_caption(name):
    """What one table shows, for the HTML report: what is fixed, what varies, which numbers."""
    spec = config["tables"][name]
    kind = spec.get("kind", "paper")
    rows = MATRIX.tables[name]
    runs = table_runs(name)
    parts = [f"**{spec.get('title', name).rstrip('.')}.**"]
    fixed = {k: v for k, v in spec.get("fixed", {}).items() if k != "overrides"}
    if fixed:
        parts.append("Fixed: " + ", ".join(f"{k} {v}" for k, v in fixed.items()) + ".")
    varied = [f"{k} ({_values(v)})" for k, v in spec.get("grid", {}).items()]
    keys = {}
    for r in spec["rows"]:
        for k, v in r.get("key", {}).items():
            keys.setdefault(k, []).append(v)
    varied += [
        f"{k} ({_values(dict.fromkeys(v))})"
        for k, v in keys.items()
        if len(set(map(str, v))) > 1
    ]
    if varied:
        parts.append("Varies: " + "; ".join(varied) + ".")
    parts.append(f"{len(rows)} rows from {len(runs)} trained runs.")
    shots = "/".join(str(s) for s in spec.get("shots", [1, 5]))
    metrics = sorted({RUNS[r].metric for r in runs})
    per_metric = {
        m: config["eval"]
        .get("episodes_by_metric", {})
        .get(m, config["eval"]["episodes"])
        for m in metrics
    }
    episodes = (
        f"{next(iter(per_metric.values()))}"
        if len(set(per_metric.values())) == 1
        else ", ".join(f"{m} {n}" for m, n in per_metric.items())
    )
    if kind == "efficiency":
        parts.append(
            "Columns: tunable parameters (count and % of the model), peak memory and seconds per "
            "training / test episode, measured on this workflow's runs."
        )
    else:
        parts.append(
            f"Accuracy in % over 5-way {shots}-shot test episodes (per shot: {episodes}; metric "
            f"{_values(metrics)}) with its 95% confidence interval (ci95)."
        )
    if kind == "demo":
        parts.append(
            "Protocol reversed_pairs: binary 1-shot accuracy on the time-reversed test class pairs "
            "(chance 50%); an order-free metric can only beat chance there through temporal "
            "modelling in the adapter."
        )
    if spec.get("reported"):
        parts.append(
            f"reported: the paper's number (results/reported/{spec['reported']}); reproduced: this "
            "workflow's."
        )
    return " ".join(parts)


def row_labels(table):
    """The table's rows, readable (the table rule's param: shown in the report, and editing a
    row re-runs the table): 'method=d2st, metric=bimhm: <run> (shots 1,5; standard)'."""
    return [
        "{}: {} (shots {}; {})".format(
            ", ".join(f"{k}={v}" for k, v in r.key.items()),
            r.run,
            ",".join(map(str, r.shots)),
            ", ".join(r.protocols),
        )
        for r in MATRIX.tables[table]
    ]


def method_labels(table):
    """run -> short legend name (the row's method key, else its adapter)."""
    return {
        r.run: str(r.key.get("method", RUNS[r.run].adapter))
        for r in MATRIX.tables[table]
    }


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
