# Figures of the paper made from the runs: Figure 5 (aDSTA's shifted reference points and their
# attention, `d2st visualize`) for every synthetic-benchmark run with an aDSTA adapter, and
# Figure 3 (per-class case study, `d2st casestudy`) of d2st against st and against d2st_s.
# `snakemake figures` builds them all.

from d2st.casestudy import comparable_runs  # noqa: E402

ADSTA_ADAPTERS = ("d2st", "d2st_s", "d2st_t", "d2st_uniform")
# (method studied, method compared with)
CASESTUDY_PAIRS = (("d2st", "st"), ("d2st", "d2st_s"))


# trained synthetic runs whose adapter has an aDSTA pathway: one Figure 5 each
FIGURE_RUNS = sorted(
    name
    for name, run in RUNS.items()
    if run.adapter in ADSTA_ADAPTERS and run.dataset in SYNTHETIC and run.needs_training
)
CASESTUDIES = comparable_runs(RUNS, CASESTUDY_PAIRS, SYNTHETIC)


wildcard_constraints:
    study=_alternatives(CASESTUDIES),


rule visualize:
    input:
        done=f"{RUNS_DIR}/{{run}}/done",
        test=lambda wc: manifest(RUNS[wc.run].dataset, "test", RUNS[wc.run].frames),
    output:
        f"{FIGURES_DIR}/visualize/{{run}}.png",
    log:
        "logs/visualize/{run}.log",
    conda:
        CONDA_ENV
    params:
        run_dir=lambda wc: f"{RUNS_DIR}/{wc.run}",
        shards=lambda wc, input: str(Path(input.test).parent),
    shell:
        # the first test clip; points of every adapter stage pooled (paper Appendix F)
        "d2st visualize --run {params.run_dir} --video {params.shards} --index 0 "
        "--stage all --out {output} > {log} 2>&1"


rule casestudy:
    input:
        lambda wc: [f"{EVALS_DIR}/{r}/per_class.csv" for r in CASESTUDIES[wc.study]],
    output:
        csv=f"{FIGURES_DIR}/casestudy/{{study}}.csv",
        png=f"{FIGURES_DIR}/casestudy/{{study}}.png",
    log:
        "logs/casestudy/{study}.log",
    conda:
        CONDA_ENV
    params:
        labels=lambda wc: " ".join(RUNS[r].adapter for r in CASESTUDIES[wc.study]),
        prefix=lambda wc: f"{FIGURES_DIR}/casestudy/{wc.study}",
    shell:
        "d2st casestudy --evals {input} --labels {params.labels} "
        "--out {params.prefix} > {log} 2>&1"


rule figures:
    input:
        expand(f"{FIGURES_DIR}/visualize/{{run}}.png", run=FIGURE_RUNS),
        expand(
            f"{FIGURES_DIR}/casestudy/{{study}}.{{ext}}",
            study=CASESTUDIES,
            ext=["csv", "png"],
        ),


localrules:
    figures,
    casestudy,
