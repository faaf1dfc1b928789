# Learning-rate selection (lr_selection): every candidate run is scored on the validation
# classes by its own job (rule train writes {results_dir}/evals/{candidate}/eval.csv), then one
# table of every candidate's score and the lr chosen per method.


rule select_lr:
    input:
        selection_inputs,
    output:
        LR_TABLE,
    log:
        "logs/select_lr.log",
    priority: 30  # the final runs wait for it
    conda:
        CONDA_ENV
    params:
        candidates=lambda wc: lr_candidate_rows(),
        shot=lambda wc: SELECTION.shot if SELECTION else 1,
    script:
        "../scripts/select_lr.py"
