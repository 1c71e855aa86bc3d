# make demo / make test create the environment when it is missing, then do their job.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.adamtune-installed
# The machines keep a CPU build of torch 2.13.0 here; pin it so pip never fetches CUDA wheels.
WHEELS := $(wildcard /opt/wheels)
PIP    := $(PY) -m pip install --quiet $(if $(WHEELS),--find-links $(WHEELS))
LINTED := src tests $(wildcard benchmarks examples)

.PHONY: env demo test lint unit clean

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) "torch==2.13.0"
	$(PIP) -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/adamtune demo

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(VENV)/bin/pytest

test: lint unit

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
