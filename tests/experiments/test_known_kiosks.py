"""Events of a known kiosk (experiments.store.known_kiosks): the one INSERT stores a batch only
if every check the full path makes holds for every event, and otherwise keeps nothing of it.

Each refusal below is a case the full path answers otherwise (403, 400, duplicate, discarded);
here it must only leave the database as it was, so that the caller's full path can answer it.
"""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

import pytest
from sqlalchemy import Connection, Engine, select, text

from experiments import store
from experiments.eventlog import events, visits
from experiments.model import Trial
from experiments.store.known_kiosks import _compiled, _parameters
from tests.factories import query_plan, trial_yaml

SLACK = timedelta(minutes=5)


@dataclass
class Setting:
    trial: Trial
    known: store.KnownKiosk
    visit_ids: list[str]
    #: A visit of a second kiosk of the same trial.
    other_kiosk_visit: str


@pytest.fixture
def setting(engine: Engine, trial: Trial) -> Setting:
    with engine.begin() as conn:
        store.load_trial(conn, trial, trial_yaml())
        store.start_trial(conn, trial.id)
        location, language = trial.location_ids[0], trial.languages[0]
        kiosk, token = store.register_kiosk(conn, trial, location)
        other, _ = store.register_kiosk(conn, trial, location)
        spec = store.VisitSpec(location, language, kiosk.id)
        started = store.start_visits(conn, trial, [spec] * 4, rng=random.Random(2))
        (elsewhere,) = store.start_visits(
            conn, trial, [replace(spec, kiosk_id=other.id)], rng=random.Random(3)
        )
        found = store.lock_kiosk_visits(conn, token, [visit.id for visit in started], opt_out=False)
    known = store.KnownKiosk.from_found(token, found)
    assert known is not None and known.kiosk_id == kiosk.id
    return Setting(trial, known, [visit.id for visit in started], elsewhere.id)


def _outcome(visit_id: str, **changes: object) -> store.EventSpec:
    spec = store.EventSpec(visit_id, "contact_requested", uuid.uuid4().hex, "en")
    return replace(spec, **changes)  # type: ignore[arg-type]


def _stored(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(events.c.visit_id, events.c.type, events.c.idempotency_key).where(
                events.c.type == "contact_requested"
            )
        )
        return sorted(tuple(row) for row in rows)  # type: ignore[misc]


def _record(
    engine: Engine, setting: Setting, specs: list[store.EventSpec], **known: object
) -> bool:
    with engine.connect() as conn:
        return store.record_for_known_kiosk(
            conn, replace(setting.known, **known), setting.trial, specs, slack=SLACK
        )


def test_events_of_a_known_kiosk_are_stored_and_committed(engine: Engine, setting: Setting) -> None:
    one = [_outcome(setting.visit_ids[0])]
    batch = [_outcome(visit_id) for visit_id in setting.visit_ids[1:]]
    assert _record(engine, setting, one)
    assert _record(engine, setting, batch)
    expected = sorted((s.visit_id, s.type, s.idempotency_key) for s in one + batch)
    assert _stored(engine) == expected  # read by another connection: committed


def _switch_off(conn: Connection, setting: Setting) -> None:
    store.switch_kiosk(conn, setting.known.kiosk_id, on=False)


def _revoke(conn: Connection, setting: Setting) -> None:
    store.revoke_kiosk(conn, setting.known.kiosk_id)


def _pause(conn: Connection, setting: Setting) -> None:
    store.pause_trial(conn, setting.trial.id)


def _opt_out(conn: Connection, setting: Setting) -> None:
    opt_out = store.EventSpec(setting.visit_ids[1], "opt_out", uuid.uuid4().hex)
    store.record_events(conn, setting.trial, [opt_out])


def _nothing(conn: Connection, setting: Setting) -> None:
    pass


def _second(setting: Setting, visit: str) -> store.EventSpec:
    """The batch's second event: an outcome of one of the kiosk's visits (``own``), of another
    kiosk's, of no visit, or of one of the kiosk's but timed before the visit began."""
    if visit == "another kiosk's":
        return _outcome(setting.other_kiosk_visit)
    if visit == "unknown":
        return _outcome(str(uuid.uuid4()))
    if visit == "early":
        return _outcome(setting.visit_ids[1], occurred_at=store.utcnow() - 2 * SLACK)
    return _outcome(setting.visit_ids[1])


