# `make demo` and `make test` work on a fresh machine: they install what they need first.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install demo test lint bench clean

# torch==2.13.0 is the CPU build on local disk; installing it first means the `torch>=2.2`
# requirement of the package is already satisfied and pip never fetches a CUDA build.
install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"

demo: install
	$(PYTHON) -m otgen reproduce eotgm-gauss4 --quick --out demo-output

test: install
	$(PYTHON) -m pytest -q

lint:
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks

bench: install
	$(PIP) install -q ".[bench]"
	$(PYTHON) benchmarks/sinkhorn.py
	$(PYTHON) benchmarks/semidiscrete.py
	$(PYTHON) benchmarks/engine.py

clean:
	rm -rf demo-output .pytest_cache build src/*.egg-info
