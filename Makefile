# The single entry point for developers and CI. Every target sets up what it needs itself.
PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
COMPAT_VENV := .venv-compat
COMPAT_CIRQ_VENV := .venv-compat-cirq
COMPAT36_VENV := .venv-compat36
BENCH_VENV := .venv-bench
STAMP := $(VENV)/.installed-test
DEMO_STAMP := $(VENV)/.installed-package
SOURCES := setup.cfg setup.py
RUFF_CONFIG := --isolated --line-length 100 --target-version py311
RUFF_RULES := --select E,F,W,I,B,UP,N,SIM,RUF \
	--ignore E741,RUF001,RUF002,RUF003,RUF005,RUF015,RUF043,N802,N806,N818,SIM117,UP031,UP042
LINTED := cirq_iqm_ext tests examples

.PHONY: demo test test-fast lint typecheck format compat-env bench bench-compile bench-sampler bench-server clean

$(VENV_PY):
	$(PYTHON) -m venv $(VENV)
	$(VENV_PY) -m pip install --quiet --upgrade pip setuptools wheel

$(STAMP): $(VENV_PY) $(SOURCES)
	$(VENV_PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP) $(DEMO_STAMP)

# The demo needs the package alone, not the test tools.
$(DEMO_STAMP): $(VENV_PY) $(SOURCES)
	$(VENV_PY) -m pip install --quiet -e .
	touch $(DEMO_STAMP)

# The separate environment with IQM's official iqm-client 17.x, for the compatibility tests.
$(COMPAT_VENV)/bin/python:
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet "iqm-client==17.8"

# The archived cirq-iqm 14.x adapter imports only with cirq-core 1.5, so it gets its own environment.
$(COMPAT_CIRQ_VENV)/bin/python:
	$(PYTHON) -m venv $(COMPAT_CIRQ_VENV)
	$(COMPAT_CIRQ_VENV)/bin/python -m pip install --quiet "cirq-iqm==14.*" "cirq-core[contrib]==1.5.0"

# Today's official client and its Cirq adapter, for the IQM Server API profile.
$(COMPAT36_VENV)/bin/python:
	$(PYTHON) -m venv $(COMPAT36_VENV)
	$(COMPAT36_VENV)/bin/python -m pip install --quiet "iqm-client[cirq]==36.*"

compat-env: $(COMPAT_VENV)/bin/python $(COMPAT_CIRQ_VENV)/bin/python $(COMPAT36_VENV)/bin/python

demo: $(DEMO_STAMP)
	$(VENV_PY) examples/demo.py

test: $(STAMP) compat-env lint typecheck
	$(VENV_PY) -m pytest -q

test-fast: $(STAMP)
	$(VENV_PY) -m pytest -q -x -m "not compat"

lint: $(STAMP)
	$(VENV_PY) -m ruff check $(RUFF_CONFIG) $(RUFF_RULES) $(LINTED)
	$(VENV_PY) -m ruff format $(RUFF_CONFIG) --check $(LINTED)

format: $(STAMP)
	$(VENV_PY) -m ruff format $(RUFF_CONFIG) $(LINTED)
	$(VENV_PY) -m ruff check $(RUFF_CONFIG) $(RUFF_RULES) --fix $(LINTED)

typecheck: $(STAMP)
	$(VENV_PY) -m mypy cirq_iqm_ext

$(BENCH_VENV)/bin/python: $(SOURCES)
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[qasm,qsim,fast]" "qiskit>=1.2" "pytket>=1.30" "iqm-client==36.*"

# Every benchmark, then one summary table of the ratios against their baselines.
bench: bench-compile bench-sampler bench-server
	$(VENV_PY) tests/benchmarks/_report.py

# Square lattices against Cirq's pipeline and Qiskit; star devices against IQM's MOVE insertion.
bench-compile: $(BENCH_VENV)/bin/python
	$(BENCH_VENV)/bin/python tests/benchmarks/bench_compile.py --noise-aware
	$(BENCH_VENV)/bin/python tests/benchmarks/bench_star.py

# Against IQM's own Cirq adapter too, so it runs in the benchmark environment.
bench-sampler: $(BENCH_VENV)/bin/python
	$(BENCH_VENV)/bin/python tests/benchmarks/bench_sampler.py

bench-server: $(STAMP)
	$(VENV_PY) tests/benchmarks/bench_server.py
	$(VENV_PY) tests/benchmarks/bench_engine.py

clean:
	rm -rf $(VENV) $(COMPAT_VENV) $(COMPAT_CIRQ_VENV) $(COMPAT36_VENV) $(BENCH_VENV) .bench-results build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
