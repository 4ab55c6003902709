"""Statements run on the driver's cursor (:mod:`experiments.store.driver`) behave as SQLAlchemy's
own: inside the connection's transaction, seen by its listeners, errors wrapped, values read
alike; and the event API's kiosk-visits query finds visits by their key. SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, bindparam, event, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from experiments import store
from experiments.eventlog import kiosks, trials, visits
from experiments.store import driver
from experiments.store.events import _ids_value, _kiosk_visits_query
from experiments.store.kiosks import token_hash
from experiments.store.sql import utcnow
from tests.factories import query_plan, trial_yaml


def _trial_row(trial_id: str) -> dict:
    return {
        "id": trial_id, "title": trial_id, "status": "loaded", "current_version": "v",
        "allocation_secret": "s", "created_at": utcnow(),
    }  # fmt: skip


def _add_trial(engine: Engine) -> driver.Compiled:
    statement = insert(trials).returning(trials.c.id)
    return driver.compiled(statement.values({name: bindparam(name) for name in _trial_row("")}),
                           engine.dialect)  # fmt: skip


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(trials)).scalar_one()


def test_a_statement_runs_in_the_connections_transaction(engine: Engine) -> None:
    statement = _add_trial(engine)
    with engine.connect() as conn:
        assert driver.fetch(conn, statement, _trial_row("undone")) == [("undone",)]
        assert conn.in_transaction()
        conn.rollback()
    assert _count(engine) == 0
    with engine.connect() as conn:
        driver.fetch(conn, statement, _trial_row("kept"))
        conn.commit()
    assert _count(engine) == 1


def test_the_engines_listeners_see_the_statements(engine: Engine) -> None:
    """Run by fetch and by commit_with."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    statement, plain = _add_trial(engine), _add_trial_plainly(engine)
    event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.begin() as conn:
            driver.fetch(conn, statement, _trial_row("t"))
        with engine.connect() as conn:
            driver.commit_with(conn, plain, _trial_row("u"))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert seen == [statement.sql, plain.sql]


def test_a_driver_error_is_sqlalchemys_and_the_connection_goes_on(engine: Engine) -> None:
    statement = _add_trial(engine)
    with engine.connect() as conn:
        driver.fetch(conn, statement, _trial_row("twice"))
        with pytest.raises(IntegrityError) as raised:
            driver.fetch(conn, statement, _trial_row("twice"))
        assert isinstance(raised.value, DBAPIError)
        assert raised.value.statement == statement.sql
        conn.rollback()
        driver.fetch(conn, statement, _trial_row("after"))
        conn.commit()
    with engine.connect() as conn:
        assert list(conn.execute(select(trials.c.id)).scalars()) == ["after"]


def test_an_expanding_parameter_is_refused(engine: Engine) -> None:
    statement = select(trials.c.id).where(trials.c.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="JSON"):
        driver.compiled(statement, engine.dialect)


def test_literal_values_are_sent_with_the_statement(engine: Engine) -> None:
    statement = driver.compiled(select(text("'a'"), bindparam("fixed", "b")), engine.dialect)
    with engine.connect() as conn:
        assert driver.fetch(conn, statement, {}) == [("a", "b")]


@pytest.fixture
def kiosk_visits(engine: Engine, trial):  # type: ignore[no-untyped-def]
    """A running trial with one kiosk and 40 of its visits: (token, visit ids)."""
    with engine.begin() as conn:
        store.load_trial(conn, trial, trial_yaml())
        store.start_trial(conn, trial.id)
        kiosk, token = store.register_kiosk(conn, trial, trial.location_ids[0])
        spec = store.VisitSpec(trial.location_ids[0], trial.languages[0], kiosk.id)
        started = store.start_visits(conn, trial, [spec] * 40, rng=random.Random(1))
    return token, [visit.id for visit in started]