#: Each case: what changed in the database, what the write relies on that differs from what
#: is stored, and the batch's second event (see :func:`_second`; the first would be stored).
CASES: dict[str, tuple[Callable[[Connection, Setting], None], dict[str, str], str]] = {
    "kiosk switched off": (_switch_off, {}, "own"),
    "kiosk revoked": (_revoke, {}, "own"),
    "another token": (_nothing, {"token_hash": store.token_hash("x")}, "own"),
    "another kiosk's id": (_nothing, {"kiosk_id": "k" * 32}, "own"),
    "another trial version": (_nothing, {"trial_version": "0" * 64}, "own"),
    "another kiosk's visit": (_nothing, {}, "another kiosk's"),
    "unknown visit": (_nothing, {}, "unknown"),
    "before the visit began": (_nothing, {}, "early"),
    "opted out": (_opt_out, {}, "own"),
    "trial paused": (_pause, {}, "own"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_batch_with_one_event_the_full_path_would_not_store_keeps_nothing(
    engine: Engine, setting: Setting, case: str
) -> None:
    change, known, visit = CASES[case]
    with engine.begin() as conn:
        change(conn, setting)
    good = _outcome(setting.visit_ids[0])
    assert _record(engine, setting, [_second(setting, visit)], **known) is False
    assert _record(engine, setting, [good, _second(setting, visit)], **known) is False
    assert _stored(engine) == []
    if case not in ("kiosk switched off", "kiosk revoked", "trial paused"):
        assert _record(engine, setting, [good])  # the good one alone is stored


def test_a_key_already_stored_keeps_nothing(engine: Engine, setting: Setting) -> None:
    first = _outcome(setting.visit_ids[0])
    assert _record(engine, setting, [first])
    assert _record(engine, setting, [first]) is False
    assert _record(engine, setting, [_outcome(setting.visit_ids[1]), first]) is False
    assert [key for *_, key in _stored(engine)] == [first.idempotency_key]


def test_an_event_within_the_clock_slack_before_the_start_is_stored(
    engine: Engine, setting: Setting
) -> None:
    """The boundary of the full path's clock check: up to ``slack`` before the visit began."""
    with engine.connect() as conn:
        stored = conn.execute(
            select(visits.c.started_at).where(visits.c.id == setting.visit_ids[0])
        ).scalar_one()
    earliest = store.aware(stored) - SLACK
    late = earliest - timedelta(microseconds=1)
    assert not _record(engine, setting, [_outcome(setting.visit_ids[0], occurred_at=late)])
    assert _record(engine, setting, [_outcome(setting.visit_ids[0], occurred_at=earliest)])


def test_an_opt_out_is_refused(engine: Engine, setting: Setting) -> None:
    opt_out = store.EventSpec(setting.visit_ids[0], "opt_out", uuid.uuid4().hex)
    with pytest.raises(ValueError, match="full path"):
        _record(engine, setting, [opt_out])


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_outcome_written_while_an_opt_out_commits_is_not_stored(
    engine: Engine, setting: Setting
) -> None:
    """The opt-out's transaction has locked the visit, stored the opt-out and deleted the
    outcomes, but not committed; the known kiosk's INSERT of an outcome starts then, with a
    snapshot without the opt-out, and waits for the visit's row. When the opt-out commits, the
    INSERT checks the row's new version (whose signature names the opt-out): nothing stored."""
    visit_id = setting.visit_ids[0]
    result: list[bool] = []
    opting_out = engine.connect()
    try:
        opt_out = store.EventSpec(visit_id, "opt_out", uuid.uuid4().hex)
        store.record_events(opting_out, setting.trial, [opt_out])
        writer = threading.Thread(
            target=lambda: result.append(_record(engine, setting, [_outcome(visit_id)]))
        )
        writer.start()
        _wait_for_a_lock_wait(opting_out)
        opting_out.commit()
        writer.join(timeout=30)
    finally:
        opting_out.close()
    assert result == [False]
    assert _stored(engine) == []


def _wait_for_a_lock_wait(conn: Connection) -> None:
    """Until another backend of this database waits for a lock (the writer, on the visit)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
        "AND datname = current_database() AND pid <> pg_backend_pid()"
    )
    deadline = time.monotonic() + 20
    with conn.engine.connect() as watcher:
        while watcher.execute(query).scalar_one() == 0:
            watcher.rollback()
            assert time.monotonic() < deadline, "the writer never waited for the visit's lock"
            time.sleep(0.02)


def test_a_known_kiosk_needs_one_trial_version_and_a_kiosk() -> None:
    one = store.EventVisit("v1", "t", "1", store.utcnow())
    two = store.EventVisit("v2", "t", "2", store.utcnow())
    now = store.utcnow()
    assert store.KnownKiosk.from_found("tok", store.KioskVisits("k", now, {"v1": one})) is not None
    mixed = store.KioskVisits("k", now, {"v1": one, "v2": two})
    assert store.KnownKiosk.from_found("tok", mixed) is None
    assert store.KnownKiosk.from_found("tok", store.KioskVisits(None, None, {})) is None
    known = store.KnownKiosk.from_found("tok", store.KioskVisits("k", now, {"v1": one}))
    assert known is not None and known.usable(now + store.CONTACT_RESOLUTION / 2)
    assert not known.usable(now + store.CONTACT_RESOLUTION)


def test_the_insert_finds_each_visit_by_its_key(engine: Engine, setting: Setting) -> None:
    """Not by reading every visit of the kiosk through its index (SQLite's choice for
    ``visits.kiosk_id = :kiosk_id`` without the unary ``+``; PostgreSQL is asked to choose an
    index, as it would read these few rows whole)."""
    statement = _compiled(engine.dialect, True)
    spec = _outcome(setting.visit_ids[0])
    values = _parameters(engine.dialect, setting.known, setting.trial.id, [spec], SLACK)
    plan = query_plan(engine, statement, values)
    assert "ix_visits_kiosk_id" not in plan, plan
    if engine.dialect.name == "sqlite":  # by the key, or by (trial_id, id)
        assert re.search(r"SEARCH visits USING INDEX \S+ \((trial_id=\? AND )?id=\?\)", plan), plan
    else:
        by_key = r"Index Scan using (pk_visits|ix_visits_trial_id_id) on visits"
        assert re.search(by_key, plan), plan
