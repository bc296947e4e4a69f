# Two commands on a fresh machine:  make demo  (the main job)  and  make test.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

AGENT_VENV ?= .venv-agent
APY := $(AGENT_VENV)/bin/python

.PHONY: demo test lint typecheck check venv venv-dev model-demo demo-model model-report bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Workstation install: agent + training toolchain + test/lint tools.
$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install --quiet -e ".[train,dev]"
	touch $@

venv: $(VENV)/bin/python
venv-dev: $(VENV)/.dev-installed

# Device install: the agent alone, no TensorFlow (what a Raspberry Pi gets).
$(AGENT_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(AGENT_VENV)
	$(APY) -m pip install --quiet --upgrade pip
	$(APY) -m pip install --quiet -e .
	touch $@

## The main job: the agent inspects a generated line video with the bundled int8 model and publishes
## over MQTT (a local mosquitto); ends with precision/recall against the ground truth and an HTML report.
demo: $(AGENT_VENV)/.installed
	$(APY) scripts/agent_demo.py --out out/agent-demo

## The toolchain end to end: synthetic data -> train -> convert (4 variants) -> evaluate.
model-demo: $(VENV)/.dev-installed
	$(PY) scripts/model_demo.py --out out/model-demo

## Rebuild the bundled model in models/demo/ (synth -> train -> convert -> evaluate -> line calibration);
## the figures in docs/model-report.md.
demo-model: $(VENV)/.dev-installed
	$(PY) scripts/build_demo_model.py --out out/demo-model --models models/demo

## The tests (real TensorFlow, real TFLite interpreter, real files).
test: $(VENV)/.dev-installed
	$(VENV)/bin/pytest -q

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check agent tools tests scripts benchmarks
	$(VENV)/bin/ruff format --check agent tools tests scripts benchmarks

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy

check: lint typecheck test

## A larger run of the toolchain demo (all four variants on 2,000 / 1,000 images).
model-report: $(VENV)/.dev-installed
	$(PY) scripts/model_demo.py --out out/model-report --train-count 2000 --test-count 1000 --epochs 40

## The benchmark suite (docs/performance.md): pipeline vs naive vs ceilings, sweeps, dtypes, soak (~25 min).
bench: $(VENV)/.dev-installed
	PYTHON=$(PY) benchmarks/run.sh

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
