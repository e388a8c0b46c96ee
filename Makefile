# The convlib course. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# JupyterLab refuses to run as root unless told; a laptop user is not root.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.DEFAULT_GOAL := help
.PHONY: help venv lab test lint e2e notebooks bench student sandbox grade gradescope bench-grading clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "} {printf "  make %-14s %s\n", $$1, $$2}'

# The environment is rebuilt when pyproject.toml changes (the stamp is older than it).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "convlib needs Python >= 3.10"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[course,capstone,test,lint]"
	@touch $(STAMP)

venv: $(STAMP) ## create or update the environment in .venv

# Served from the project root: exercises are edited in convlib/, next to notebooks/.
lab: $(STAMP) ## open the course in JupyterLab
	$(PY) -m jupyter lab $(ROOT_FLAG) --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks/01_welcome.ipynb

test: $(STAMP) ## run every test: unit tests and the notebooks (strict nbval)
	$(PY) -m instructor.notebooks check
	$(PY) -m pytest tests notebooks --nbval --nbval-sanitize-with notebooks/sanitize.cfg

LINTED := convlib instructor tests e2e benchmarks notebooks/src
lint: $(STAMP) ## check style and likely bugs with ruff (settings in pyproject.toml)
	$(PY) -m ruff check $(LINTED)

# The browser is Debian's chromium + chromium-driver, never one downloaded at run time
# (SE_OFFLINE keeps Selenium Manager from fetching anything).
E2E_DEBS := chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
E2E_STAMP := $(VENV)/.e2e-stamp

$(E2E_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e ".[course,capstone,test,e2e]"
	@touch $(E2E_STAMP)

e2e: $(E2E_STAMP) ## open notebook 01 in JupyterLab in headless Chromium, run it, move the explorer
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  echo "installing $(E2E_DEBS) with apt-get"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(E2E_DEBS); \
	fi
	SE_OFFLINE=true $(PY) -m pytest e2e -v

notebooks: $(STAMP) ## rebuild and execute notebooks from notebooks/src (e.g. make notebooks NB="03 04")
	$(PY) -m instructor.notebooks build $(NB)

BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e ".[course,test,bench]"
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) ## the machine, its roofline, every implementation vs the GEMM floor, scaling
	$(PY) benchmarks/bench.py --plot artifacts/bench.png

student: $(STAMP) ## build the student release: dist/student/ and dist/student.zip
	$(PY) -m instructor.release --out dist/student

# Each submission is graded in a bubblewrap sandbox (instructor/sandbox.py), Debian's
# `bubblewrap`, installed here when missing (with sudo when you are not root).
sandbox: ## install bubblewrap, the grader's sandbox, if missing
	@if ! command -v bwrap >/dev/null || ! command -v setpriv >/dev/null; then \
	  echo "installing bubblewrap with apt-get"; \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends bubblewrap util-linux; \
	fi

SUBMISSIONS ?=
GRADES ?= grades
GRADE_ARGS ?=
grade: $(STAMP) sandbox ## grade with the hidden tests: make grade SUBMISSIONS=<dir> [GRADES=grades] [GRADE_ARGS="--roster r.csv"]
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=<folder of submissions> [GRADES=<out dir>] [GRADE_ARGS=...]"; exit 2; }
	$(SUDO) $(PY) -m instructor.grade "$(SUBMISSIONS)" --out "$(GRADES)" $(GRADE_ARGS)

gradescope: $(STAMP) ## build the Gradescope autograder from the hidden tests: dist/gradescope/autograder.zip
	$(PY) -m instructor.gradescope build --out dist/gradescope

bench-grading: $(STAMP) sandbox ## time and peak memory of grading 150 sample submissions (sandboxed)
	$(SUDO) $(PY) benchmarks/grading.py -n 150

clean: ## remove caches and build output (keeps .venv)
	rm -rf .pytest_cache .hypothesis build dist grades artifacts
	find . -name __pycache__ -not -path './.venv/*' -exec rm -rf {} +
