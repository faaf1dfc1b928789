# d2st: two commands for a newcomer:  `make demo`  (the synthetic pipeline)  and  `make test`.
# Everything else is here too: setup, lint, bench, paper dry-run.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.d2st-setup-done

.PHONY: setup demo test lint bench dryrun-paper report config-docs clean-demo help

help:
	@echo "make demo   - set up (once) and run the synthetic demo: snakemake --cores $(CORES)"
	@echo "make test   - set up (once) and run the test suite"
	@echo "make setup  - create $(VENV) with pinned torch/torchvision, install d2st, ffmpeg"
	@echo "make lint   - ruff format --check, ruff check, snakefmt --check, snakemake --lint"
	@echo "make bench  - benchmarks into results/bench/local/*.csv (untracked)"
	@echo "make dryrun-paper - the paper config's plan and GPU-hours, no data needed"
	@echo "make report - results/report.html from what the workflow has built"
	@echo "make config-docs  - regenerate config/README.md from the config schema"

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	bash requirements/ensure_ffmpeg.sh
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e ".[workflow,dev]"
	$(BIN)/python -c "import torch, torchvision, timm, open_clip, h5py; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)

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

dryrun-paper: $(STAMP)
	$(BIN)/snakemake -n --configfile=workflow/config/paper.yaml all_tables

report: $(STAMP)
	$(BIN)/snakemake --report results/report.html
