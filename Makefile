# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install when the project metadata changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,lint]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/art-purify evaluate --defence heterogeneous --gradient surrogate --n 24 --out reports/demo

# The whole suite, with statement coverage of the package (at least 80 %, ART's bar for new code).
test: $(STAMP)
	$(BIN)/python -m pytest -q --cov=art_purify --cov-report=term --cov-fail-under=80 tests

# The same without the real-weight (slow) tests, for quick local runs.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" tests

# ART's quality gates: black (line length 120), pylint >= 9.6 with the project's configuration, mypy.
# Licence headers, typed public signatures and the layering are checked by tests/test_conventions.py and
# tests/test_layering.py, which `make test` runs.
lint: $(STAMP)
	$(BIN)/black --check --quiet art_purify tests benchmarks examples
	$(BIN)/pylint art_purify
	$(BIN)/mypy

clean:
	rm -rf $(VENV) reports build *.egg-info
