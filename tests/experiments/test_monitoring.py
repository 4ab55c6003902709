"""Blinded monitoring on SQLite and PostgreSQL: counts checked against the rows written, outcome
events never read (structurally and by invariance), the sample-ratio check, the forecast and
silent kiosks."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import Engine, event, insert

from experiments import store
from experiments.eventlog import assignments, visits
from experiments.model import Trial
from experiments.monitoring import (
    MONITORED_EVENTS,
    MonitorSettings,
    OpeningHours,
    kiosk_contacts,
    monitor,
)
from tests.factories import trial_yaml

START = datetime(2027, 1, 4, 9, 30, tzinfo=UTC)  # a Monday
#: (arm, location, day offset, exposed, opted out, finished) of each visit written.
PLAN = [
    (arm, location, day, index % 4 != 0, index % 9 == 0, index % 3 == 0)
    for index, (arm, location, day) in enumerate(
        (arm, location, day)
        for day in range(3)
        for location in ("loc-a", "loc-b")
        for arm in ("control", "gain", "norm")
        for _ in range(2 + day)
    )
]


def _write(engine: Engine, trial: Trial, plan: list[tuple]) -> list[tuple[str, str]]:
    """Visits with chosen arms (written directly, so the test knows them) and their system
    events; returns (visit id, arm) of each."""
    written = []
    with engine.begin() as conn:
        for arm, location, day, exposed, opted_out, finished in plan:
            visit = str(uuid.uuid4())
            written.append((visit, arm))
            started = START + timedelta(days=day)
            conn.execute(
                insert(visits).values(
                    id=visit, trial_id=trial.id, trial_version="v", location=location,
                    language="en", started_at=started,
                )
            )  # fmt: skip
            conn.execute(
                insert(assignments).values(
                    visit_id=visit, trial_id=trial.id, arm=arm, method="test", inputs="{}",
                    assigned_at=started,
                )
            )  # fmt: skip
            specs = [store.EventSpec(visit, "exposure", f"x-{visit}", "en", occurred_at=started)]
            specs.append(store.EventSpec(visit, "exposure", f"x2-{visit}", "ar"))  # twice: 1 visit
            if opted_out:
                specs.append(store.EventSpec(visit, "opt_out", f"o-{visit}", "en"))
            if finished:
                specs.append(store.EventSpec(visit, "finish", f"f-{visit}", "en"))
            specs = specs if exposed else specs[2:]
            store.record_events(conn, trial, specs)
    return written


@pytest.fixture
def running(engine: Engine, trial: Trial) -> Trial:
    with engine.begin() as conn:
        store.load_trial(conn, trial, trial_yaml())
        store.start_trial(conn, trial.id, now=START - timedelta(hours=1))
    return trial


def _expected(position: int) -> dict[str, tuple[int, int, int, int]]:
    found: dict[str, list[int]] = {}
    for row in PLAN:
        key = (
            str(row[position])
            if position < 2
            else (START + timedelta(days=row[2])).date().isoformat()
        )
        totals = found.setdefault(key, [0, 0, 0, 0])
        totals[0] += 1
        totals[1] += row[3]
        totals[2] += row[4]
        totals[3] += row[5] and not row[4]  # after an opt-out nothing more is kept
    return {key: tuple(values) for key, values in found.items()}  # type: ignore[misc]


def _as_dict(progress) -> dict[str, tuple[int, int, int, int]]:  # type: ignore[no-untyped-def]
    return {p.key: (p.visits, p.exposed, p.opted_out, p.finished) for p in progress}


def test_progress_per_arm_location_and_day_matches_the_rows_written(
    engine: Engine, running: Trial
) -> None:
    _write(engine, running, PLAN)
    with engine.connect() as conn:
        seen = monitor(conn, running.id, now=START + timedelta(days=3))
    assert _as_dict(seen.by_arm) == _expected(0)
    assert _as_dict(seen.by_location) == _expected(1)
    assert _as_dict(seen.by_day) == _expected(2)
    assert [p.key for p in seen.by_day] == sorted(_expected(2))
    total = seen.total
    assert (total.visits, total.exposed, total.opted_out, total.finished) == (
        len(PLAN),
        sum(r[3] for r in PLAN),
        sum(r[4] for r in PLAN),
        sum(r[5] and not r[4] for r in PLAN),
    )
    assert seen.status == "running" and seen.planned_sample_size == 6000
    json.dumps(seen.to_dict())  # JSON-ready


def test_arms_and_locations_without_visits_are_listed_with_zeros(
    engine: Engine, running: Trial
) -> None:
    with engine.connect() as conn:
        seen = monitor(conn, running.id, now=START)
    assert _as_dict(seen.by_arm) == dict.fromkeys(("control", "gain", "norm"), (0, 0, 0, 0))
    assert [p.key for p in seen.by_location] == ["loc-a", "loc-b"]
    assert seen.by_day == ()
    assert seen.sample_ratio.p_value is None and not seen.sample_ratio.alert


def test_outcome_events_change_nothing_and_are_never_queried(
    engine: Engine, running: Trial
) -> None:
    """Monitoring is blind: after every gain visit (and no other) requests contact, nothing it
    returns has moved; no statement it sends names an outcome event or reads the events table
    without the filter on the monitored types."""
    written = _write(engine, running, PLAN)
    now = START + timedelta(days=3)
    with engine.connect() as conn:
        before = monitor(conn, running.id, now=now).to_dict()
    with engine.begin() as conn:
        outcomes = [
            store.EventSpec(visit, "contact_requested", f"c-{visit}", "en")
            for visit, arm in written
            if arm == "gain"
        ]
        stored = store.record_events(conn, running, outcomes)
    assert stored.count("stored") > 10  # (opted-out visits discard theirs)
    sent: list[tuple[str, object]] = []

    def record(_conn, _cursor, statement, parameters, *_args) -> None:  # type: ignore[no-untyped-def]
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as conn:
            after = monitor(conn, running.id, now=now).to_dict()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert after == before
    reading_events = [
        statement for statement, _ in sent if "events" in statement.split("FROM", 1)[-1]
    ]
    assert reading_events, "the events query was not seen"
    for statement in reading_events:
        assert "events.type IN" in statement, statement
    text = json.dumps([str(parameters) for _, parameters in sent]) + json.dumps(after)
    for outcome in running.outcome_events:
        assert outcome not in text
    assert set(MONITORED_EVENTS) == {"exposure", "opt_out", "finish"}


def test_a_trial_declaring_a_monitored_type_as_outcome_is_refused(
    engine: Engine, running: Trial
) -> None:
    data = running.model_dump(mode="json")
    data["outcomes"][1]["event"] = "finish"
    odd = Trial.model_validate(data)
    with engine.begin() as conn:
        store.load_trial(conn, odd, trial_yaml(outcomes=data["outcomes"]))
    with engine.connect() as conn, pytest.raises(store.RecordingError, match="finish"):
        monitor(conn, running.id)


def test_the_sample_ratio_check_alerts_under_its_threshold(engine: Engine, running: Trial) -> None:
    """1:1:1 planned, 100/100/150 observed: chi-square with 2 degrees of freedom, whose p-value
    is exp(-chi2 / 2), computed here by hand."""
    plan = [("control", "loc-a", 0, True, False, False)] * 100
    plan += [("gain", "loc-a", 0, True, False, False)] * 100
    plan += [("norm", "loc-a", 0, True, False, False)] * 150
    _write(engine, running, plan)
    with engine.connect() as conn:
        seen = monitor(conn, running.id, now=START + timedelta(days=1)).sample_ratio
    expected = 350 / 3
    chi2 = sum((o - expected) ** 2 / expected for o in (100, 100, 150))
    assert seen.chi2 == pytest.approx(chi2)
    assert seen.p_value == pytest.approx(math.exp(-chi2 / 2))
    assert seen.p_value < 0.001 and seen.alert and seen.message.startswith("ALERT")
    assert seen.observed == {"control": 100, "gain": 100, "norm": 150}
    assert seen.expected_shares == pytest.approx(dict.fromkeys(("control", "gain", "norm"), 1 / 3))


def test_a_split_as_planned_raises_no_alert(engine: Engine, running: Trial) -> None:
    plan = [(arm, "loc-b", 0, True, False, False) for arm in ("control", "gain", "norm")] * 40
    plan += [("norm", "loc-b", 0, True, False, False)] * 5
    _write(engine, running, plan)
    with engine.connect() as conn:
        seen = monitor(conn, running.id, now=START + timedelta(days=1)).sample_ratio
    assert seen.p_value is not None and seen.p_value > 0.1 and not seen.alert


def test_the_forecast_uses_the_recent_rate(engine: Engine, running: Trial) -> None:
    plan = [("control", "loc-a", day, True, False, False) for day in range(10) for _ in range(30)]
    _write(engine, running, plan)
    now = START + timedelta(days=10)
    with engine.connect() as conn:
        forecast = monitor(
            conn, running.id, now=now, settings=MonitorSettings(rate_window=timedelta(days=5))
        ).forecast
    # The last 5 days hold 5 x 30 visits (days 5 to 9; day 5 started 4.5 days before `now`
    # + 9:30 ... so count exactly): visits started at or after now - 5 days.
    recent = sum(1 for row in plan if START + timedelta(days=row[2]) >= now - timedelta(days=5))
    assert forecast.rate_per_day == pytest.approx(recent / 5)
    assert (forecast.planned, forecast.analysed, forecast.remaining) == (6000, 300, 5700)
    days = 5700 / forecast.rate_per_day
    assert forecast.expected_date == (now + timedelta(days=days)).date()


def test_silent_kiosks_are_flagged_by_opening_hours(engine: Engine, running: Trial) -> None:
    with engine.begin() as conn:
        quiet, _ = store.register_kiosk(conn, running, "loc-a")
        heard, _ = store.register_kiosk(conn, running, "loc-b")
        off, _ = store.register_kiosk(conn, running, "loc-b")
        store.switch_kiosk(conn, off.id, False)
    monday_9 = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # 09:00 in Amsterdam (winter time)
    with engine.begin() as conn:
        for kiosk in (quiet, heard, off):
            store.note_contact(conn, kiosk.id, monday_9)
        store.note_contact(conn, heard.id, monday_9 + timedelta(hours=3))
    settings = MonitorSettings(silent_after=timedelta(hours=2))
    with engine.connect() as conn:
        at_noon = kiosk_contacts(
            conn, running.id, now=monday_9 + timedelta(hours=3), settings=settings
        )
        saturday = kiosk_contacts(
            conn, running.id, now=monday_9 + timedelta(days=5, hours=3), settings=settings
        )
        paused_view = kiosk_contacts(
            conn, running.id, now=monday_9 + timedelta(hours=3), settings=settings, serving=False
        )
    assert {c.id: (c.state, c.silent) for c in at_noon} == {
        quiet.id: ("active", True),  # 3 opening hours without a word
        heard.id: ("active", False),
        off.id: ("off", False),  # switched off: not expected to talk
    }
    assert {c.id: c.silent for c in saturday}[heard.id] is True  # Monday afternoon to Friday
    assert not any(c.silent for c in paused_view)


def test_opening_time_counts_only_the_window_on_weekdays() -> None:
    hours = OpeningHours(opens=time(9), closes=time(17), timezone="UTC")
    friday_4pm = datetime(2027, 1, 8, 16, 0, tzinfo=UTC)
    monday_10am = datetime(2027, 1, 11, 10, 0, tzinfo=UTC)
    assert hours.open_time(friday_4pm, monday_10am) == timedelta(hours=2)
    assert hours.open_time(monday_10am, monday_10am) == timedelta()


@pytest.mark.parametrize("df", range(1, 12))
def test_the_chi_square_tail_equals_scipys(df: int) -> None:
    """The app may not load scipy, so monitoring computes the tail itself: checked here."""
    from scipy.stats import chi2

    from experiments.monitoring import chi2_survival

    for x in (0.0, 1e-3, 0.5, 1.0, 2.7, 7.5, 15.0, 33.3, 80.0, 200.0):
        assert chi2_survival(x, df) == pytest.approx(float(chi2.sf(x, df)), rel=1e-10, abs=1e-300)
