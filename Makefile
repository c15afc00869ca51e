# Two commands do everything on a fresh machine: `make repro` and `make test`.
SHELL := /bin/bash
# The interpreter that creates the venv (found before the venv goes first on PATH).
ifndef PYTHON
PYTHON := $(shell command -v python3)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv repro cycle pr-report test test-fast lint bench bench-noise bench-pipeline bench-model bench-data bench-scale bench-gpu clean-venv

venv: $(STAMP)

# torch first, alone: pip takes the CPU wheel that lies on this kind of machine.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Stage commands say `python`: put the venv first on PATH so DVC runs them with it.
export PATH := $(abspath $(BIN)):$(PATH)

repro: $(STAMP)
	dvc repro

# A training cycle only when one is due: the data stages and the coverage report always run, then
# stages/retrain.py compares the clean data with what the adapter was trained on (0: due, 3: not due).
cycle: $(STAMP)
	dvc repro coverage
	@python stages/retrain.py --exit-code; status=$$?; \
	if [ $$status -eq 0 ]; then dvc repro && python stages/retrain.py; \
	elif [ $$status -eq 3 ]; then echo "cycle: no training due; the current adapter stays"; \
	else exit $$status; fi

# reports/pr.md: metric, parameter, per-language and curve changes against BASE (run the pipeline first).
BASE ?= origin/main
pr-report: $(STAMP)
	python -m langfoundry.reports.pr_report --base $(BASE) $(if $(PLOTS_LINK),--plots-link $(PLOTS_LINK))

test: $(STAMP)
	python -m pytest -q

test-fast: $(STAMP)
	python -m pytest -q -m "not slow"

lint: $(STAMP)
	ruff check .

# Every figure of README's Performance section (about half an hour on 2 cores, most of it the 10M-pair run);
# the parts alone: bench-pipeline, bench-model, bench-data, bench-scale; bench-gpu needs a CUDA GPU.
bench: bench-pipeline bench-model bench-data bench-scale

bench-pipeline: $(STAMP)
	python benchmarks/bench_pipeline.py

# Batched against one-at-a-time evaluation, packed against padded training, on the default run's outputs.
bench-model: $(STAMP)
	dvc repro evaluate
	python benchmarks/bench_eval.py
	python benchmarks/bench_training.py

# Data stages against OpusFilter 3.3.1 (its own venv, from PyPI, once) and near-duplicate removal on the
# seeded 200,000-pair corpus of benchmarks/corpus.py; bench-scale: 10 million pairs in bounded memory (long).
bench-data: $(STAMP)
	python benchmarks/bench_opusfilter.py
	python benchmarks/bench_near_dedup.py
	python benchmarks/bench_memory.py

bench-scale: $(STAMP)
	python benchmarks/bench_scale.py

# benchmarks/noise_band.json: each model metric's spread across seeds, the noise band of `make pr-report`
# (3 seeds of base, train and evaluate: many minutes).
bench-noise: $(STAMP)
	python benchmarks/bench_noise.py

bench-gpu: $(STAMP)
	python benchmarks/bench_gpu.py

clean-venv:
	rm -rf $(VENV)
