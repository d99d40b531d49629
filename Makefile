# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
REQS := requirements.txt functions/requirements.txt review_app/requirements.txt

.PHONY: demo test test-fast lint bench bench-smoke docs iam-doc clean

$(STAMP): $(REQS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

## make demo [ONCE=1] [DATA=path/to/casting_data] [PORT=8080]: the whole pipeline on this machine
demo: $(STAMP)
	$(BIN)/python -m scripts.local.demo $(if $(ONCE),--once) $(if $(DATA),--data "$(DATA)") $(if $(PORT),--review-port $(PORT))

## make test: lint, then every test
test: $(STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make test-fast: the unit tests alone, for the inner loop (no emulator, no browser)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m unit -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## make bench: performance figures, printed and written to bench/results.json
bench: $(STAMP)
	$(BIN)/python -m bench

## make bench-smoke: every measurement once, small, to show it still runs (CI); nothing written
bench-smoke: $(STAMP)
	$(BIN)/python -m bench --smoke

## make docs: regenerate the permission trace, docs/iam.md (from the Pulumi program, under mocks) and docs/gcp-rules.md
docs: $(STAMP)
	$(BIN)/python -m scripts.iam_trace
	$(BIN)/python -m scripts.iam_doc > docs/iam.md.tmp && mv docs/iam.md.tmp docs/iam.md
	$(BIN)/python -m scripts.program.gcp_rules > docs/gcp-rules.md.tmp && mv docs/gcp-rules.md.tmp docs/gcp-rules.md

iam-doc: docs

clean:
	rm -rf $(VENV) .demo .pytest_cache
