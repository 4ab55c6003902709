# The two set-up commands of the README:  `make kiosk`  and  `make test`.
PY ?= python3.11
## Test processes (pytest-xdist); each test has its own database schema or file.
TEST_JOBS ?= 2
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install kiosk test lint browser frontserver bench-tools screenshots calibration

$(BIN)/nudgelab: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## install: create .venv, install nudgelab with its test tools, compile the message catalogues
install: $(BIN)/nudgelab
	@if [ -d app/translations ]; then $(BIN)/pybabel -q compile -f -d app/translations; fi

## kiosk: start the kiosk app and the research console on SQLite (instance/) with the example
## trial and a kiosk registered; `make kiosk PORT=8080` listens on another port (default 5000)
PORT ?= 5000
kiosk: install
	$(BIN)/nudgelab serve --demo --port $(PORT)

## lint: ruff, the import contracts (experiments <- app, analysis; app -/- analysis) and the
## dependency audit (pip-audit: fails on a known vulnerability; when the vulnerability database
## cannot be reached it says the packages were NOT audited and does not fail, unless
## NUDGELAB_AUDIT_REQUIRED=1; see docs/deploy.md)
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python deploy/audit_dependencies.py

## browser: what the browser tests (tests/browser) need: Playwright for Python in .venv,
## axe-core from npm (node_modules/, git-ignored) and Debian's Chromium (apt-get, when this
## machine allows it). Without them the browser tests skip, and fail with CI=true.
browser: install
	@$(BIN)/python -c "import playwright" 2>/dev/null || $(BIN)/pip install --quiet "playwright>=1.40"
	@if [ ! -f node_modules/axe-core/axe.min.js ]; then \
	  if command -v npm >/dev/null; then npm ci --no-audit --no-fund --silent; \
	  else echo "npm not found: install node and npm for the browser tests' axe checks"; fi; fi
	@if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then \
	  sh deploy/apt_install.sh "for the browser tests" chromium; fi

## frontserver: Debian's nginx (apt-get, when this machine allows it) and openssl, for the
## fault tests of the deployed stack (tests/production). Without nginx those tests skip, and
## fail with CI=true.
frontserver:
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] || ! command -v openssl >/dev/null; then \
	  sh deploy/apt_install.sh "for tests/production" nginx openssl; fi

## bench-tools: what the benchmarks (bench/, run on demand) use besides the test tools: the
## front server, and Debian's wrk as the HTTP load generator of bench/ingest.py (without it
## the benchmark falls back to a slower Python client that shares the CPU with the servers)
bench-tools: install frontserver
	@if ! command -v wrk >/dev/null; then sh deploy/apt_install.sh "for bench/ingest.py" wrk; fi

## test: lint, then the whole test suite (SQLite and PostgreSQL, the kiosk in Chromium, the
## deployed stack behind nginx)
test: lint browser frontserver
	$(BIN)/pytest -n $(TEST_JOBS) --dist worksteal

## screenshots: run the browser tests on SQLite and copy their screenshots into docs/images/kiosk;
## take the research console's into docs/images/console
screenshots: browser
	$(BIN)/pytest -q tests/browser -k "not postgresql"
	$(BIN)/python -m tests.browser.docs_images
	$(BIN)/python -m tests.console.screenshots

## calibration: simulate the report's methods on the full grid, rewrite docs/calibration.md
calibration: install
	$(BIN)/nudgelab calibrate --seed 1 --jobs 2 --out docs/calibration.md
