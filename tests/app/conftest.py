"""Fixtures of the kiosk tests: an app on each database (``db_url``), running trials, kiosks.

The interface catalogues are compiled once per session from the committed ``.po`` files into a
temporary folder, so the tests never depend on ``make install`` having run and always see the
current translations.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask

from app import create_app
from app.db import dispose
from app.i18n import TRANSLATIONS
from experiments.model import Trial
from tests.app.visitor import EXAMPLE, Visitor, add_kiosk, run_trial
from tests.factories import PUBLIC_URL, trial_yaml


@pytest.fixture(scope="session")
def translations(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The committed catalogues, compiled like ``pybabel compile`` does."""
    target = tmp_path_factory.mktemp("translations")
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        folder = target / po.relative_to(TRANSLATIONS).parent
        folder.mkdir(parents=True)
        shutil.copy(po, folder / "messages.po")
        with po.open("rb") as source, (folder / "messages.mo").open("wb") as compiled:
            write_mo(compiled, read_po(source))
    return str(target)


@pytest.fixture
def make_app(db_url: str, translations: str) -> Iterator[Callable[..., Flask]]:
    """Build apps on the test database; ``make_app(INACTIVITY_SECONDS=5)`` overrides."""
    apps: list[Flask] = []

    def factory(**config: Any) -> Flask:
        settings = {
            "DATABASE_URL": db_url,
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "BABEL_TRANSLATION_DIRECTORIES": translations,
            "PUBLIC_URL": PUBLIC_URL,
            # Many tests start visits back to back on one kiosk from one address: the start
            # rules are off here and tested on their own (tests/app/test_limits.py).
            "START_INTERVAL_SECONDS": 0,
            "START_LIMIT": None,
            **config,
        }
        app = create_app(settings)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        dispose(app)


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def factory_trial(app: Flask, request: pytest.FixtureRequest) -> Trial:
    """The small en/ar test trial, running; ``indirect`` params override its top-level keys."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    return run_trial(app, trial_yaml(**overrides))


@pytest.fixture
def kiosk_path_a(app: Flask, factory_trial: Trial) -> str:
    return add_kiosk(app, factory_trial, "loc-a")


@pytest.fixture
def visitor(app: Flask, kiosk_path_a: str) -> Visitor:
    return Visitor(app, kiosk_path_a)


@pytest.fixture
def example_trial(app: Flask) -> Trial:
    """The Tea Room example trial (nl/en/ar, five arms), running."""
    return run_trial(app, EXAMPLE.read_text(encoding="utf-8"))
