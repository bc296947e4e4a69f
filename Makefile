# Two commands on a fresh machine:  make demo  (the main job)  and  make test.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test lint typecheck check venv venv-dev model-report clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Workstation install: agent + training toolchain + test/lint tools.
$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e ".[train,dev]"
	touch $@

venv: $(VENV)/bin/python
venv-dev: $(VENV)/.dev-installed

## The main job: synthetic data -> train -> convert (4 variants) -> evaluate, ends with a report.
demo: $(VENV)/.dev-installed
	$(PY) scripts/model_demo.py --out out/demo

## The tests (real TensorFlow, real TFLite interpreter, real files).
test: $(VENV)/.dev-installed
	$(VENV)/bin/pytest -q

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check agent tools tests scripts
	$(VENV)/bin/ruff format --check agent tools tests scripts

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy

check: lint typecheck test

## The figures in docs/model-report.md: a larger run of the demo pipeline.
model-report: $(VENV)/.dev-installed
	$(PY) scripts/model_demo.py --out out/model-report --train-count 2000 --test-count 1000 --epochs 40

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
