"""SQLite writers queue in Python (:mod:`experiments.sqlite_writers`): the threads of a process
one after another, another process's writer waited for with short retries; every wait bounded
by the connection's ``busy_timeout``, and the queue left however a transaction ends."""

from __future__ import annotations

import gc
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, func, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from experiments.eventlog import make_engine, trials, upgrade
from experiments.sqlite_writers import QueuedWriterConnection
from experiments.store.sql import utcnow


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "log.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite(database: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{database}")
    yield engine
    engine.dispose()


def _add_trial(conn: Connection, trial_id: str) -> None:
    conn.execute(
        insert(trials).values(
            id=trial_id, title=trial_id, status="loaded", current_version="v",
            allocation_secret="s", created_at=utcnow(),
        )
    )  # fmt: skip


def _busy_timeout(conn: Connection, milliseconds: int) -> None:
    conn.exec_driver_sql(f"PRAGMA busy_timeout={milliseconds}")
    conn.commit()


def _trials(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(trials)).scalar_one()


def test_the_engines_connections_queue(sqlite: Engine) -> None:
    with sqlite.connect() as conn:
        assert isinstance(conn.connection.dbapi_connection, QueuedWriterConnection)


def test_a_thread_waits_for_the_writer_before_it_and_then_writes(sqlite: Engine) -> None:
    first = sqlite.connect()
    _add_trial(first, "a")  # holds the write lock and the process's queue
    done = threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with sqlite.begin() as conn:
                _add_trial(conn, "b")
        except BaseException as error:
            errors.append(error)
        done.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not done.wait(0.3)  # waiting in the queue, not failing
    first.commit()
    assert done.wait(10)
    thread.join()
    first.close()
    assert errors == []
    assert _trials(sqlite) == 2


def test_an_impatient_connection_is_refused_at_once(sqlite: Engine) -> None:
    first, other = sqlite.connect(), sqlite.connect()
    _busy_timeout(other, 0)
    try:
        _add_trial(first, "a")
        began = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            _add_trial(other, "b")
        assert time.monotonic() - began < 1
        other.rollback()
        first.commit()
        _add_trial(other, "b")  # the queue is free again
        other.commit()
    finally:
        first.close()
        other.close()
    assert _trials(sqlite) == 2


def test_the_wait_in_the_queue_ends_at_the_busy_timeout(sqlite: Engine) -> None:
    first, other = sqlite.connect(), sqlite.connect()
    _busy_timeout(other, 200)
    try:
        _add_trial(first, "a")
        began = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            _add_trial(other, "b")
        assert 0.15 < time.monotonic() - began < 5
    finally:
        first.rollback()
        first.close()
        other.close()


@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
def test_the_queue_is_left_however_the_transaction_ends(sqlite: Engine, end: str) -> None:
    first, other = sqlite.connect(), sqlite.connect()
    _busy_timeout(other, 0)
    try:
        _add_trial(first, "a")
        getattr(first, end)()
        _add_trial(other, "b")  # would be "database is locked" if the queue were still held
        other.commit()
    finally:
        first.close()
        other.close()
    assert _trials(sqlite) == (2 if end == "commit" else 1)


HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
"""


def _held_by_another_process(database: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(database), str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_another_processs_writer_is_waited_for(sqlite: Engine, database: Path) -> None:
    holder = _held_by_another_process(database, 0.5)
    try:
        began = time.monotonic()
        with sqlite.begin() as conn:
            _add_trial(conn, "a")
            # while the transaction lasts, the retries did the waiting, not SQLite
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 0
        assert 0.3 < time.monotonic() - began < 10
        with sqlite.connect() as conn:  # the pool's one connection, its timeout given back
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30000
    finally:
        holder.communicate(timeout=10)
    assert _trials(sqlite) == 1


def test_another_processs_writer_is_waited_for_up_to_the_busy_timeout(
    sqlite: Engine, database: Path
) -> None:
    holder = _held_by_another_process(database, 3)
    try:
        with sqlite.connect() as conn:
            _busy_timeout(conn, 300)
            began = time.monotonic()
            with pytest.raises(OperationalError, match="database is locked"):
                _add_trial(conn, "a")
            assert 0.25 < time.monotonic() - began < 2.5
            conn.rollback()
            # the retries restored the connection's own timeout, and left the queue
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 300
    finally:
        holder.communicate(timeout=10)
    with sqlite.connect() as conn:
        _busy_timeout(conn, 0)
        _add_trial(conn, "b")
        conn.commit()


def test_a_failed_begin_leaves_the_queue(sqlite: Engine, database: Path) -> None:
    holder = _held_by_another_process(database, 1)
    try:
        with sqlite.connect() as conn:
            _busy_timeout(conn, 0)
            with pytest.raises(OperationalError, match="database is locked"):
                _add_trial(conn, "a")
    finally:
        holder.communicate(timeout=10)
    with sqlite.connect() as conn:  # another connection of this process is not held up
        _busy_timeout(conn, 0)
        _add_trial(conn, "b")
        conn.commit()
    assert _trials(sqlite) == 1


def test_a_connection_of_another_engine_on_the_same_file_queues_too(
    sqlite: Engine, database: Path
) -> None:
    other_engine = make_engine(f"sqlite:///{database}")
    try:
        first = sqlite.connect()
        _add_trial(first, "a")
        with other_engine.connect() as other:
            _busy_timeout(other, 0)
            with pytest.raises(OperationalError, match="database is locked"):
                other.execute(text("DELETE FROM trials WHERE id = 'none'"))
        first.commit()
        first.close()
    finally:
        other_engine.dispose()


def test_a_failed_commit_does_not_keep_the_queue(sqlite: Engine) -> None:
    """A commit SQLite refuses leaves its transaction open (here: a deferred foreign key);
    the connection's return to the pool ends it, so no writer of the process waits for it."""
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
    with sqlite.connect() as other:
        _busy_timeout(other, 0)
        _add_trial(other, "a")  # "database is locked" if the failed transaction were open
        other.commit()
    assert _trials(sqlite) == 1


def test_a_connection_collected_without_close_leaves_the_queue(
    sqlite: Engine, database: Path
) -> None:
    forgotten = sqlite3.connect(database, factory=QueuedWriterConnection, isolation_level=None)
    forgotten.begin_immediate()
    assert forgotten.holds_queue
    del forgotten
    gc.collect()
    with sqlite.connect() as other:
        _busy_timeout(other, 0)
        _add_trial(other, "a")
        other.commit()
