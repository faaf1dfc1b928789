# d2st: reproduce D2ST-Adapter (ICCV 2025) end to end. The workflow is workflow/Snakefile; this
# file lets `snakemake` run from the repository root.
#   snakemake --cores 2                                                    # the synthetic demo
#   snakemake --cores N --configfile=workflow/config/paper.yaml table4     # one paper table
#   snakemake --profile workflow/profiles/slurm --configfile=workflow/config/paper.yaml all_tables
# Note the `=`: Snakemake 9 reads `--configfile FILE table4` as two config files.


include: "workflow/Snakefile"


# an included file's `default_target` does not carry over to the including one: name it here
workflow.default_target = "all"
