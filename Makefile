# Two commands do everything on a fresh machine: `make repro` and `make test`.
SHELL := /bin/bash
# The interpreter that creates the venv (found before the venv goes first on PATH).
ifndef PYTHON
PYTHON := $(shell command -v python3)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: examples system-deps venv repro cycle pr-report test test-fast lint bench bench-noise bench-pipeline bench-model bench-data bench-scale bench-serve gguf-llama-cpp bench-gpu clean-venv register promote rollback registry

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

repro: $(STAMP) system-deps
	dvc repro

# A training cycle only when one is due: acquire reads again what changes under the same spec (the serving
# database's corrections), the data stages and the coverage report run, then stages/retrain.py compares
# the clean data with what the adapter was trained on (0: due, 3: not due).
cycle: $(STAMP)
	dvc repro --single-item --force acquire
	dvc repro coverage
	@python stages/retrain.py --exit-code; status=$$?; \
	if [ $$status -eq 0 ]; then dvc repro && python stages/retrain.py; \
	elif [ $$status -eq 3 ]; then echo "cycle: no training due; the current adapter stays"; \
	else exit $$status; fi

# reports/pr.md: metric, parameter, per-language and curve changes against BASE (run the pipeline first).
BASE ?= origin/main
pr-report: $(STAMP)
	python -m langfoundry.reports.pr_report --base $(BASE) $(if $(PLOTS_LINK),--plots-link $(PLOTS_LINK))

# Debian packages some features need: the review page's browser test (chromium and its driver), OCR in the
# default pipeline's ocr stage (Tesseract with the packs of the inventory's languages it has a model for, and
# Noto fonts for the rendered pages and check set), speech made offline for the audio tests (espeak-ng).
# As root they are installed; otherwise the one command to run is printed (and the ocr stage stops with it).
SYSTEM_PACKAGES := chromium chromium-driver tesseract-ocr tesseract-ocr-eng tesseract-ocr-ind tesseract-ocr-jav \
	tesseract-ocr-sun tesseract-ocr-mal fonts-noto-core espeak-ng
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages: $$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; }; \
	else echo "missing Debian packages: run  sudo apt-get install -y $$missing"; fi

# the tests on every core, a module at a time per worker, slow modules first: see tests/conftest.py
PARALLEL = -n $(shell nproc) --dist loadfile --no-loadscope-reorder

test: $(STAMP) system-deps
	python -m pytest -q $(PARALLEL)

test-fast: $(STAMP)
	python -m pytest -q -m "not slow" $(PARALLEL)

lint: $(STAMP)
	ruff check .

# Every figure of README's Performance section (about half an hour on 2 cores, most of it the 10M-pair run);
# the parts alone: bench-pipeline, bench-model, bench-data, bench-scale; bench-gpu needs a CUDA GPU.
bench: bench-pipeline bench-model bench-data bench-scale bench-serve

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

# The GGUF files through llama.cpp itself: LLAMA_PYTHON names an interpreter with llama-cpp-python, which
# compiles llama.cpp when installed (about an hour on 2 cores): python3 -m venv /opt/llama && /opt/llama/bin/pip install llama-cpp-python
LLAMA_PYTHON ?= python
gguf-llama-cpp: $(STAMP)
	python benchmarks/gguf_llama_cpp.py --llama-python $(LLAMA_PYTHON)

# 16 concurrent clients for 30 s against langfoundry serve on 127.0.0.1, in A/B and in shadow mode.
bench-serve: $(STAMP)
	python benchmarks/bench_serve.py

# benchmarks/noise_band.json: each model metric's spread across seeds, the noise band of `make pr-report`
# (3 seeds of base, train and evaluate: many minutes).
bench-noise: $(STAMP)
	python benchmarks/bench_noise.py

bench-gpu: $(STAMP)
	python benchmarks/bench_gpu.py

# The model registry (GTO git tags): register the committed export (BUMP=minor|major), promote a version to a
# stage past its release gate (FORCE=1 overrides a failed gate, and the tag says so), roll a stage back, show.
REGISTRY := python -m langfoundry.release.registry
register: $(STAMP)
	$(REGISTRY) register $(if $(BUMP),--bump $(BUMP))

promote: $(STAMP)
	@test -n "$(STAGE)" || { echo "usage: make promote STAGE=staging|prod [VERSION=v0.0.2] [FORCE=1]"; exit 2; }
	$(REGISTRY) promote --stage $(STAGE) $(if $(VERSION),--version $(VERSION)) $(if $(FORCE),--force)

rollback: $(STAMP)
	$(REGISTRY) rollback --stage $(or $(STAGE),prod)

registry: $(STAMP)
	$(REGISTRY) show

# The walkthroughs (examples/<name>/README.md): each builds its own input offline and runs in examples/<name>/work.
EXAMPLES := $(notdir $(patsubst %/run.py,%,$(wildcard examples/*/run.py)))
example-%: $(STAMP) system-deps
	$(BIN)/python examples/$*/run.py

examples: $(addprefix example-,$(EXAMPLES))

# reports/data_stats.md (+ reports/data_stats/*.png, metrics/data_stats.json): examples per task and language,
# length distributions, random samples per task, from data/processed (run `dvc repro format` first).
# make serve: langfoundry serve on MODEL (a folder or a registry stage: prod, staging) at PORT; make demo: the
# same server, with its chat page at http://127.0.0.1:$(PORT)/demo.
.PHONY: data-stats serve demo
MODEL ?= models/merged
PORT ?= 8000
data-stats: $(STAMP)
	langfoundry data-stats

serve: $(STAMP)
	langfoundry serve --champion $(MODEL) --mode champion_only --port $(PORT)

demo: $(STAMP)
	@echo "demo: the chat page is http://127.0.0.1:$(PORT)/demo once the model has loaded (Ctrl-C stops it)"
	langfoundry serve --champion $(MODEL) --mode champion_only --port $(PORT)

clean-venv:
	rm -rf $(VENV)
