"""Docs that cannot drift: every rule, command and set-up step the code has is documented."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from experiments.rules import RULES
from nudgelab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_every_rule_is_documented_with_its_summary() -> None:
    docs = (ROOT / "docs" / "trial-format.md").read_text()
    for rule in RULES:
        assert f"| `{rule.id}` | {rule.summary} |" in docs, rule.id


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in main.commands:
        assert re.search(rf"nudgelab {re.escape(name)}\b", readme), name
        assert CliRunner().invoke(main, [name, "--help"]).exit_code == 0


def test_readme_has_exactly_two_setup_commands_and_ci_uses_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in setup.strip().splitlines()]
    assert commands == ["make kiosk", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert [line for line in ci.splitlines() if line.startswith("make ")] == ["make test"]
