# Two commands do everything on a fresh machine: `make repro` and `make test`.
SHELL := /bin/bash
# The interpreter that creates the venv (found before the venv goes first on PATH).
ifndef PYTHON
PYTHON := $(shell command -v python3)
endif
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv repro test test-fast bench clean-venv

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

test: $(STAMP)
	python -m pytest -q

test-fast: $(STAMP)
	python -m pytest -q -m "not slow"

bench: $(STAMP)
	python benchmarks/bench_pipeline.py

clean-venv:
	rm -rf $(VENV)
