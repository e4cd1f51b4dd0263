# The two commands of the README. Each creates .venv from requirements.txt when it is missing or stale.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name python3 > /dev/null
	touch $(STAMP)

## book: execute every chapter and build _build/html (warnings are errors, a failing cell fails the build)
book: $(STAMP)
	rm -rf _build/.doctrees _build/jupyter_execute
	mkdir -p _build
	set -o pipefail; $(BIN)/jupyter-book build . -n -W --keep-going 2>&1 | tee _build/build.log

## test: the package's tests
test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf _build
