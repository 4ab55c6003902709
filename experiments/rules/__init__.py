"""Design and ethics rules beyond the schema: each rule returns the problems it finds.

The rules live in four modules by subject: :mod:`.allocation` (arms and randomization),
:mod:`.texts` (languages and the disclosure), :mod:`.ethics` (elements, claims, figures,
messengers, what may be logged) and :mod:`.plan` (outcomes, analysis plan, power, schedule).

Every rule has an id, a one-line summary (listed in ``docs/trial-format.md``; a test keeps the
two in step), a row in the rule index of ``docs/ethics.md`` that says why it exists, and a test
with a trial file that trips it. The messages of the ethics rules end with a link to the section
of ``docs/ethics.md`` that explains them. Errors block ``nudgelab check`` and
``nudgelab trial load``; warnings are printed but do not block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Literal

from experiments.model import Trial
from experiments.problems import LineMap, Path, Problem


@dataclass(frozen=True)
class Settings:
    """Thresholds of the check (``nudgelab check --max-age-days ... --max-mde ...``)."""

    today: date
    max_age_days: int = 365
    max_mde_points: float = 5.0
    small_count: int = 10


@dataclass(frozen=True)
class Context:
    trial: Trial
    file: str
    lines: LineMap
    settings: Settings

    def problem(
        self,
        path: Path,
        message: str,
        rule: str,
        severity: Literal["error", "warning"] = "error",
        *,
        key: bool = False,
    ) -> Problem:
        return Problem(self.file, self.lines.line(path, key=key), path, message, severity, rule)


RuleFunction = Callable[[Context], Iterator[Problem]]


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    check: RuleFunction


RULES: list[Rule] = []


def rule(rule_id: str, summary: str) -> Callable[[RuleFunction], RuleFunction]:
    """Register a rule function under ``rule_id``."""

    def register(function: RuleFunction) -> RuleFunction:
        RULES.append(Rule(rule_id, summary, function))
        return function

    return register


def run_rules(trial: Trial, file: str, lines: LineMap, settings: Settings) -> list[Problem]:
    """Run every rule and return all problems found."""
    context = Context(trial, file, lines, settings)
    problems: list[Problem] = []
    for registered in RULES:
        problems.extend(registered.check(context))
    return problems


# Importing the rule modules registers their rules, in this order.
from experiments.rules import allocation, texts, ethics, plan  # noqa: E402, F401, I001

__all__ = ["RULES", "Context", "Rule", "Settings", "rule", "run_rules"]
