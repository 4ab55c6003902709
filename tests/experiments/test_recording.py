"""The event-log write path shared by kiosk and simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from experiments import recording
from experiments.eventlog import events, visits
from tests.factories import trial_yaml


@pytest.fixture
def running(engine, trial):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        recording.load_trial(conn, trial, trial_yaml())
        recording.start_trial(conn, trial.id)
    return engine


def test_blocks_are_permutations_per_stratum(running, trial):  # type: ignore[no-untyped-def]
    with running.begin() as conn:
        started = recording.start_visits(
            conn, trial, [recording.VisitSpec("loc-a", "en")] * 18, rng=random.Random(3)
        )
    arms = [visit.arm for visit in started]
    for block in range(3):
        assert sorted(arms[block * 6 : block * 6 + 6]) == sorted(["control", "gain", "norm"] * 2)


def test_retried_event_is_stored_once_and_opt_out_removes_outcomes(running, trial):  # type: ignore[no-untyped-def]
    with running.begin() as conn:
        visit = recording.start_visit(conn, trial, location="loc-b", language="ar")
        spec = recording.EventSpec(visit.id, "contact_requested", "key-1")
        assert recording.record_event(conn, trial, spec) == "stored"
        assert recording.record_event(conn, trial, spec) == "duplicate"
        outcome = recording.record_events(
            conn,
            trial,
            [
                recording.EventSpec(visit.id, "opt_out", "key-2"),
                recording.EventSpec(visit.id, "country_info_opened", "key-3"),
            ],
        )
        assert outcome == ["stored", "discarded"]
        kept = conn.execute(select(events.c.type).where(events.c.visit_id == visit.id)).scalars()
        assert list(kept) == ["opt_out"]
        assert conn.execute(select(func.count()).select_from(visits)).scalar_one() == 1


def test_undeclared_event_and_reused_key_are_refused(running, trial):  # type: ignore[no-untyped-def]
    with running.begin() as conn:
        visit = recording.start_visit(conn, trial, location="loc-a", language="en")
        recording.record_event(conn, trial, recording.EventSpec(visit.id, "finish", "k"))
        with pytest.raises(recording.UndeclaredEvent, match="not declared"):
            recording.record_event(conn, trial, recording.EventSpec(visit.id, "clicked_ad", "x"))
        with pytest.raises(recording.IdempotencyConflict):
            recording.record_event(conn, trial, recording.EventSpec(visit.id, "exposure", "k"))
        with pytest.raises(recording.UnknownVisit):
            recording.record_event(conn, trial, recording.EventSpec("nope", "finish", "k9"))
