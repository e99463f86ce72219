# `make demo` and `make test` work on a fresh machine: they install what they need first.
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: install compare-deps data demo test lint bench clean

# torch==2.13.0 is the CPU build on local disk; installing it first means the `torch>=2.2`
# requirement of the package is already satisfied and pip never fetches a CUDA build.
install:
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"

demo: install
	$(PYTHON) -m otgen reproduce eotgm-gauss4 --quick --out demo-output

# Reference packages for the metric agreement tests (tests/metrics/test_agreement.py), from PyPI.
compare-deps: install
	$(PIP) install -q -e ".[dev,compare]"
	$(PIP) install -q --no-deps pytorch-fid==0.3.0 torch-fidelity==0.4.0

# Debian's Fashion-MNIST (/usr/share/datasets/fashion-mnist) for the tests that need real data;
# needs root and apt. Elsewhere: `otgen data fetch fashion-mnist` (downloads into the cache).
data:
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && apt-get install -y -q dataset-fashion-mnist; \
	else \
		echo "make data: needs root and apt-get; run: otgen data fetch fashion-mnist"; \
	fi

test: compare-deps
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
