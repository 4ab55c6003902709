"""The command line stays thin: no SQL, no tables, the rules' page named in its help."""

from __future__ import annotations

import ast
from pathlib import Path

from click.testing import CliRunner

from nudgelab.cli import main

CLI = Path(__file__).resolve().parents[2] / "nudgelab"

#: Everything nudgelab/ may take from SQLAlchemy: types for hints, and hiding a URL's password.
SQLALCHEMY_ALLOWED = {("sqlalchemy", "Engine"), ("sqlalchemy", "Connection"),
                      ("sqlalchemy.engine", "make_url")}  # fmt: skip


def _imported_names() -> set[tuple[str, str]]:
    """``(module, name)`` of every ``from module import name`` (``import module``: no name)."""
    found = set()
    for path in CLI.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {(node.module, alias.name) for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {(alias.name, "") for alias in node.names}
    return found


def test_the_command_line_writes_no_sql_and_imports_no_table() -> None:
    imported = _imported_names()
    assert {(m, n) for m, n in imported if m.startswith("sqlalchemy")} <= SQLALCHEMY_ALLOWED
    assert not {(m, n) for m, n in imported if m.startswith("experiments.eventlog")}
    assert ("experiments", "eventlog") not in imported


def test_the_demo_named_in_the_help_is_the_demo_set_up() -> None:
    from experiments.lifecycle import DEMO_TRIAL
    from nudgelab.cli.kiosk_commands import DEMO_TRIAL as SHOWN

    assert SHOWN == DEMO_TRIAL


def test_the_help_points_to_the_ethics_rules() -> None:
    for args in ([], ["check"]):
        shown = CliRunner().invoke(main, [*args, "--help"]).output
        assert "docs/ethics.md" in shown, args
    (threshold,) = [p for p in main.commands["export"].params if p.name == "threshold"]
    assert "docs/ethics.md#exports-and-retention" in str(threshold.help)
