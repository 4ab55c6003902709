"""SQLite transactions as :func:`experiments.eventlog.make_engine` begins them: the write lock
from a transaction's first write to its end, never while it only reads, and readers never
wait for it.

Each connection that must not wait sets ``busy_timeout=0``, so waiting for the lock shows as an
immediate "database is locked" instead of as time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from experiments.eventlog import make_engine, result_looks, trials, upgrade
from experiments.store import driver
from experiments.store.sql import utcnow


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _impatient(engine: Engine) -> Connection:
    connection = engine.connect()
    connection.exec_driver_sql("PRAGMA busy_timeout=0")
    connection.commit()
    return connection


def _add_trial(conn: Connection, trial_id: str) -> None:
    conn.execute(
        insert(trials).values(
            id=trial_id, title=trial_id, status="loaded", current_version="v",
            allocation_secret="s", created_at=utcnow(),
        )
    )  # fmt: skip


def _trial_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(trials)).scalar_one()


def test_a_transaction_takes_the_write_lock_at_its_first_write_and_keeps_it(
    sqlite: Engine,
) -> None:
    first, other = _impatient(sqlite), _impatient(sqlite)
    try:
        assert _trial_count(first) == 0  # a transaction that has only read ...
        with other.begin():
            _add_trial(other, "a")  # ... holds no lock: another writes at once
        _add_trial(first, "b")  # the first write: BEGIN IMMEDIATE, the lock until the end
        with other.begin():
            assert _trial_count(other) == 1  # readers do not wait; they see what is committed
        with pytest.raises(OperationalError, match="database is locked"), other.begin():
            _add_trial(other, "c")
        first.commit()
        with other.begin():
            _add_trial(other, "c")
            assert _trial_count(other) == 3
    finally:
        first.close()
        other.close()


def test_the_writes_of_a_transaction_are_one_transaction(sqlite: Engine) -> None:
    """The engine's BEGIN makes a rolled-back transaction leave nothing (pysqlite no longer
    begins transactions, so without it each write would commit on its own)."""
    with sqlite.connect() as conn:
        _add_trial(conn, "a")
        _add_trial(conn, "b")
        conn.rollback()
        assert _trial_count(conn) == 0
        _add_trial(conn, "a")
        look = {"trial_id": "a", "looked_at": utcnow(), "data_hash": "h", "kind": "analyze"}
        conn.execute(insert(result_looks).values(**look))
        conn.commit()
        assert _trial_count(conn) == 1


def test_a_failed_commit_does_not_keep_the_write_lock(sqlite: Engine) -> None:
    """A commit SQLite refuses leaves its transaction open (here: a deferred foreign key) and
    SQLAlchemy does not roll it back on return to the pool: the engine's check-in does, so the
    idle connection does not hold the write lock."""
    with sqlite.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql(
            "CREATE TABLE child (parent INTEGER REFERENCES parent (id) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )
    failing = sqlite.connect()
    failing.exec_driver_sql("INSERT INTO child VALUES (1)")
    with pytest.raises(IntegrityError):
        failing.commit()
    failing.close()
    elsewhere = make_engine(str(sqlite.url))  # another process's view: its own connection
    other = _impatient(elsewhere)
    try:
        _add_trial(other, "a")  # "database is locked" if the failed transaction were open
        other.commit()
        assert _trial_count(other) == 1
    finally:
        other.close()
        elsewhere.dispose()


def _trial_values(trial_id: str) -> dict:
    return {
        "id": trial_id, "title": trial_id, "status": "loaded", "current_version": "v",
        "allocation_secret": "s", "created_at": utcnow(),
    }  # fmt: skip


def _plain_add_trial(engine: Engine, *, or_ignore: bool = False) -> driver.Compiled:
    """An INSERT of a trial for :func:`experiments.store.driver.commit_with`."""
    values = select(*(bindparam(name) for name in _trial_values("")))
    statement = insert(trials).from_select(list(_trial_values("")), values)
    return driver.compiled(statement.prefix_with("OR IGNORE") if or_ignore else statement,
                           engine.dialect)  # fmt: skip


def test_a_transactions_only_write_committed_with_itself_runs_alone(sqlite: Engine) -> None:
    """SQLite runs the write alone (no BEGIN IMMEDIATE, no COMMIT: the statement is its own
    transaction, so the write lock is held only while SQLite runs it); after an earlier write
    it runs in that transaction, then COMMIT."""
    ran: list[str] = []
    plain = _plain_add_trial(sqlite)
    with sqlite.connect() as conn:
        assert _trial_count(conn) == 0  # the request's read first, as the event API does
        conn.connection.dbapi_connection.set_trace_callback(ran.append)  # type: ignore[union-attr]
        assert driver.commit_with(conn, plain, _trial_values("a")) == 1
        alone = [sql.split()[0] for sql in ran]
        ran.clear()
        _add_trial(conn, "b")
        assert driver.commit_with(conn, plain, _trial_values("c")) == 1
        after_a_write = [sql.split()[0] for sql in ran]
        conn.connection.dbapi_connection.set_trace_callback(None)  # type: ignore[union-attr]
    assert alone == ["INSERT"], ran
    assert after_a_write == ["BEGIN", "INSERT", "INSERT", "COMMIT"], ran
    other = _impatient(sqlite)
    try:
        assert _trial_count(other) == 3
    finally:
        other.close()


def test_a_write_committed_with_itself_counts_the_rows_it_wrote(sqlite: Engine) -> None:
    statement = _plain_add_trial(sqlite, or_ignore=True)
    with sqlite.connect() as conn:
        assert driver.commit_with(conn, statement, _trial_values("once")) == 1
        assert driver.commit_with(conn, statement, _trial_values("once")) == 0


def test_a_write_committed_with_itself_waits_for_another_writer(sqlite: Engine) -> None:
    """Another connection holds the write lock: the write waits for it (the busy timeout)
    instead of failing, and is then committed."""
    holder = sqlite.connect()
    _add_trial(holder, "holder")  # BEGIN IMMEDIATE: the lock until the commit
    release = threading.Timer(0.3, holder.commit)
    release.start()
    try:
        began = time.monotonic()
        with sqlite.connect() as conn:
            assert driver.commit_with(conn, _plain_add_trial(sqlite), _trial_values("w")) == 1
        assert time.monotonic() - began >= 0.25
    finally:
        release.join()
        holder.close()
    with sqlite.connect() as conn:
        assert _trial_count(conn) == 2


def test_a_failed_write_committed_with_itself_leaves_the_connection_usable(
    sqlite: Engine,
) -> None:
    statement = _plain_add_trial(sqlite)
    with sqlite.connect() as conn:
        driver.commit_with(conn, statement, _trial_values("twice"))
        with pytest.raises(IntegrityError):
            driver.commit_with(conn, statement, _trial_values("twice"))
        assert driver.commit_with(conn, statement, _trial_values("next")) == 1
        assert _trial_count(conn) == 2
