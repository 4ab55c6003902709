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


def test_a_served_app_loads_the_statistics_only_at_its_first_report(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A `nudgelab serve` worker starts without pandas, scipy, statsmodels or matplotlib; its
    first export brings them in (so each worker pays for them only when it makes one)."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "from nudgelab.results import create_console_app\n"
        f"app = create_console_app({{'DATABASE_URL': 'sqlite:///{tmp_path}/x.db', "
        "'SECRET_KEY': 'k' * 8 + '0123456789abcdef' * 4})\n"
        "heavy = ('analysis', 'pandas', 'scipy', 'statsmodels', 'matplotlib', 'numpy')\n"
        "print(sorted(set(heavy) & set(sys.modules)))\n"
        "from nudgelab.results import RESULTS\n"
        "from app.db import get_engine\n"
        "try:\n"
        "    RESULTS.export(get_engine(app), 'no-such-trial')\n"
        "except Exception as error:\n"
        "    print(type(error).__name__)\n"
        "print(sorted(set(heavy) & set(sys.modules)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    before, _error, after = result.stdout.strip().splitlines()
    assert before == "[]"
    assert {"analysis", "pandas"} <= set(ast.literal_eval(after))
