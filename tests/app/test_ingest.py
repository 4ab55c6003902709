"""The write paths under load: how many statements a request sends, and a dropped connection.

The statement counts are the design of the hot paths (``POST /api/v1/events`` and a visit
start), not timings: a change that adds a query to them fails here. Speed itself is measured
by ``bench/ingest.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import create_engine, event, func, select, text, update

from app.db import get_engine
from experiments import store
from experiments.eventlog import events, kiosks, make_engine, visits
from experiments.model import Trial
from tests.app.visitor import Visitor
from tests.factories import trial_yaml


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app sends while the block runs (first words of each)."""
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        sent.append(" ".join(statement.split()[:4]))

    engine = get_engine(app)
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def started(visitor: Visitor) -> Visitor:
    visitor.arrives()
    visitor.starts_in("en")
    return visitor


def _outcome(visitor: Visitor) -> dict:
    return {
        "visit_id": visitor.visit_id,
        "type": "contact_requested",
        "idempotency_key": uuid.uuid4().hex,
        "language": "en",
    }


def test_an_event_is_checked_and_stored_with_one_query_and_one_insert(started: Visitor) -> None:
    """A kiosk's first event: kiosk, visit and lock in one query; opt-out check, insert and
    idempotency in one INSERT. Its next events: the INSERT alone, which checks the kiosk and
    visit too. A retry: that INSERT stores nothing, and the full path finds the stored key."""
    first, second = _outcome(started), _outcome(started)
    with statements(started.app) as sent:
        assert started.post_events({"events": [first]}).json["results"][0]["status"] == "stored"
    assert [words.split()[0] for words in sent] == ["SELECT", "INSERT"], sent
    with statements(started.app) as sent:
        assert started.post_events({"events": [second]}).json["results"][0]["status"] == "stored"
    assert [words.split()[0] for words in sent] == ["INSERT"], sent
    with statements(started.app) as sent:
        assert started.post_events(first).json["results"][0]["status"] == "duplicate"
    assert [words.split()[0] for words in sent] == ["INSERT", "SELECT", "INSERT", "SELECT"], sent
    assert started.logged().count("contact_requested") == 2


