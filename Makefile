# The two commands of the README. Each creates .venv from requirements.txt when it is missing or stale.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book test browser-check clean

MATHJAX_VERSION := 3.2.2
MATHJAX := _static/mathjax/tex-mml-chtml.js

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name python3 > /dev/null
	touch $(STAMP)

## MathJax served from the book itself, so a downloaded copy renders math offline (fetched once with npm)
$(MATHJAX):
	@command -v npm > /dev/null || { echo "make: npm is needed once, to fetch MathJax $(MATHJAX_VERSION)" >&2; exit 1; }
	rm -rf _build/mathjax _static/mathjax
	mkdir -p _build/mathjax _static/mathjax/output/chtml
	cd _build/mathjax && npm pack --silent mathjax@$(MATHJAX_VERSION) > /dev/null && tar -xzf mathjax-$(MATHJAX_VERSION).tgz
	cp -r _build/mathjax/package/es5/{tex-mml-chtml.js,input,ui,a11y} _static/mathjax/
	cp -r _build/mathjax/package/es5/output/chtml/fonts _static/mathjax/output/chtml/
	cp _build/mathjax/package/LICENSE _static/mathjax/

## book: execute every chapter and build _build/html (warnings are errors, a failing cell fails the build; a failed
## build ends with a summary of its problems: file, line, failed cell's exception or warning)
book: $(STAMP) $(MATHJAX)
	rm -rf _build/.doctrees _build/jupyter_execute
	mkdir -p _build
	set -o pipefail; $(BIN)/jupyter-book build . -n -W --keep-going 2>&1 | tee _build/build.log \
		|| { $(BIN)/python -m learnability.support.build_log _build/build.log; exit 1; }
	cp _build/jupyter_execute/book/*.ipynb _build/html/book/   # executed notebooks, for the .ipynb download item

## test: lint and format check (ruff, pinned in requirements.txt; rules in pyproject.toml), then the package's tests
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

## browser-check: open every page of _build/html in headless Chromium (installs Debian's chromium if missing)
browser-check: $(STAMP)
	command -v chromium > /dev/null || apt-get install -y -q chromium > /dev/null \
		|| { apt-get update -q > /dev/null && apt-get install -y -q chromium > /dev/null; }
	$(BIN)/python .ci/browser_check.py

clean:
	rm -rf _build
