"""Fixtures of the console tests: the app as ``nudgelab serve`` builds it (with the reports and
exports of the composition root), on each database, with one account per role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from app.db import dispose
from nudgelab.results import RESULTS
from tests.app.conftest import translations  # noqa: F401  (fixture: the compiled catalogues)
from tests.console.helpers import PASSWORD, Console, add_account
from tests.factories import PUBLIC_URL


@pytest.fixture
def make_console_app(db_url: str, translations: str) -> Iterator[Callable[..., Flask]]:  # noqa: F811
    apps: list[Flask] = []

    def factory(**config: Any) -> Flask:
        from app import create_app

        settings = {
            "DATABASE_URL": db_url,
            "SECRET_KEY": "console-test-secret-" + "0123456789abcdef" * 4,
            "TESTING": True,
            "BABEL_TRANSLATION_DIRECTORIES": translations,
            "PUBLIC_URL": PUBLIC_URL,
            # The tests sign in many times from one address; test_sign_in.py tests the limit.
            "SIGN_IN_LIMIT": None,
            **config,
        }
        app = create_app(settings, results=RESULTS)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        dispose(app)


@pytest.fixture
def console_app(make_console_app: Callable[..., Flask]) -> Flask:
    app = make_console_app()
    for email, role in ACCOUNTS.items():
        add_account(app, email, role)
    return app


#: One account per role (the researcher "owner" becomes a member of the trials it loads).
ACCOUNTS = {
    "owner@example.org": "researcher",
    "other@example.org": "researcher",
    "evaluator@example.org": "evaluator",
    "admin@example.org": "admin",
}


@pytest.fixture
def owner(console_app: Flask) -> Console:
    return Console(console_app).signed_in("owner@example.org", PASSWORD)


@pytest.fixture
def evaluator(console_app: Flask) -> Console:
    return Console(console_app).signed_in("evaluator@example.org", PASSWORD)


@pytest.fixture
def admin(console_app: Flask) -> Console:
    return Console(console_app).signed_in("admin@example.org", PASSWORD)
