"""Real-browser tests of the kiosk: Playwright for Python driving Debian's Chromium.

The kiosk app runs in a thread on a free local port (SQLite and PostgreSQL, like every other
app test), with the Tea Room example trial loaded and one kiosk registered. The browser is
``/usr/bin/chromium`` (or ``NUDGELAB_TEST_CHROMIUM``), started headless with every feature that
would reach outside hosts switched off. Without Playwright or Chromium the tests are skipped on
a developer machine and **fail** with ``CI=true``; ``make test`` installs both.

Screenshots of every screen go to ``tests/browser/artifacts/`` (git-ignored).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from app import create_app
from app.db import dispose
from experiments.eventlog import upgrade
from tests.app.conftest import make_app, translations  # noqa: F401  (fixtures)
from tests.app.visitor import EXAMPLE, add_kiosk, run_trial
from tests.factories import PUBLIC_URL

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
@dataclass
class LiveKiosk:
    """The kiosk app served on a local port, with the example trial and one kiosk."""

    app: Flask
    base: str
    path: str

    @property
    def url(self) -> str:
        return self.base + self.path


@contextmanager
def serving(app: Flask) -> Iterator[LiveKiosk]:
    """Serve ``app`` (threaded) on a free local port with the example trial and one kiosk."""
    trial = run_trial(app, EXAMPLE.read_text(encoding="utf-8"))
    path = add_kiosk(app, trial, "gezinslocatie-katwijk")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveKiosk(app, f"http://127.0.0.1:{server.server_port}", path)
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def live_kiosk(make_app: Callable[..., Flask]) -> Iterator[LiveKiosk]:  # noqa: F811
    """The kiosk on the test database (SQLite and PostgreSQL)."""
    with serving(make_app(PUBLIC_URL=PUBLIC_URL)) as kiosk:
        yield kiosk


@pytest.fixture
def layout_kiosk(tmp_path: Path, translations: str) -> Iterator[LiveKiosk]:  # noqa: F811
    """The kiosk on a SQLite file, for tests of what the browser draws (no database in it)."""
    url = f"sqlite:///{tmp_path / 'layout.db'}"
    upgrade(url)
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "BABEL_TRANSLATION_DIRECTORIES": translations,
            "PUBLIC_URL": PUBLIC_URL,
            # The layout tests start visit after visit on one kiosk within seconds; the start
            # interval and the per-address limit (tests/app/test_limits.py) would refuse them.
            "START_INTERVAL_SECONDS": 0,
            "START_LIMIT": None,
        }
    )
    try:
        with serving(app) as kiosk:
            yield kiosk
    finally:
        dispose(app)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: runs the kiosk in headless Chromium (tests/browser; -m 'not browser')"
    )
