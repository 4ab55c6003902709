"""Small SQL helpers shared by the store's modules: dialect-aware upserts and UTC times."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from experiments.store.errors import RecordingError


def utcnow() -> datetime:
    """The current time in UTC (everything the event log writes is UTC)."""
    return datetime.now(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite returns it without its offset)."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def insert_ignore(conn: Connection, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's dialect."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise RecordingError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")
