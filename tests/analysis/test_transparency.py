"""Building the transparency values: deviations, deletion date, looks."""

from __future__ import annotations

from datetime import UTC, date, datetime

from analysis.transparency import (
    arms_shown,
    deletion,
    looks_while_running,
    option_deviations,
    version_deviations,
)
from experiments.store import TrialHistory
from tests.factories import BASE, make_trial


def test_analysis_options_that_differ_from_the_plan() -> None:
    plan = make_trial()
    assert option_deviations(plan, correction="holm", alpha=0.05, interval="newcombe") == []
    found = option_deviations(plan, correction="bh", alpha=0.01, interval="wald")
    assert [(d.what, d.planned, d.actual) for d in found] == [
        ("correction", "holm", "bh"),
        ("alpha", "0.05", "0.01"),
        ("interval", "newcombe (default)", "wald"),
    ]


def test_version_diff_names_each_change() -> None:
    plan = make_trial()
    arms = [dict(arm) for arm in BASE["arms"]]
    arms[1] = {**arms[1], "weight": 2}
    analysed = make_trial(
        arms=arms, title="Renamed", schedule={"start": "2027-01-11", "end": "2027-03-28"}
    )
    found = {(d.kind, d.what): d for d in version_deviations(plan, analysed)}
    assert found[("date changed", "schedule.start")].actual == "2027-01-11"
    assert found[("arm changed", "gain")].actual.startswith("element gain_frame, weight 2")
    assert found[("trial file changed", "title")].planned == "Test trial"
    assert version_deviations(plan, plan) == []


def test_deletion_date_from_stop_or_schedule() -> None:
    trial = make_trial()  # schedule ends 2027-03-28, retention 730 days
    assert deletion(trial, TrialHistory())[0] == date(2029, 3, 27)
    stopped = TrialHistory(stopped_at=datetime(2027, 2, 1, 12, tzinfo=UTC))
    assert deletion(trial, stopped) == (
        date(2029, 1, 31),
        "730 days after the day the trial was stopped, 2027-02-01",
    )


def test_looks_before_the_stop() -> None:
    looks = (datetime(2027, 1, 10, tzinfo=UTC), datetime(2027, 2, 10, tzinfo=UTC))
    record = TrialHistory(looks=looks, stopped_at=datetime(2027, 2, 1, tzinfo=UTC))
    assert looks_while_running(record, datetime(2027, 3, 1, tzinfo=UTC)) == 1
    assert looks_while_running(TrialHistory(looks=looks), datetime(2027, 3, 1, tzinfo=UTC)) == 3
    assert looks_while_running(TrialHistory(looks=looks), None) == 2


def test_arms_shown_carry_every_language_claim_and_figure() -> None:
    shown = {arm.id: arm for arm in arms_shown(make_trial())}
    assert [m[0] for m in shown["gain"].materials] == ["en", "ar"]
    assert shown["gain"].strength == "weak" and shown["control"].strength == "none"
    assert "IOM Netherlands website" in shown["gain"].claims[0]
    assert "loc-a: 34" in (shown["norm"].figure or "")
