"""The Alembic migrations create exactly the schema that eventlog.py declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from experiments.eventlog import ALLOWED_COLUMNS, metadata


def test_migrations_match_the_declared_tables(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, metadata) == []
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
    assert tables == set(ALLOWED_COLUMNS)
