# d2st: two commands for a newcomer:  `make demo`  (the synthetic pipeline)  and  `make test`.
# Everything else is here too: setup, lint, bench, paper dry-run.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.d2st-setup-done

.PHONY: setup demo demo-full test lint bench gpu-check gpu-wheels dryrun-paper report config-docs clean-demo help

help:
	@echo "make demo   - set up (once) and run the synthetic demo: snakemake --cores $(CORES)"
	@echo "make demo-full - the full adapter x metric x seed grid (workflow/config/demo_full.yaml)"
	@echo "make test   - set up (once) and run the test suite"
	@echo "make setup  - create $(VENV) with pinned torch/torchvision, install d2st, ffmpeg"
	@echo "make lint   - ruff format --check, ruff check, snakefmt --check, snakemake --lint"
	@echo "make bench  - benchmarks into results/bench/local/*.csv (untracked)"
	@echo "make dryrun-paper - the paper config's plan and GPU-hours, no data needed"
	@echo "make report - results/report.html from what the workflow has built"
	@echo "make config-docs  - regenerate config/README.md from the config schema"
	@echo "make gpu-check  - CUDA check into results/bench/gpu.csv (a CPU smoke without a GPU)"
	@echo "make gpu-wheels - download the wheels a bare GPU image lacks into $(WHEELS)/"

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	bash requirements/ensure_ffmpeg.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e ".[workflow,dev]"
	$(BIN)/python -c "import torch, torchvision, timm, open_clip, h5py; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $(STAMP)

# The demo's numbers go into README.md between <!-- demo:start/end --> (demo-full: between
# <!-- demo-full:start/end -->) with the machine and the wall time of the snakemake run (setup
# excluded); README.md is left as is when the run did not rebuild the table.
DEMO_TABLE ?= results/tables/demo.csv
DEMO_LR ?= results/tables/demo_lr.csv
DEMO_FULL_CONFIG ?= workflow/config/demo_full.yaml
DEMO_FULL_TABLE ?= results/tables/demo_full.csv
DEMO_FULL_LR ?= results/tables/demo_full_lr.csv

# $(call timed_demo,SNAKEMAKE ARGS,TABLE,LR TABLE,MARKER,COMMAND)
define timed_demo
	@start=$$(date +%s); \
	echo "snakemake --cores $(CORES) $(1)"; \
	$(BIN)/snakemake --cores $(CORES) $(1) || exit $$?; \
	$(BIN)/python workflow/scripts/readme_demo.py --table $(2) --lr $(3) --readme README.md \
		--marker $(4) --command "$(5)" --since $$start --wall-seconds $$(( $$(date +%s) - start ))
endef

demo: $(STAMP)
	$(call timed_demo,,$(DEMO_TABLE),$(DEMO_LR),demo,make demo (snakemake --cores $(CORES)))

demo-full: $(STAMP)
	$(call timed_demo,--configfile=$(DEMO_FULL_CONFIG),$(DEMO_FULL_TABLE),$(DEMO_FULL_LR),demo-full,make demo-full (snakemake --cores $(CORES) --configfile=$(DEMO_FULL_CONFIG)))

test: $(STAMP)
	$(BIN)/python -m pytest tests -q

SNAKE_FILES := Snakefile workflow/Snakefile workflow/rules

lint: $(STAMP)
	$(BIN)/ruff format --check d2st tests workflow/scripts workflow/bin/d2st-progress
	$(BIN)/ruff check d2st tests workflow/scripts workflow/bin/d2st-progress
	$(BIN)/snakefmt --check $(SNAKE_FILES)
	$(BIN)/snakemake --lint

# results/bench/local/ is ignored by git: the committed results/bench/*.csv stay as measured
bench: $(STAMP)
	$(BIN)/d2st bench all --out results/bench/local

config-docs: $(STAMP)
	$(BIN)/python workflow/scripts/config_docs.py > config/README.md

# The GPU check (docs/BENCHMARKS.md "GPU check"); run `make setup` first, or, where d2st is
# importable without this venv (a GPU image with the wheels below):
#   make gpu-check D2ST="python3 -m d2st.cli" GPU_OUT=DIR GPU_ARGS="--time-budget 360"
D2ST ?= $(BIN)/d2st
GPU_OUT ?= results/bench
GPU_ARGS ?=
gpu-check:
	$(D2ST) bench gpu --out $(GPU_OUT) $(GPU_ARGS)

# Pure-Python wheels d2st needs that a bare CUDA image (torch, timm, h5py, pandas...) lacks:
# open_clip and its ftfy (+ wcwidth); ffmpeg-python (+ future), imported by the data modules.
# Versions from requirements/constraints.txt; for CPython 3.12 on x86-64 Linux.
WHEELS ?= .whl
GPU_WHEELS := open_clip_torch ftfy wcwidth ffmpeg-python future
gpu-wheels:
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
		-c requirements/constraints.txt -d $(WHEELS) $(GPU_WHEELS)
	@ls $(WHEELS)

dryrun-paper: $(STAMP)
	$(BIN)/snakemake -n --configfile=workflow/config/paper.yaml all_tables

report: $(STAMP)
	$(BIN)/snakemake --report results/report.html
