"""Hot-path statements compiled once and run on the database driver's own cursor.

SQLAlchemy spends about 50–70 µs of Python on every statement it executes (execution context,
result wrapping): more than SQLite needs to run the event API's queries. The statements of that
hot path are therefore compiled once per dialect (:func:`compiled`) and run by :func:`fetch`
on the DBAPI cursor beneath the caller's SQLAlchemy connection, which keeps everything the rest
of the code relies on:

- the connection's transaction: it is begun in SQLAlchemy before the statement runs, so that
  the caller's ``commit()`` and ``rollback()`` reach the database;
- the engine's ``before_cursor_execute`` listeners see each statement (SQLite's
  ``BEGIN IMMEDIATE`` before a transaction's first write, see
  :func:`experiments.eventlog.make_engine`; statement counts in tests), with no execution
  context (``None``) and no ``after_cursor_execute``, and what a ``retval=True`` listener
  returns is not used: a listener that needs those (e.g. a tracer timing statements, or one
  rewriting statements) does not see these;
- a driver error is handled by SQLAlchemy as one of its own statements' would be: wrapped in
  :class:`sqlalchemy.exc.DBAPIError`, given to ``handle_error`` listeners, and a lost
  connection invalidates it and the pool.

Values come back as the driver returns them: pass a column's :func:`reader` to convert the
ones SQLAlchemy would (SQLite's text times).

A transaction's last write can be run with its commit (:func:`commit_with`). On SQLite, when it
is the transaction's only write, it then runs as a transaction of its own: SQLite takes the
write lock as the statement starts and commits as it ends, inside one call of the driver. A
transaction begun by ``BEGIN IMMEDIATE`` keeps the lock across three calls instead (BEGIN, the
write, COMMIT), and between them the thread must win back Python's GIL from the process's other
threads, which can take milliseconds while every other writer waits (``bench/README.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Dialect
from sqlalchemy.sql import ClauseElement

from experiments.eventlog import WRITE_ALONE


@dataclass(frozen=True)
class Compiled:
    """A statement as the driver takes it: its SQL, and how to order its parameters."""

    sql: str
    #: The bound parameters in the SQL's order (positional paramstyles), else None.
    order: tuple[str, ...] | None
    #: The values compiled into the statement (literals SQLAlchemy sends as parameters).
    fixed: Mapping[str, Any]
    #: Whether it is an INSERT, UPDATE or DELETE without RETURNING (see :func:`commit_with`).
    plain_write: bool = False

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """The driver's parameters for ``values`` (the statement's named parameters)."""
        merged = {**self.fixed, **values}
        if self.order is None:
            return merged
        return tuple(merged[name] for name in self.order)


def compiled(statement: ClauseElement, dialect: Dialect) -> Compiled:
    """Compile ``statement`` once for ``dialect`` (cache the result: this costs milliseconds).

    Its parameters may not be expanding (``IN`` lists): send a list as one JSON parameter."""
    result = statement.compile(dialect=dialect)
    if any(bind.expanding or bind.literal_execute for bind in result.binds.values()):
        raise ValueError("a list parameter cannot be compiled once; send it as JSON")
    if result.string.lstrip().upper().startswith("WITH") and (
        result.isinsert or result.isupdate or result.isdelete
    ):
        # make_engine's listener tells a write by its first word (it gets no context here)
        raise ValueError("a write that begins with WITH cannot run on the driver's cursor")
    fixed = {
        result.bind_names[bind]: bind.effective_value
        for bind in result.binds.values()
        if not bind.required
    }
    order = tuple(result.positiontup) if result.positiontup is not None else None
    writes = bool(result.isinsert or result.isupdate or result.isdelete)
    return Compiled(result.string, order, fixed, writes and not result.effective_returning)


def fetch(conn: Connection, statement: Compiled, values: Mapping[str, Any]) -> list[Any]:
    """Run ``statement`` with ``values`` on the driver's cursor beneath ``conn``, inside its
    transaction; all the rows it returns, as the driver's tuples."""
    if not conn.in_transaction():
        conn.begin()
    with _executed(conn, statement, values) as cursor:
        return cursor.fetchall() if cursor.description is not None else []


def commit_with(conn: Connection, statement: Compiled, values: Mapping[str, Any]) -> int:
    """Run the write ``statement`` with ``values`` as the last statement of ``conn``'s
    transaction and commit the transaction: on SQLite, when nothing was written yet, the
    statement is a transaction of its own (no ``BEGIN``, committed by SQLite as it ends);
    otherwise the driver commits after it. Return the number of rows it wrote (rows written by
    triggers not counted).

    The engine's listeners see the statement, and ``conn``'s transaction is over when it
    returns. A write with RETURNING is refused: SQLite would keep its lock until its rows were
    read."""
    if not statement.plain_write:
        raise ValueError("only an INSERT, UPDATE or DELETE without RETURNING commits with itself")
    dbapi = conn.connection.dbapi_connection
    alone = conn.dialect.name == "sqlite" and not dbapi.in_transaction  # type: ignore[union-attr]
    if not conn.in_transaction():
        conn.begin()
    with _executed(conn, statement, values, alone=alone) as cursor:
        written = int(cursor.rowcount)
    conn.commit()  # after a write alone, SQLite has nothing left to commit
    return written


@contextmanager
def _executed(
    conn: Connection, statement: Compiled, values: Mapping[str, Any], *, alone: bool = False
) -> Iterator[Any]:
    """The driver's cursor after ``statement`` ran on it, the engine's listeners told first
    (``alone``: as a write SQLite runs as a transaction of its own); closed afterwards."""
    parameters = statement.parameters(values)
    cursor = conn.connection.cursor()
    try:
        if alone:
            conn.info[WRITE_ALONE] = True
        try:
            conn.dispatch.before_cursor_execute(
                conn, cursor, statement.sql, parameters, None, False
            )
        finally:
            if alone:
                del conn.info[WRITE_ALONE]
        cursor.execute(statement.sql, parameters)
        yield cursor
    except BaseException as error:
        # SQLAlchemy's own handler (as for its statements): wraps a driver error, runs the
        # handle_error listeners and, on a lost connection or an interrupt, invalidates the
        # connection (and the pool); it raises.
        conn._handle_dbapi_exception(error, statement.sql, parameters, cursor, None)
        raise
    finally:
        cursor.close()


def reader(column: Column[Any], dialect: Dialect) -> Callable[[Any], Any]:
    """How SQLAlchemy would convert ``column``'s driver values for ``dialect`` (identity where
    it does not); look it up once, with the statement."""
    processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
    return processor if processor is not None else _same


def _same(value: Any) -> Any:
    return value
