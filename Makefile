# make demo / make test create the environment when it is missing, then do their job.
VENV   := .venv
PY     := $(VENV)/bin/python
BASE   := $(VENV)/.adamtune-installed
# The test tools and the optional extras the tests exercise (PostgreSQL driver, Ray): the demo
# does not need them, so a first `make demo` does not download them.
DEV    := $(VENV)/.adamtune-dev-installed
# The machines keep a CPU build of torch 2.13.0 here; pin it so pip never fetches CUDA wheels.
WHEELS := $(wildcard /opt/wheels)
PIP    := $(PY) -m pip install --quiet $(if $(WHEELS),--find-links $(WHEELS))
LINTED := src tests $(wildcard benchmarks examples)

.PHONY: env demo test lint unit bench bench-quick tables tables-side clean

env: $(DEV)

$(BASE): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) "torch==2.13.0"
	$(PIP) -e .
	touch $(BASE)

$(DEV): $(BASE)
	$(PIP) -e ".[dev]"
	touch $(DEV)

demo: $(BASE)
	$(VENV)/bin/adamtune demo

lint: $(DEV)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)
	$(VENV)/bin/mypy

unit: $(DEV)
	$(VENV)/bin/pytest

test: lint unit

# The tuning-quality comparison against the stored training tables (docs/benchmarks.md):
# bench runs all of it (hours on 2 cores), bench-quick budgets 8 and 20 with 5 repetitions.
bench: $(DEV)
	$(PY) benchmarks/quality.py fidelity
	$(PY) benchmarks/quality.py compare
	$(PY) benchmarks/quality_floors.py

bench-quick: $(DEV)
	$(PY) benchmarks/quality.py compare --quick

# Retrain the tables themselves (about 3 hours on 2 cores; each build resumes if interrupted).
tables: $(DEV)
	$(PY) benchmarks/quality_tables.py --workload mnist1d-mlp --configs 2048 --seeds 2 --steps 2000
	$(PY) benchmarks/quality_tables.py --workload mnist1d-mlp --configs 2048 --seeds 4 --steps 2000 --more-seeds
	$(PY) benchmarks/quality_tables.py --workload mnist1d-cnn --configs 2048 --seeds 2 --steps 500
	$(PY) benchmarks/quality_tables.py --workload stdlib-lm --configs 320 --seeds 2 --steps 400 --chunk 32
	@echo "The stored stdlib-lm table grew from there in four steps, each followed by 'make bench'"
	@echo "(docs/benchmarks.md: Spot checks, The language model's table grown, ... checked where it predicts best):"
	@echo "  $(PY) benchmarks/quality_spotcheck.py --workload stdlib-lm --count 40 --augment"
	@echo "  $(PY) benchmarks/quality_tables.py --workload stdlib-lm --configs 768 --seeds 2 --steps 400 --chunk 64 --more-configs"
	@echo "  $(PY) benchmarks/quality_spotcheck.py --workload stdlib-lm --count 40 --by-choice --augment"
	@echo "  $(PY) benchmarks/quality_spotcheck.py --workload stdlib-lm --count 20 --lowest --augment"
	@echo "Each MNIST-1D table (W) gained 60 spot-checked rows after a 'make bench', then another (session 34):"
	@echo "  $(PY) benchmarks/quality_spotcheck.py --workload W --count 40 --by-choice --augment"
	@echo "  $(PY) benchmarks/quality_spotcheck.py --workload W --count 20 --lowest --augment"

# The MLP's 8000-step side table (3 minutes on one GPU, about 4 hours on 2 cores).
tables-side: $(DEV)
	$(PY) benchmarks/quality_tables.py --workload mnist1d-mlp --configs 2048 --seeds 4 --steps 8000 \
		--chunk 1024 --out benchmarks/tables/steps8000/mnist1d-mlp.npz

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
