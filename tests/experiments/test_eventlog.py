"""The Alembic migrations create exactly the schema that eventlog.py declares, also when an
existing database is upgraded."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.schema import CreateIndex

from experiments.eventlog import (
    ALLOWED_COLUMNS,
    CLASSES_INDEX,
    include_in_comparison,
    make_engine,
    metadata,
    refresh_planner_statistics,
    upgrade,
)
from tests.experiments.test_visit_summaries import kept, recount
from tests.factories import running_trial_visits

# SQLite's index for the counting pass is on an expression, which SQLAlchemy cannot reflect
# (and Alembic therefore not compare); test_the_classes_index_is_on_sqlite_only checks it.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:Skipped unsupported reflection of expression-based index ix_visits_classes"
    ),
    pytest.mark.filterwarnings(
        "ignore:autogenerate skipping metadata-specified expression-based index"
    ),
]


def _comparison(connection) -> MigrationContext:  # type: ignore[no-untyped-def]
    return MigrationContext.configure(connection, opts={"include_object": include_in_comparison})


def test_migrations_match_the_declared_tables(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        assert compare_metadata(_comparison(connection), metadata) == []
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
    assert tables == set(ALLOWED_COLUMNS)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """An empty database without any schema: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return request.getfixturevalue("postgres_url")


def _indexes(connection) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    found = inspect(connection)
    return {
        table: {ix["name"] for ix in found.get_indexes(table) if "duplicates_constraint" not in ix}
        for table in COUNTED
    }


COUNTED = ("visits", "assignments", "events")


def test_upgrade_from_0001_keeps_the_data_and_swaps_the_counting_indexes(
    unmigrated_url: str,
) -> None:
    upgrade(unmigrated_url, "0001")
    engine = make_engine(unmigrated_url)
    with engine.begin() as conn:
        running_trial_visits(conn, 12, seed=3, exposed=True)
    with engine.connect() as conn:
        assert _indexes(conn) == {
            "visits": {"ix_visits_trial_id"},
            "assignments": {"ix_assignments_trial_id_arm"},
            "events": {"ix_events_visit_id", "ix_events_trial_id_type"},
        }
        rows = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in COUNTED}
    upgrade(engine)
    with engine.connect() as conn:
        assert _indexes(conn) == {
            "visits": {"ix_visits_trial_id_id", "ix_visits_kiosk_id_started_at"},  # 0002, 0004
            "assignments": {"ix_assignments_trial_id_visit_id"},
            "events": {"ix_events_visit_id_trial_id"},  # 0008
        }
        assert compare_metadata(_comparison(conn), metadata) == []
        after = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in COUNTED}
        summaries = kept(conn)  # 0006 filled each visit's arm and signature from its rows
        assert summaries == recount(conn)
        assert {signature for _, signature in summaries.values()} == {"x\x1f=en\x1f\x1f"}
    assert rows == after == {"visits": 12, "assignments": 12, "events": 12}
    engine.dispose()


def test_the_classes_index_is_on_sqlite_only(engine) -> None:  # type: ignore[no-untyped-def]
    """The index the counting pass reads its classes from, in the order it groups them."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            found = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'ix_visits_classes'")
            ).scalar()
            assert found == str(CreateIndex(CLASSES_INDEX).compile(dialect=engine.dialect))
        else:
            found = conn.execute(
                text("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_visits_classes'")
            ).scalar()
            assert found == 0


def test_planner_statistics_are_refreshed_on_postgresql_only(engine) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        running_trial_visits(conn, 5, seed=1)
    postgres = engine.dialect.name == "postgresql"
    estimate = (
        "SELECT reltuples FROM pg_class WHERE oid = to_regclass('visits')"
        if postgres
        else "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
    )
    with engine.begin() as conn:
        before = conn.execute(text(estimate)).scalar()
        refresh_planner_statistics(conn)
        after = conn.execute(text(estimate)).scalar()
    assert (before, after) == ((-1, 5) if postgres else (0, 0))
