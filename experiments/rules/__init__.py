"""Design and ethics rules beyond the schema: each rule returns the problems it finds.

The rules live in five modules by subject: :mod:`.allocation` (arms and randomization),
:mod:`.texts` (languages and the disclosure), :mod:`.ethics` (elements, claims, figures,
messengers, what may be logged), :mod:`.plan` (outcomes, analysis plan, power, schedule) and
:mod:`.media` (images, narrations and the consent of the people in them).

Every rule has an id, a one-line summary (listed in ``docs/trial-format.md``; a test keeps the
two in step), a row in the rule index of ``docs/ethics.md`` that says why it exists, and a test
with a trial file that trips it. The messages of the ethics rules end with a link to the section
of ``docs/ethics.md`` that explains them. Errors block ``nudgelab check`` and
``nudgelab trial load``; warnings are printed but do not block.
"""

from __future__ import annotations

from experiments.media import MediaSource
from experiments.model import Trial
from experiments.problems import LineMap, Problem
from experiments.rules.registry import RULES, Context, Rule, Settings, rule

# Importing the rule modules registers their rules, in this order (the order of the output).
# isort: off
from experiments.rules import allocation, texts, ethics, plan, media  # noqa: F401
# isort: on


def run_rules(
    trial: Trial,
    file: str,
    lines: LineMap,
    settings: Settings,
    media_source: MediaSource | None = None,
) -> list[Problem]:
    """Run every rule and return all problems found (``media_source``: where the media files
    are read from)."""
    context = Context(trial, file, lines, settings, media_source)
    problems: list[Problem] = []
    for registered in RULES:
        problems.extend(registered.check(context))
    return problems


__all__ = ["RULES", "Context", "Rule", "Settings", "rule", "run_rules"]
