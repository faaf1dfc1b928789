# Table 3 (efficiency) and Figure 4 (tunable parameters / memory vs accuracy per method).
# `d2st model-info --config` counts each efficiency run's model (tunable parameters, GMACs per
# clip, adapters per block) from its resolved run config; the efficiency table joins these with
# the runs' eval.csv (peak memory, times); Figure 4 joins the efficiency table with the Table 1
# CLIP block on the run name (SSv2-Full, 1-shot).


rule model_info:
    input:
        config=f"{CONFIGS_DIR}/{{run}}.yaml",
    output:
        f"{RESULTS}/efficiency/{{run}}.json",
    log:
        "logs/model_info/{run}.log",
    conda:
        CONDA_ENV
    shell:
        "d2st model-info --config {input.config} > {output} 2> {log}"


rule figure4:
    input:
        accuracy=f"{TABLES_DIR}/{FIGURE4_TABLES[0]}.csv",
        efficiency=f"{TABLES_DIR}/{FIGURE4_TABLES[1]}.csv",
    output:
        csv=f"{FIGURES_DIR}/figure4.csv",
        png=report(
            f"{FIGURES_DIR}/figure4.png",
            caption="../report/table_plot.rst",
            category="Plots",
            labels={"table": "figure4", "file": "png"},
        ),
    log:
        "logs/figure4.log",
    conda:
        CONDA_ENV
    params:
        title="Figure 4: accuracy vs tunable parameters and memory (CLIP ViT-B/16, SSv2-Full 1-shot)",
    script:
        "../scripts/make_figure4.py"


localrules:
    model_info,
    figure4,
