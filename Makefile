# Puente: the two commands a newcomer needs are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n 2

.PHONY: install demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[postgres]'
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[postgres,test]'
	touch $@ $(VENV)/.installed

## install: create .venv and install the app (the `puente` command) in it; no hub is set up or served
install: $(VENV)/.installed

## demo: install, create a SQLite hub under instance/, seed demo data, serve on 127.0.0.1:8000
demo: $(VENV)/.installed
	PUENTE_INSTANCE_PATH=$${PUENTE_INSTANCE_PATH:-$(CURDIR)/instance} $(BIN)/puente demo

## test: install with test extras, lint, type-check the pure packages, run every test
test: $(VENV)/.installed-test lint
	@rc=0; $(BIN)/python -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy

## bench: run the benchmarks (figures go in bench/README.md)
bench: $(VENV)/.installed-test
	$(BIN)/python bench/validate.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
