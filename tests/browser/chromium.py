"""The one headless Chromium of a test session, and axe-core, for every real-browser test.

A pytest plugin (``pytest_plugins`` in tests/conftest.py), so the kiosk's and the console's
browser tests share one session fixture: two ``sync_playwright()`` sessions alive at once fail
("Sync API inside the asyncio loop"). Without Playwright, Chromium or axe-core the tests are
skipped on a developer machine and **fail** with ``CI=true``; ``make test`` installs all three.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the browser tests must run, not skip; run make test)")
    pytest.skip(f"{reason}; make test installs it")


def chromium_path() -> str | None:
    configured = os.environ.get("NUDGELAB_TEST_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session (each test gets its own context)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed")
    executable = chromium_path()
    if executable is None:
        _unavailable("Chromium is not installed (Debian: apt-get install chromium)")
    # launch() starts Chromium with a new, empty profile of its own (a temporary
    # user-data-dir, removed on close).
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        _unavailable("axe-core is not installed (npm ci)")
    return AXE.read_text(encoding="utf-8")
