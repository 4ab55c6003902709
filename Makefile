# The two set-up commands of the README:  `make kiosk`  and  `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install kiosk test lint calibration

$(BIN)/nudgelab: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## install: create .venv, install nudgelab with its test tools, compile the message catalogues
install: $(BIN)/nudgelab
	@if [ -d app/translations ]; then $(BIN)/pybabel -q compile -f -d app/translations; fi

## kiosk: start the kiosk app on SQLite (instance/) with the example trial and a kiosk registered
kiosk: install
	$(BIN)/nudgelab serve --demo

## lint: ruff and the import contracts (experiments <- app, analysis; app -/- analysis)
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## test: lint, then the whole test suite (SQLite and PostgreSQL)
test: lint
	$(BIN)/pytest

## calibration: simulate the report's methods on the full grid, rewrite docs/calibration.md
calibration: install
	$(BIN)/nudgelab calibrate --seed 1 --jobs 2 --out docs/calibration.md
