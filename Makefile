# darkhaloscope: every target bootstraps .venv from the project's own files.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DHS := $(VENV)/bin/darkhaloscope
STAMP := $(VENV)/.installed
CONFIG ?= configs/demo.yaml
OUT ?= out
export PYSPARK_PYTHON := $(abspath $(PY))

.PHONY: help venv demo survey tasks hosts bank dataset report test test-fast bench lint train-demo emr-package emr-run clean

help:
	@echo "make demo   - synthetic survey + tasks -> stage (host table) + bank -> Spark dataset -> report, under $(OUT)/"
	@echo "make test   - the whole test suite (unit, integration, slow)"
	@echo "make bench  - benchmarks -> $(OUT)/bench/results.json"
	@echo "make lint   - ruff"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[spark,train,emr,dev]'
	touch $(STAMP)

venv: $(STAMP)

survey: $(STAMP)
	$(DHS) build-survey --config $(CONFIG) --out $(OUT)/survey

tasks: survey
	$(DHS) build-tasks --config $(CONFIG) --catalogs $(OUT)/survey/south/sweep/10.1 --out $(OUT)/tasks

bank: $(STAMP)
	$(DHS) build-bank --config $(CONFIG) --out $(OUT)/bank.h5

hosts: tasks
	$(DHS) stage --config $(CONFIG) --tasks $(OUT)/tasks --bricks $(OUT)/survey/south --out $(OUT)/hosts --master "local[2]" --summary-json $(OUT)/hosts/stage-summary.json

dataset: hosts bank
	$(DHS) generate --config $(CONFIG) --hosts $(OUT)/hosts/hosts --bank $(OUT)/bank.h5 --out $(OUT)/dataset --master "local[2]" --summary-json $(OUT)/dataset/generate-summary.json

report: dataset
	$(DHS) report --config $(CONFIG) --dataset $(OUT)/dataset/demo --bank $(OUT)/bank.h5

demo: report

test: $(STAMP)
	$(PY) -m pytest -q tests

test-fast: $(STAMP)
	$(PY) -m pytest -q tests/unit

bench: $(STAMP)
	$(PY) benchmarks/run_all.py --config $(CONFIG) --out $(OUT)/bench

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests jobs benchmarks emr

train-demo: $(STAMP)
	$(DHS) train --config configs/train-demo.yaml --dataset $(OUT)/dataset/demo --out runs/demo --device cpu

emr-package: $(STAMP)
	$(PY) -m darkhaloscope.emr package --config configs/emr-dr10.yaml

emr-run: $(STAMP)
	$(PY) -m darkhaloscope.emr launch --config configs/emr-dr10.yaml

clean:
	rm -rf $(OUT) runs
