"""The event-log write path shared by kiosk and simulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from experiments import store
from experiments.eventlog import events, visits
from tests.factories import race_outcome_with_opt_out, trial_yaml


@pytest.fixture
def running(engine, trial):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        store.load_trial(conn, trial, trial_yaml())
        store.start_trial(conn, trial.id)
    return engine


def test_blocks_are_permutations_per_stratum(running, trial):  # type: ignore[no-untyped-def]
    with running.begin() as conn:
        started = store.start_visits(
            conn, trial, [store.VisitSpec("loc-a", "en")] * 18, rng=random.Random(3)
        )
    arms = [visit.arm for visit in started]
    for block in range(3):
        assert sorted(arms[block * 6 : block * 6 + 6]) == sorted(["control", "gain", "norm"] * 2)


def test_retried_event_is_stored_once_and_opt_out_removes_outcomes(running, trial):  # type: ignore[no-untyped-def]
    with running.begin() as conn:
        visit = store.start_visit(conn, trial, location="loc-b", language="ar")
        spec = store.EventSpec(visit.id, "contact_requested", "key-1")
        assert store.record_event(conn, trial, spec) == "stored"
        assert store.record_event(conn, trial, spec) == "duplicate"
        outcome = store.record_events(
            conn,
            trial,
            [
                store.EventSpec(visit.id, "opt_out", "key-2"),
                store.EventSpec(visit.id, "country_info_opened", "key-3"),
            ],
        )
        assert outcome == ["stored", "discarded"]
        kept = conn.execute(select(events.c.type).where(events.c.visit_id == visit.id)).scalars()
        assert list(kept) == ["opt_out"]
        assert conn.execute(select(func.count()).select_from(visits)).scalar_one() == 1


def test_undeclared_event_and_reused_key_are_refused(running, trial):  # type: ignore[no-untyped-def]
    with running.begin() as conn:
        visit = store.start_visit(conn, trial, location="loc-a", language="en")
        store.record_event(conn, trial, store.EventSpec(visit.id, "finish", "k"))
        with pytest.raises(store.UndeclaredEvent, match="not declared"):
            store.record_event(conn, trial, store.EventSpec(visit.id, "clicked_ad", "x"))
        with pytest.raises(store.IdempotencyConflict):
            store.record_event(conn, trial, store.EventSpec(visit.id, "exposure", "k"))
        with pytest.raises(store.UnknownVisit):
            store.record_event(conn, trial, store.EventSpec("nope", "finish", "k9"))


def _stored_elsewhere(engine, key: str) -> bool:  # type: ignore[no-untyped-def]
    with engine.connect() as other:
        found = select(func.count()).where(events.c.idempotency_key == key)
        return other.execute(found).scalar_one() == 1


def test_events_recorded_with_commit_are_committed(running, trial):  # type: ignore[no-untyped-def]
    """``commit=True``: one event (sent with the commit), a batch and an opt-out are all
    committed by record_events (a rollback after it keeps them); a batch that fails commits
    nothing."""
    with running.begin() as conn:
        visit = store.start_visit(conn, trial, location="loc-a", language="en")
        leaving = store.start_visit(conn, trial, location="loc-a", language="en")
    single = store.EventSpec(visit.id, "contact_requested", "one")
    two = [
        store.EventSpec(visit.id, "country_info_opened", "batch-1"),
        store.EventSpec(visit.id, "finish", "batch-2"),
    ]
    failing = [
        store.EventSpec(visit.id, "exposure", "fails-1"),
        store.EventSpec("nope", "finish", "fails-2"),
    ]
    with running.connect() as conn:
        assert store.record_event(conn, trial, single, commit=True) == "stored"
        conn.rollback()
        assert store.record_events(conn, trial, two, commit=True) == ["stored", "stored"]
        conn.rollback()
        with pytest.raises(store.UnknownVisit):
            store.record_events(conn, trial, failing, commit=True)
        conn.rollback()
        opt_out = store.EventSpec(leaving.id, "opt_out", "out-1")
        assert store.record_event(conn, trial, opt_out, commit=True) == "stored"
        conn.rollback()
    for key in ("one", "batch-1", "batch-2", "out-1"):
        assert _stored_elsewhere(running, key), key
    assert not _stored_elsewhere(running, "fails-1")


def test_commit_commits_the_transaction_also_without_events(running, trial):  # type: ignore[no-untyped-def]
    with running.connect() as conn:
        visit = store.start_visit(conn, trial, location="loc-a", language="en")
        assert store.record_events(conn, trial, [], commit=True) == []
        conn.rollback()
    with running.connect() as conn:
        assert conn.execute(select(visits.c.id).where(visits.c.id == visit.id)).scalar_one()


def test_what_an_event_sent_with_the_commit_answers_when_not_inserted(running, trial):  # type: ignore[no-untyped-def]
    """A retry is a duplicate, a key reused for another event a conflict, an unknown visit an
    error, and an event of an opted-out visit is discarded (the INSERT sent with the commit)."""
    with running.begin() as conn:
        visit = store.start_visit(conn, trial, location="loc-a", language="en")
        store.record_event(conn, trial, store.EventSpec(visit.id, "opt_out", "out"))
        other = store.start_visit(conn, trial, location="loc-a", language="en")
    spec = store.EventSpec(other.id, "contact_requested", "k")
    with running.connect() as conn:
        assert store.record_event(conn, trial, spec, commit=True) == "stored"
        assert store.record_event(conn, trial, spec, commit=True) == "duplicate"
        with pytest.raises(store.IdempotencyConflict):
            store.record_event(conn, trial, store.EventSpec(other.id, "finish", "k"), commit=True)
        conn.rollback()
        with pytest.raises(store.UnknownVisit):
            unknown = store.EventSpec("nope", "finish", "k2")
            store.record_event(conn, trial, unknown, commit=True)
        conn.rollback()
        late = store.EventSpec(visit.id, "contact_requested", "late")
        assert store.record_event(conn, trial, late, commit=True) == "discarded"
        conn.commit()
    assert not _stored_elsewhere(running, "late")


@pytest.mark.parametrize("commit", [False, True], ids=["caller-commits", "sent-with-commit"])
def test_concurrent_opt_out_and_outcome_never_leave_an_outcome(running, trial, commit):  # type: ignore[no-untyped-def]
    """An outcome and an opt-out of the same visit sent at once: the outcome never survives,
    also when the events are sent with the commit (on SQLite, the outcome's INSERT on its own).

    Each pair runs in two threads on two connections, released together by a barrier.
    """
    import threading

    with running.begin() as conn:
        started = store.start_visits(
            conn, trial, [store.VisitSpec("loc-a", "en")] * 40, rng=random.Random(5)
        )
    failures: list[BaseException] = []

    def send(visit_id: str, kind: str, barrier: threading.Barrier) -> None:
        try:
            barrier.wait(timeout=10)
            with running.connect() as conn:
                spec = store.EventSpec(visit_id, kind, f"{kind}-{visit_id}")
                store.record_event(conn, trial, spec, commit=commit)
                conn.commit()
        except BaseException as error:  # collected and re-raised in the main thread
            failures.append(error)

    race_outcome_with_opt_out([visit.id for visit in started], send)
    assert failures == []
    with running.connect() as conn:
        opted = set(
            conn.execute(select(events.c.visit_id).where(events.c.type == "opt_out")).scalars()
        )
        kept = set(
            conn.execute(
                select(events.c.visit_id).where(events.c.type == "contact_requested")
            ).scalars()
        )
    assert opted == {visit.id for visit in started}
    assert kept & opted == set()