@contextmanager
def sqlite_ran(app: Flask) -> Iterator[list[str]]:
    """What SQLite itself ran while the block runs, transaction control included (first word
    of each statement, upper case; SQLite traces a statement again for each trigger it runs,
    so a repeat of the statement just before is left out)."""
    ran: list[str] = []
    traced: list[str] = [""]
    engine = get_engine(app)

    def note(sql: str) -> None:
        if sql != traced[-1]:
            ran.append(sql.split()[0].upper())
        traced.append(sql)

    def trace(dbapi_connection, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.set_trace_callback(note)

    def untrace(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.set_trace_callback(None)

    event.listen(engine, "checkout", trace)
    event.listen(engine, "checkin", untrace)
    try:
        yield ran
    finally:
        event.remove(engine, "checkout", trace)
        event.remove(engine, "checkin", untrace)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_on_sqlite_a_single_events_insert_is_its_own_transaction(started: Visitor) -> None:
    """One event: SQLite runs the read (only for a kiosk not yet known) and the INSERT, which
    commits itself, with no BEGIN IMMEDIATE ... COMMIT around it (the write lock is never held
    between statements, while the thread waits for Python's GIL). A batch of two is one
    transaction."""
    with sqlite_ran(started.app) as ran:
        assert started.post_events({"events": [_outcome(started)]}).status_code == 200
    assert ran == ["SELECT", "INSERT"], ran
    with sqlite_ran(started.app) as ran:  # the kiosk is known now: no query before the INSERT
        assert started.post_events({"events": [_outcome(started)]}).status_code == 200
    assert ran == ["INSERT"], ran
    with sqlite_ran(started.app) as ran:
        batch = {"events": [_outcome(started), _outcome(started)]}
        assert started.post_events(batch).status_code == 200
    assert ran == ["BEGIN", "INSERT", "COMMIT"], ran


def _last_seen(app: Flask) -> datetime | None:
    with get_engine(app).connect() as conn:
        return store.aware(conn.execute(select(kiosks.c.last_seen_at)).scalar_one())


def _forget_contact(app: Flask) -> None:
    """The kiosk was last heard from two minutes ago (longer than the resolution)."""
    with get_engine(app).begin() as conn:
        conn.execute(update(kiosks).values(last_seen_at=store.utcnow() - timedelta(minutes=2)))


def test_the_last_contact_costs_one_update_a_minute_not_one_a_batch(started: Visitor) -> None:
    """The kiosk's last contact rides on the lookup: a batch writes it only when the stored
    one is older than a minute (one more UPDATE), and the batches after it send nothing more."""
    _forget_contact(started.app)
    before = _last_seen(started.app)
    with statements(started.app) as sent:
        assert started.post_events(_outcome(started)).status_code == 200
    assert [words.split()[0] for words in sent] == ["SELECT", "UPDATE", "INSERT"], sent
    assert sent[1].startswith("UPDATE kiosks SET last_seen_at")
    after = _last_seen(started.app)
    assert before is not None and after is not None and after - before >= timedelta(minutes=2)
    with statements(started.app) as sent:
        assert started.post_events(_outcome(started)).status_code == 200
    assert [words.split()[0] for words in sent] == ["INSERT"], sent
    assert _last_seen(started.app) == after


def test_a_kiosk_page_notes_the_contact_once_a_minute(started: Visitor) -> None:
    _forget_contact(started.app)
    with statements(started.app) as sent:
        assert started.looks_again().status_code == 200
    assert sum(words.startswith("UPDATE kiosks") for words in sent) == 1, sent
    with statements(started.app) as sent:
        assert started.looks_again().status_code == 200
    assert not [words for words in sent if words.startswith("UPDATE kiosks")], sent
    seen = _last_seen(started.app)
    assert seen is not None and store.utcnow() - seen < timedelta(seconds=30)


def test_a_visit_start_reads_the_kiosk_and_its_trial_then_locks_both(visitor: Visitor) -> None:
    """One query reads the kiosk with its trial; then the kiosk's row is locked (a no-op
    UPDATE of a switched-on kiosk) and the trial's row read again, so that a pause, close or
    revoke that came in between is seen; then the three INSERTs of the visit."""
    visitor.arrives()
    with statements(visitor.app) as sent:
        response = visitor.client.post(visitor.path + "start", data={"language": "en"})
    assert response.status_code == 302
    kinds = [words.split()[0] for words in sent]
    assert kinds == ["SELECT", "UPDATE", "SELECT", "INSERT", "INSERT", "INSERT"], sent
    assert sent[1].startswith("UPDATE kiosks") and sent[2].startswith("SELECT trials")
    assert sent[3].startswith("INSERT INTO allocation_counters")  # one upsert reserves the index


def test_the_visit_page_reads_its_visit_once(started: Visitor) -> None:
    with statements(started.app) as sent:
        assert started.looks_again().status_code == 200
    assert sum(words.startswith("SELECT visits.id, assignments.arm") for words in sent) == 1, sent


def test_what_another_process_changes_is_seen_by_the_next_request(
    db_url: str, factory_trial: Trial, started: Visitor
) -> None:
    """A command line in another process (here: another engine) pauses the trial, reloads it
    or switches the kiosk off, and the very next request acts on it: what the app remembers of
    a kiosk whose events it stored (its id, its visits' trial version) is checked again by the
    write that relies on it."""
    elsewhere = make_engine(db_url)
    try:
        assert started.post_events(_outcome(started)).status_code == 200  # the kiosk is known
        with elsewhere.begin() as conn:
            store.pause_trial(conn, factory_trial.id)
        started.arrives()
        paused = started.client.post(started.path + "start", data={"language": "en"})
        assert paused.status_code == 302 and "/information" in paused.headers["Location"]
        with elsewhere.begin() as conn:
            store.resume_trial(conn, factory_trial.id)
            reloaded = store.load_trial(
                conn, factory_trial, trial_yaml(title="Test trial, second version")
            )
        started.arrives()
        started.starts_in("en")
        with elsewhere.connect() as conn:
            version = conn.execute(
                select(visits.c.trial_version).where(visits.c.id == started.visit_id)
            ).scalar_one()
        assert version == reloaded
        stored = started.post_events(_outcome(started))  # a visit of the new version
        assert stored.status_code == 200 and stored.json["results"][0]["status"] == "stored"
        with elsewhere.begin() as conn:
            conn.execute(update(kiosks).values(active=False))
        assert started.post_events(_outcome(started)).status_code == 403
        assert started.looks_again().status_code == 403
        with elsewhere.begin() as conn:
            store.close_trial(conn, factory_trial.id)
            conn.execute(update(kiosks).values(active=True))
        assert started.arrives().status_code == 403
    finally:
        elsewhere.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_connection_the_database_dropped_is_a_503_and_the_resent_event_is_stored(
    postgres_server: str, app: Flask, started: Visitor
) -> None:
    """A database restart drops the pooled connections (they are not pinged before use): the
    request on a dropped one is answered 503 and nothing is acknowledged; the kiosk's resend
    gets a new connection and is stored once."""
    engine = get_engine(app)
    pooled = [engine.connect() for _ in range(engine.pool.checkedin())]  # type: ignore[attr-defined]
    backends = [conn.execute(text("SELECT pg_backend_pid()")).scalar_one() for conn in pooled]
    for conn in pooled:
        conn.close()
    admin = create_engine(postgres_server)
    try:
        with admin.begin() as conn:  # what a restart does to the app's connections, only them
            for backend in backends:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    finally:
        admin.dispose()
    event_ = _outcome(started)
    dropped = started.post_events(event_)
    assert dropped.status_code == 503 and dropped.headers["Retry-After"]
    resent = started.post_events(event_)
    assert resent.status_code == 200 and resent.json["results"][0]["status"] == "stored"
    with get_engine(app).connect() as conn:
        count = conn.execute(
            select(func.count())
            .select_from(events)
            .where(events.c.idempotency_key == event_["idempotency_key"])
        ).scalar_one()
    assert count == 1
