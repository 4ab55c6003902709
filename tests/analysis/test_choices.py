"""The caller's choices against the pre-registered plan: what the analysis runs with."""

from __future__ import annotations

import dataclasses

import pytest

from analysis.choices import Choices
from analysis.pipeline import resolve
from analysis.results import Options
from tests.factories import make_trial

PLAN = make_trial(analysis={**make_trial().analysis.model_dump(), "alpha": 0.01}).analysis


def test_no_choice_means_the_plan() -> None:
    options = resolve(Choices(), PLAN, cluster=None, source="export file x.csv")
    assert options == Options("holm", 0.01, "newcombe", "lpm", None, 10, "export file x.csv")


def test_a_choice_overrides_the_plan() -> None:
    chosen = Choices("bonferroni", 0.05, "wald", "logit", 20)
    options = resolve(chosen, PLAN, cluster="location", source="event-log database")
    assert options == Options(
        "bonferroni", 0.05, "wald", "logit", "location", 20, "event-log database"
    )


def test_choices_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Choices().alpha = 0.1  # type: ignore[misc]
