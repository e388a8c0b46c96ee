# The convlib course. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# JupyterLab refuses to run as root unless told; a laptop user is not root.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.DEFAULT_GOAL := help
.PHONY: help venv lab test notebooks bench clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "} {printf "  make %-10s %s\n", $$1, $$2}'

# The environment is rebuilt when pyproject.toml changes (the stamp is older than it).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "convlib needs Python >= 3.10"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[course,test]"
	@touch $(STAMP)

venv: $(STAMP) ## create or update the environment in .venv

# Served from the project root: exercises are edited in convlib/, next to notebooks/.
lab: $(STAMP) ## open the course in JupyterLab
	$(PY) -m jupyter lab $(ROOT_FLAG) $(firstword $(wildcard notebooks/01_*.ipynb) notebooks/)

test: $(STAMP) ## run every test: unit tests and the notebooks (strict nbval)
	$(PY) -m instructor.notebooks check
	$(PY) -m pytest tests notebooks --nbval --nbval-sanitize-with notebooks/sanitize.cfg

notebooks: $(STAMP) ## rebuild and execute notebooks from notebooks/src (e.g. make notebooks NB="03 04")
	$(PY) -m instructor.notebooks build $(NB)

bench: $(STAMP) ## time every implementation against the GEMM floor (and PyTorch if installed)
	$(PY) benchmarks/bench.py --plot artifacts/bench.png

clean: ## remove caches and build output (keeps .venv)
	rm -rf .pytest_cache .hypothesis build dist grades artifacts
	find . -name __pycache__ -not -path './.venv/*' -exec rm -rf {} +
