"""The adjusted estimator follows the trial's randomization, and the report says which and why."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from analysis import analyze
from analysis.estimator_choice import choose_adjustment
from analysis.report import render_json, render_markdown
from tests.analysis.sim_helpers import simulated
from tests.factories import make_trial


@pytest.mark.parametrize(
    ("method", "strata", "unit", "expected", "says"),
    [
        ("block", ["location"], "visit", (("location",), None), "location is a stratum"),
        (
            "block",
            ["location", "language"],
            "visit",
            (("location", "language"), None),
            "location and language are strata of the randomization, not clusters",
        ),
        ("hash", ["location"], "visit", ((), None), "pre-treatment covariates, not clusters"),
        ("simple", [], "visit", ((), None), "simple randomization"),
        ("block", ["location"], "kiosk_day", (("location",), "kiosk_day"), "clustered by"),
    ],
)
def test_strata_and_cluster_come_from_the_randomization(
    method: str, strata: list[str], unit: str, expected: tuple, says: str
) -> None:
    plan = choose_adjustment(SimpleNamespace(method=method, strata=strata, unit=unit))
    assert (plan.strata, plan.cluster) == expected
    assert says in plan.reason


def test_the_factory_trial_is_block_randomized_within_location() -> None:
    plan = choose_adjustment(make_trial().randomization)
    assert plan.strata == ("location",) and plan.cluster is None


def test_the_report_uses_lin_with_hc2_and_says_why(db_url: str) -> None:
    engine, trial = simulated(db_url, 600)
    report = analyze(trial, engine, record_look=False)
    engine.dispose()
    assert report.options.cluster is None and report.options.strata == ("location",)
    adjusted = report.primary.adjusted
    assert adjusted and all(a.se_type == "HC2" and a.df is None for a in adjusted)
    assert all(a.strata == ("location",) and a.covariates == ("language",) for a in adjusted)
    assert adjusted[0].estimator.startswith("Lin (2013) interacted regression")
    text = render_markdown(report)
    lin = "Lin (2013) interacted regression (arm indicators, centred indicators of location, "
    assert lin + "language and their interactions); HC2 standard errors" in text
    assert "location is a stratum of the randomization, not a cluster" in text
    assert "not corrected for multiple comparisons" in text
    json_text = render_json(report)
    assert '"adjustment_reason": "visits are randomized individually' in json_text
    assert '"estimator": "Lin (2013) interacted regression' in json_text