def test_visit_times_are_read_as_sqlalchemy_reads_them(engine: Engine, kiosk_visits) -> None:  # type: ignore[no-untyped-def]
    token, ids = kiosk_visits
    with engine.connect() as conn:
        expected = dict(conn.execute(select(visits.c.id, visits.c.started_at)).all())
        found = store.lock_kiosk_visits(conn, token, ids[:3], opt_out=False).visits
    assert sorted(found) == sorted(ids[:3])
    for visit_id, visit in found.items():
        assert isinstance(visit.started_at, datetime) and visit.started_at.tzinfo is not None
        assert visit.started_at == store.aware(expected[visit_id])
        assert visit.started_at.utcoffset() == timedelta(0)  # stored and read in UTC


def _plan(engine: Engine, opt_out: bool, ids: list[str], token: str) -> str:
    query = _kiosk_visits_query(engine.dialect, opt_out).statement
    values = {"ids": _ids_value(engine.dialect.name, ids), "token_hash": token_hash(token)}
    return query_plan(engine, query, values)


@pytest.mark.parametrize("opt_out", [False, True])
def test_the_kiosk_visits_query_finds_each_visit_by_its_key(  # type: ignore[no-untyped-def]
    engine: Engine, kiosk_visits, opt_out: bool
) -> None:
    """Not by reading every visit of the kiosk (the planner's choice without the ``+``/``||``
    of :data:`experiments.store.events._IDS_FILTER`), as both choose with tables not yet
    analysed. PostgreSQL would read these few rows whole: it is asked to choose an index."""
    token, ids = kiosk_visits
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(kiosks)).scalar_one() == 1
    plan = _plan(engine, opt_out, ids[:2], token)
    if engine.dialect.name == "sqlite":
        assert "SEARCH visits USING INDEX sqlite_autoindex_visits_1 (id=?)" in plan, plan
    else:
        assert "pk_visits" in plan and "ix_visits_kiosk_id" not in plan, plan


def test_a_write_that_begins_with_with_is_refused(engine: Engine) -> None:
    """make_engine's listener would not see it as a write (it gets no execution context)."""
    source = select(trials.c.id).where(trials.c.id == "x").cte("source")
    statement = insert(trials).from_select(["id"], select(source.c.id))
    with pytest.raises(ValueError, match="WITH"):
        driver.compiled(statement, engine.dialect)


def _add_trial_plainly(engine: Engine) -> driver.Compiled:
    statement = insert(trials).values({name: bindparam(name) for name in _trial_row("")})
    return driver.compiled(statement, engine.dialect)


def test_a_write_committed_with_itself_ends_the_transaction(engine: Engine) -> None:
    """Committed as it returns (another connection sees it, a rollback keeps it, no
    transaction is left open), with what the transaction wrote before."""
    plain = _add_trial_plainly(engine)
    with engine.connect() as conn:
        assert driver.commit_with(conn, plain, _trial_row("first")) == 1
        assert not conn.in_transaction()
        assert _count(engine) == 1
        driver.fetch(conn, _add_trial(engine), _trial_row("before"))
        assert driver.commit_with(conn, plain, _trial_row("last")) == 1
        assert not conn.in_transaction()
        assert _count(engine) == 3
        conn.rollback()
    assert _count(engine) == 3


def test_a_failed_write_commits_nothing_and_the_connection_goes_on(engine: Engine) -> None:
    plain = _add_trial_plainly(engine)
    with engine.connect() as conn:
        driver.commit_with(conn, plain, _trial_row("twice"))
        driver.fetch(conn, _add_trial(engine), _trial_row("undone"))
        with pytest.raises(IntegrityError):
            driver.commit_with(conn, plain, _trial_row("twice"))
        conn.rollback()
        assert driver.commit_with(conn, plain, _trial_row("next")) == 1
    assert _count(engine) == 2


def test_a_write_with_returning_cannot_commit_with_itself(engine: Engine) -> None:
    """SQLite would hold the write lock until its rows were read; a read is no write."""
    with engine.connect() as conn:
        with pytest.raises(ValueError, match="RETURNING"):
            driver.commit_with(conn, _add_trial(engine), _trial_row("r"))
        read = driver.compiled(select(trials.c.id), engine.dialect)
        with pytest.raises(ValueError, match="RETURNING"):
            driver.commit_with(conn, read, {})
