"""SQLite writers of one process queue in Python for the write lock, not in SQLite's busy handler.

SQLite lets one connection write at a time. A connection that finds the write lock taken is put
to sleep by SQLite's busy handler, for 1, 2, 5, 10, 15, 20, 25 … 100 ms between attempts, however
soon the lock is released. Under load most writers of a server find it taken: with 50 kiosk
connections on 2 workers of 4 threads, the event API's INSERT (0.2 ms of work) waited 9 ms at
the 90th percentile and 80–100 ms at the 99th, and up to 0.6 s.

:class:`QueuedWriterConnection` (the connection class of
:func:`experiments.eventlog.make_engine`'s SQLite engines) makes the threads of one process
queue for a database on a Python lock first: a waiting thread wakes the moment the writer
before it commits or rolls back. Only the thread at the head of the queue waits for a writer of
another process (another server worker, the command line), and it tries again after sleeps of
0.1 ms growing to 2 ms instead of SQLite's. Both waits honour the connection's
``busy_timeout``: a connection that would not wait in SQLite does not wait here either, and
gets SQLite's own "database is locked" error.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from typing import Any

#: Seconds before the first retry of ``BEGIN IMMEDIATE`` while another process writes, and
#: the longest sleep between two (each jittered by ±50 %).
FIRST_RETRY = 0.0001
LAST_RETRY = 0.002

_QUEUES: dict[str, threading.Lock] = {}
_QUEUES_LOCK = threading.Lock()


def _queue(path: str) -> threading.Lock:
    """The process's queue for the database at ``path``."""
    key = os.path.realpath(path)
    with _QUEUES_LOCK:
        return _QUEUES.setdefault(key, threading.Lock())


class QueuedWriterConnection(sqlite3.Connection):
    """A SQLite connection whose write transactions (begun by :meth:`begin_immediate`) hold the
    process's queue for its database until the transaction ends: commit, rollback or close."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._queue = _queue(os.fsdecode(database))
        self._holds_queue = False
        #: The connection's own busy timeout (ms), set to 0 while its write transaction lasts.
        self._busy_timeout = 0

    def begin_immediate(self) -> None:
        """``BEGIN IMMEDIATE``, after this process's writers before it.

        Between the queue and the end of the transaction the connection makes no call of its
        own into SQLite but ``BEGIN``: while a thread holds the write lock, every such call
        may wait for Python's GIL. The busy timeout is read and set to 0 (the retries here do
        the waiting) before the queue, and set back after the transaction."""
        if self._holds_queue:  # a transaction SQLite ended by itself, e.g. after an error
            self._begin_with_retries(time.monotonic() + self._busy_timeout / 1000)
            return
        (timeout_ms,) = self.execute("PRAGMA busy_timeout").fetchone()
        if timeout_ms > 0:
            self.execute("PRAGMA busy_timeout=0")
            self._busy_timeout = timeout_ms
        deadline = time.monotonic() + timeout_ms / 1000
        try:
            waited = self._queue.acquire(timeout=timeout_ms / 1000) if timeout_ms > 0 else False
            if not waited and not self._queue.acquire(blocking=False):
                raise sqlite3.OperationalError("database is locked")
            self._holds_queue = True
            self._begin_with_retries(deadline)
        except BaseException:
            self._transaction_ended()
            raise

    def _begin_with_retries(self, deadline: float) -> None:
        """``BEGIN IMMEDIATE``, tried again after short sleeps while another process writes,
        until ``deadline`` (SQLite's busy handler would sleep up to 100 ms between tries)."""
        delay = FIRST_RETRY
        while True:
            try:
                self.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                busy = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 1.5, LAST_RETRY)

    def _transaction_ended(self, *, closed: bool = False) -> None:
        """Leave the queue and give the connection its busy timeout back."""
        if self._holds_queue:
            self._holds_queue = False
            self._queue.release()
        if self._busy_timeout and not closed:
            self.execute(f"PRAGMA busy_timeout={int(self._busy_timeout)}")
        self._busy_timeout = 0

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self._transaction_ended()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            if not self.in_transaction:
                self._transaction_ended()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._transaction_ended(closed=True)

    @property
    def holds_queue(self) -> bool:
        """Whether this connection's write transaction holds the process's queue."""
        return self._holds_queue

    def __del__(self) -> None:
        # Collected without close() (SQLite rolls back what was open): leave the queue.
        if getattr(self, "_holds_queue", False):
            self._holds_queue = False
            self._queue.release()


def _forget_queues_after_fork() -> None:
    """A child process starts with no queue held: a lock another thread of the parent held
    at the fork would otherwise stay held in the child."""
    global _QUEUES_LOCK
    _QUEUES.clear()
    _QUEUES_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_queues_after_fork)
