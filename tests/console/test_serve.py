"""`nudgelab serve --demo` prints the console's address and how to make the first account;
following it works, and the served app has the console's reports and exports."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from app.console.results import RESULTS_KEY
from app.db import get_engine
from nudgelab.cli import main
from nudgelab.results import RESULTS
from tests.console.helpers import Console


def test_serve_demo_prints_the_console_and_the_first_account_command(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.server

    served: list[tuple] = []
    monkeypatch.setattr(app.server, "serve", lambda *args, **_kw: served.append(args))
    result = CliRunner().invoke(main, ["serve", "--demo", "--port", "8080", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "Research console: http://127.0.0.1:8080/console/" in result.output
    command = re.search(
        r"nudgelab (user add you@example\.org --role admin --db \S+)", result.output
    )
    assert command, result.output
    # Following the printed instruction creates an admin who can sign in with the password shown.
    added = CliRunner().invoke(main, command[1].split())
    assert added.exit_code == 0, added.output
    password = re.search(r"one-time password[^:]*: (\S+)", added.output)
    assert password, added.output
    served_app = served[-1][0]()
    try:
        assert served_app.extensions[RESULTS_KEY] is RESULTS
        console = Console(served_app)
        console.get("/console/sign-in")
        response = console.post(
            "/console/sign-in", {"email": "you@example.org", "password": password[1]}
        )
        assert response.headers["Location"].endswith("/console/password")
    finally:
        get_engine(served_app).dispose()
