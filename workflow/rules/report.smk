# Pages of the HTML report (`snakemake --report {results_dir}/report.html`) besides the tables:
# the headline numbers on its first page (report/workflow.rst embeds headline.html), the resolved
# config with the library versions, and one training-curve plot per trained run.


rule report_pages:
    input:
        tables=lambda wc: [f"{TABLES_DIR}/{t}.csv" for t in wanted_tables()],
    output:
        headline=report(
            f"{REPORT_DIR}/headline.html",
            caption="../report/headline.rst",
            category="Summary",
            labels={"page": "headline numbers"},
        ),
        config=report(
            f"{REPORT_DIR}/config.html",
            caption="../report/config.rst",
            category="Summary",
            labels={"page": "config and versions"},
        ),
    log:
        "logs/report_pages.log",
    conda:
        CONDA_ENV
    params:
        tables=lambda wc: {
            t: [
                config["tables"][t].get("kind", "paper"),
                config["tables"][t].get("title", t),
            ]
            for t in wanted_tables()
        },
        # a config edit re-makes the config page (the YAML itself is not a param: too long)
        config_sha=hashlib.sha256(config_yaml().encode()).hexdigest()[:12],
    script:
        "../scripts/report_pages.py"


rule train_curve:
    input:
        done=f"{RUNS_DIR}/{{run}}/done",
    output:
        report(
            f"{REPORT_DIR}/curves/{{run}}.png",
            caption="../report/train_curve.rst",
            category="Training curves",
            labels=lambda wc: {
                "method": RUNS[wc.run].adapter,
                "metric": RUNS[wc.run].metric,
                "run": wc.run,
            },
        ),
    log:
        "logs/train_curve/{run}.log",
    conda:
        CONDA_ENV
    params:
        run_dir=lambda wc: f"{RUNS_DIR}/{wc.run}",
        way=lambda wc: RUNS[wc.run].way,
    script:
        "../scripts/plot_train_curve.py"


localrules:
    report_pages,
    train_curve,
