# genja's developer entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
GEN := genja_rpc/_generated

.DEFAULT_GOAL := help

.PHONY: help install protos proto-check lint format test run clean bench bench-smoke chaos estate bytecode

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq -e '.[dev]' --config-settings editable_mode=compat
	touch $(STAMP)

install: $(STAMP) ## make .venv and install genja with its test and lint tools

# Bytecode for our own packages, as a wheel install has it. With PYTHONDONTWRITEBYTECODE set
# (some CI images, containers) an editable install would otherwise compile ~60 modules in
# every client and agent process it starts (~0.1 s each). Only stale files are rewritten.
bytecode: $(STAMP)
	@$(PY) -m compileall -q genja genja_rpc agent bench examples

protos: $(STAMP) ## regenerate genja_rpc/_generated from protos/
	rm -rf $(GEN)/genja
	mkdir -p $(GEN)
	$(PY) -m grpc_tools.protoc -I protos --python_out=$(GEN) --pyi_out=$(GEN) \
		--grpc_python_out=$(GEN) protos/genja/v1/*.proto
	touch $(GEN)/genja/__init__.py $(GEN)/genja/v1/__init__.py
	# The generated modules import each other as `genja.v1`, which is our domain package:
	# point them at their real home.
	sed -i -E 's/^from genja\.v1 import/from genja_rpc._generated.genja.v1 import/' \
		$(GEN)/genja/v1/*.py $(GEN)/genja/v1/*.pyi

proto-check: protos ## fail when the generated code differs from protos/
	@git diff --exit-code --stat -- $(GEN) && \
	  test -z "$$(git status --porcelain -- $(GEN))" || \
	  { echo "genja_rpc/_generated is stale: run 'make protos' and commit"; exit 1; }

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(STAMP) bytecode ## run the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

run: $(STAMP) bytecode ## show version over fakenos devices + sshd on loopback, through the agents
	$(PY) examples/show_version.py

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev,bench]' --config-settings editable_mode=compat
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) bytecode ## genja vs Nornir, every scenario (~20 min): table + bench/results/latest.json
	$(PY) -m bench $(BENCH_ARGS)

bench-smoke: $(BENCH_STAMP) bytecode ## every benchmark scenario once at a small size (~30 s)
	$(PY) -m bench --smoke

chaos: $(STAMP) bytecode ## 10,000 hosts while an agent is SIGKILLed every 2 s (~1 min): lost must be 0
	$(PY) -m bench._chaos $(CHAOS_ARGS)

estate: $(STAMP) bytecode ## 10 pools in network namespaces, 100,000 hosts, one pool killed (root, ~3 min)
	$(PY) -m bench.estate $(ESTATE_ARGS)

clean: ## remove the venv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
