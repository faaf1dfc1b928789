# d2st: reproduce D2ST-Adapter (ICCV 2025) end to end.
#   snakemake --cores 2                                                    # the synthetic demo
#   snakemake --cores N --configfile workflow/config/paper.yaml table4     # one paper table
#   snakemake --profile workflow/profiles/slurm --configfile workflow/config/paper.yaml all_tables
# Rules live in workflow/rules/*.smk, the config schema in workflow/schemas/, docs in docs/WORKFLOW.md.
from snakemake.utils import min_version

min_version("9.1.0")


# No `configfile:` directive: Snakemake would *merge* it with `--configfile paper.yaml`
# (demo tables leaking into the paper config). common.smk loads workflow/config/default.yaml
# only when no config file with a `tables:` section was given.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/synthetic.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/visualize.smk"


rule all:
    default_target: True
    input:
        default_targets(),
