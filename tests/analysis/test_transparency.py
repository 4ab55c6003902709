"""Building the transparency values: deviations, deletion date, looks."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from analysis import analyze
from analysis.report import render_markdown
from analysis.transparency import (
    arms_shown,
    deletion,
    looks_while_running,
    option_deviations,
    sample_size_deviations,
    schedule_deviations,
    version_deviations,
    visits_by_day,
)
from experiments import store
from experiments.store import TrialHistory
from tests.analysis.sim_helpers import simulated
from tests.factories import BASE, make_trial, trial_dict, trial_yaml


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


# -- the data against the plan: sample size and schedule -----------------------------------------


def test_more_visits_than_planned_is_a_deviation_even_while_running() -> None:
    (found,), notes = sample_size_deviations(4000, 19_613, running=True)
    assert notes == []
    assert (found.kind, found.what) == ("sample size", "more analysed visits than planned")
    assert found.planned == "4,000 analysed visits (±10% tolerated: 3,600 to 4,400)"
    assert found.actual == "19,613 (490% of the plan)"


def test_fewer_visits_than_planned_is_a_note_while_running_and_a_deviation_after() -> None:
    assert sample_size_deviations(4000, 3600, running=False) == ([], [])  # 10% short: tolerated
    assert sample_size_deviations(4000, 4400, running=False) == ([], [])
    assert sample_size_deviations(4000, 4401, running=False)[0]
    found, notes = sample_size_deviations(4000, 3599, running=True)
    assert found == []
    (note,) = notes
    assert note.startswith("The trial is still running: 3,599 of 4,000 planned visits analysed")
    assert "not a deviation" in note
    (short,), notes = sample_size_deviations(4000, 1000, running=False)
    assert notes == []
    assert short.what == "fewer analysed visits than planned"
    assert short.actual == "1,000 (25% of the plan); the trial is not running"
    assert sample_size_deviations(100, 80, running=False, tolerance=0.25) == ([], [])


def test_visits_before_the_start_or_after_the_end_are_deviations() -> None:
    start, end = date(2027, 1, 4), date(2027, 3, 28)
    days = {date(2027, 1, 2): 3, date(2027, 1, 3): 4, start: 50, end: 20, date(2027, 4, 2): 40}
    (early, late), notes = schedule_deviations(start, end, days, 10)
    assert notes == []
    assert (early.kind, early.what) == (
        "visits outside the schedule",
        "visits before the planned start",
    )
    assert early.planned == "from 2027-01-04 (UTC days)"
    assert early.actual == "<10 visits on 2 days from 2027-01-02 to 2027-01-03"  # 7: a small count
    assert (
        late.what == "visits after the planned end"
        and late.planned == "until 2027-03-28 (UTC days)"
    )
    assert late.actual == "40 visits on 2027-04-02"
    assert schedule_deviations(start, end, {start: 5, end: 5}, 10) == ([], [])
    found, (note,) = schedule_deviations(start, end, {start: 5}, 10, unknown=12)
    assert found == [] and note.startswith("12 visits are in export cells merged over time")


def test_a_report_lists_visits_outside_the_schedule_and_beyond_the_plan(db_url: str) -> None:
    """700 visits of a trial planned for 500, spread over 6 days from 3 days before its start."""
    data = trial_dict()
    data["analysis"] = {**data["analysis"], "planned_sample_size": 500}
    trial = make_trial(analysis=data["analysis"])
    first = datetime.combine(date(2027, 1, 1), time(8), tzinfo=UTC)
    engine, _ = simulated(
        db_url, 700, trial=trial, source=trial_yaml(analysis=data["analysis"]),
        opt_out_rate=0.0, start=first, days=6,
    )  # fmt: skip
    with engine.begin() as conn:  # 11 visits late: after the planned end
        late = datetime(2027, 3, 29, 9, tzinfo=UTC)
        specs = [
            store.VisitSpec("loc-a", "en", started_at=late + timedelta(minutes=i))
            for i in range(11)
        ]
        store.start_visits(conn, trial, specs)
    truth = visits_by_day_of(engine, trial.id)
    report = analyze(trial, engine, record_look=False)
    engine.dispose()
    found = {d.what: d for d in report.transparency.deviations}
    assert found["more analysed visits than planned"].actual == "711 (142% of the plan)"
    before = sum(n for day, n in truth.items() if day < date(2027, 1, 4))
    assert found["visits before the planned start"].actual == (
        f"{before:,} visits on 3 days from 2027-01-01 to 2027-01-03"
    )
    assert found["visits after the planned end"].actual == "11 visits on 2027-03-29"
    (warning,) = [w for w in report.warnings if "from the pre-registered plan" in w]
    assert "visits outside the schedule: visits before the planned start" in warning
    assert "sample size: more analysed visits than planned" in warning
    assert "| visits outside the schedule | visits after the planned end |" in render_markdown(
        report
    )
    assert report.transparency.trial_status == "running"


def visits_by_day_of(engine, trial_id: str) -> dict[date, int]:  # type: ignore[no-untyped-def]
    """Visits per UTC day from the raw rows (an independent count)."""
    from sqlalchemy import select

    from experiments.eventlog import visits

    with engine.connect() as conn:
        times = conn.execute(select(visits.c.started_at).where(visits.c.trial_id == trial_id))
        days: dict[date, int] = {}
        for (moment,) in times:
            day = (moment.astimezone(UTC) if moment.tzinfo else moment).date()
            days[day] = days.get(day, 0) + 1
    return days


def test_visits_by_day_reads_the_week_and_weekday_of_the_cells(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from analysis.counts import OutcomeSpec, load_counts

    first = datetime.combine(date(2027, 1, 1), time(8), tzinfo=UTC)
    engine, trial = simulated(f"sqlite:///{tmp_path / 'd.db'}", 300, start=first, days=10)
    counts = load_counts(engine, trial.id, [OutcomeSpec("requested_contact", "contact_requested")])
    truth = visits_by_day_of(engine, trial.id)
    engine.dispose()
    assert visits_by_day(counts) == (truth, 0)
    assert min(truth) == date(2027, 1, 1) and max(truth) == date(2027, 1, 10)


def test_a_running_trial_below_its_plan_has_a_note_not_a_deviation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, trial = simulated(f"sqlite:///{tmp_path / 'n.db'}", 300)
    report = analyze(trial, engine, record_look=False)
    with engine.begin() as conn:
        store.stop_trial(conn, trial.id)
    stopped = analyze(trial, engine, record_look=False)
    engine.dispose()
    assert not [d for d in report.transparency.deviations if d.kind == "sample size"]
    (note,) = [n for n in report.transparency.statistical_notes if "still running" in n]
    assert "of 6,000 planned visits analysed" in note
    (short,) = [d for d in stopped.transparency.deviations if d.kind == "sample size"]
    assert short.what == "fewer analysed visits than planned"
    assert stopped.transparency.trial_status == "closed"  # `stop` closes a trial


def test_visits_in_cells_merged_over_time_have_no_known_day() -> None:
    import pandas as pd

    from analysis.counts import Counts, OutcomeSpec

    spec = OutcomeSpec("requested_contact", "contact_requested")
    cells = pd.DataFrame(
        {
            "arm": ["control", "gain", "gain"],
            "location": ["loc-a", "loc-a", "*"],
            "language": ["en", "en", "*"],
            "week": ["2027-01-04", "2026-12-28", "*"],
            "hour": ["9", "9", "*"],
            "weekday": ["2", "6", "*"],
            "n": [12, 3, 20],
            "opted_out": [0, 0, 0],
            "exposed": [12, 3, 20],
            "opted_out_with_outcome": [0, 0, 0],
            "outcome_requested_contact": [1, 0, 2],
            "unexposed_requested_contact": [0, 0, 0],
        }
    )
    counts = Counts("test-trial", (spec,), cells, "export", "hash")
    days, unknown = visits_by_day(counts)
    assert (days, unknown) == ({date(2027, 1, 6): 12, date(2027, 1, 3): 3}, 20)
    (early,), (note,) = schedule_deviations(date(2027, 1, 4), date(2027, 3, 28), days, 10, unknown)
    assert early.actual == "<10 visits on 2027-01-03"
    assert note.startswith("20 visits are in export cells merged over time")
