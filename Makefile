# The two set-up commands of the README:  `make kiosk`  and  `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install kiosk test lint browser screenshots calibration

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

## browser: what the browser tests (tests/browser) need: Playwright for Python in .venv,
## axe-core from npm (node_modules/, git-ignored) and Debian's Chromium (apt-get, when this
## machine allows it). Without them the browser tests skip, and fail with CI=true.
browser: install
	@$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/pip install --quiet "playwright>=1.40"
	@if [ ! -f node_modules/axe-core/axe.min.js ]; then \
	  if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent; \
	  else echo "npm not found: install node and npm for the browser tests' axe checks"; fi; fi
	@if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && apt-get install -y -q chromium; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null && command -v apt-get >/dev/null; then \
	    sudo apt-get update -q && sudo apt-get install -y -q chromium; \
	  else echo "Chromium not found and apt-get not allowed here: install chromium for the browser tests"; fi; fi

## test: lint, then the whole test suite (SQLite and PostgreSQL, the kiosk in Chromium)
test: lint browser
	$(BIN)/pytest

## screenshots: run the browser tests on SQLite and copy their screenshots into docs/images/kiosk
screenshots: browser
	$(BIN)/pytest -q tests/browser -k "not postgresql"
	$(BIN)/python -m tests.browser.docs_images

## calibration: simulate the report's methods on the full grid, rewrite docs/calibration.md
calibration: install
	$(BIN)/nudgelab calibrate --seed 1 --jobs 2 --out docs/calibration.md
