"""The event log: SQLAlchemy table definitions shared by the kiosk (writes) and analysis (reads).

Only anonymous, visit-level data are stored about visitors (docs/ethics.md#what-the-kiosk-stores):
no names, case numbers, IP addresses, user agents or free text. ``tests/app/test_privacy.py``
fails on any column outside its written-out allow list.

The console's tables (``users``, ``trial_members``, ``audit_log``, and the ``reason``/``actor``
of ``trial_amendments``) hold staff accounts and what staff did, never anything of a visitor:
no table that holds a staff member's address is joined to visits or events.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: One row per trial ever loaded; lifecycle and the locked pre-registration.
trials = Table(
    "trials",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("title", String(300), nullable=False),
    Column("status", String(16), nullable=False),  # draft | running | paused | closed
    Column("current_version", String(64), nullable=False),
    Column("locked_version", String(64)),  # the version in force when the trial started
    Column("locked_at", DateTime(timezone=True)),
    Column("started_at", DateTime(timezone=True)),
    Column("stopped_at", DateTime(timezone=True)),  # when the trial was closed
    Column("results_url", String(500)),
    Column("allocation_secret", String(64), nullable=False),  # never shown; seeds blocks/hash
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: Every version of a trial file that was loaded, verbatim (the register and the report use it).
trial_versions = Table(
    "trial_versions",
    metadata,
    Column("trial_id", ForeignKey("trials.id"), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("source", Text, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
)

kiosks = Table(
    "kiosks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("trial_id", ForeignKey("trials.id"), nullable=False),
    Column("location", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("active", Boolean, nullable=False, default=True),  # false: switched off or revoked
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),  # revoked for good: never switched on again
    Column("last_seen_at", DateTime(timezone=True)),  # last request, to the minute
)

visits = Table(
    "visits",
    metadata,
    Column("id", String(36), primary_key=True),  # random UUID, tied to no person
    Column("trial_id", ForeignKey("trials.id"), nullable=False),
    Column("trial_version", String(64), nullable=False),
    Column("location", String(64), nullable=False),
    Column("kiosk_id", ForeignKey("kiosks.id")),
    Column("language", String(8), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    # Kept by the database (the triggers of migrations 0006 and 0007), never written by the
    # code: the arm of the visit's assignment and its events as the counting pass reads them
    # (analysis.visit_classes), so that the pass reads the visits alone.
    Column("arm", String(64)),
    Column("signature", Text),
    # A trial's visits in id order with their strata, without reading the table (PostgreSQL's
    # counting pass and the per-visit exports and recounts).
    Index(
        "ix_visits_trial_id_id",
        "trial_id",
        "id",
        "location",
        "language",
        "started_at",
        "trial_version",
    ),
    # A kiosk's latest start (the one-start-per-interval rule, experiments.store.visits).
    Index("ix_visits_kiosk_id_started_at", "kiosk_id", "started_at"),
)

#: How SQLite writes the hour a visit started in (``YYYY-MM-DD HH``, UTC) for the counting pass.
HOUR_FORMAT = "%Y-%m-%d %H"

#: SQLite only (it groups by sorting): a trial's visits in the order of the counting pass's
#: classes, so that it reads them grouped, without a sort. PostgreSQL hashes instead.
CLASSES_INDEX = Index(
    "ix_visits_classes",
    visits.c.trial_id,
    text(f"strftime('{HOUR_FORMAT}', started_at)"),
    visits.c.arm,
    visits.c.location,
    visits.c.language,
    visits.c.trial_version,
    visits.c.signature,
    visits.c.started_at,
).ddl_if(dialect="sqlite")

assignments = Table(
    "assignments",
    metadata,
    Column("visit_id", ForeignKey("visits.id"), primary_key=True),
    Column("trial_id", ForeignKey("trials.id"), nullable=False),
    Column("arm", String(64), nullable=False),
    Column("method", String(16), nullable=False),
    Column("inputs", Text, nullable=False),  # JSON: the draw, or stratum/block/position
    Column("assigned_at", DateTime(timezone=True), nullable=False),
    # A visit's arm by (trial, visit) without reading the table (visits without assignment).
    Index("ix_assignments_trial_id_visit_id", "trial_id", "visit_id", "arm"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("visit_id", ForeignKey("visits.id"), nullable=False),
    Column("trial_id", ForeignKey("trials.id"), nullable=False),
    Column("type", String(64), nullable=False),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("language", String(8)),
    Column("material_version", String(64)),
    Column("disclosure_version", String(64)),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    # A visit's events with what the report reads: the triggers of migration 0006 rebuild a
    # visit's signature from it without reading the table (migration 0008).
    Index(
        "ix_events_visit_id_trial_id",
        "visit_id",
        "trial_id",
        "type",
        "language",
        "disclosure_version",
        "material_version",
    ),
)

#: Next free position per (trial, stratum) for permuted-block randomization.
allocation_counters = Table(
    "allocation_counters",
    metadata,
    Column("trial_id", ForeignKey("trials.id"), primary_key=True),
    Column("stratum", String(200), primary_key=True),
    Column("next_index", Integer, nullable=False),
)

#: One row each time results were computed (the report states how often they were looked at).
result_looks = Table(
    "result_looks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trial_id", ForeignKey("trials.id"), nullable=False),
    Column("looked_at", DateTime(timezone=True), nullable=False),
    Column("data_hash", String(64), nullable=False),
    Column("kind", String(32), nullable=False),  # analyze | export
)

#: Each pause of a trial: kiosks showed the control arm's plain information, randomized nobody.
trial_pauses = Table(
    "trial_pauses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trial_id", ForeignKey("trials.id"), nullable=False, index=True),
    Column("paused_at", DateTime(timezone=True), nullable=False),
    Column("resumed_at", DateTime(timezone=True)),  # None while paused (or closed paused)
)

#: A new version loaded after the trial started: when, by whom, why, and what it changed.
trial_amendments = Table(
    "trial_amendments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trial_id", ForeignKey("trials.id"), nullable=False, index=True),
    Column("version", String(64), nullable=False),
    Column("previous_version", String(64), nullable=False),
    Column("amended_at", DateTime(timezone=True), nullable=False),
    Column("changes", String(200), nullable=False),  # e.g. "arms, outcomes", or "other"
    Column("reason", Text),  # required when arms, materials, outcomes or the plan change
    Column("actor", String(320), nullable=False),
    Column("interface", String(16), nullable=False),  # cli | console
)

#: Staff accounts of the research console (never visitors).
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # researcher | evaluator | admin
    Column("password_hash", String(200), nullable=False),  # argon2id
    Column("password_change_required", Boolean, nullable=False, default=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: Which researchers (and evaluators) work on which trial.
trial_members = Table(
    "trial_members",
    metadata,
    Column("trial_id", ForeignKey("trials.id"), primary_key=True),
    Column("user_id", ForeignKey("users.id"), primary_key=True, index=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
)

#: Every state-changing action of the command line and the console. Append-only: the
#: migration adds triggers that refuse UPDATE and DELETE.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("interface", String(16), nullable=False),  # cli | console
    Column("action", String(64), nullable=False),
    Column("trial_id", String(64), index=True),  # no foreign key: the log outlives any row
    Column("target", String(200)),
    Column("detail", Text),
)

#: The complete list of columns the event log may hold. Anything else is a privacy defect.
ALLOWED_COLUMNS: dict[str, frozenset[str]] = {
    table.name: frozenset(column.name for column in table.columns)
    for table in metadata.sorted_tables
}

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def include_in_comparison(
    obj: object, _name: object, _type: str, _reflected: bool, _compare_to: object
) -> bool:
    """Alembic's ``include_object`` hook: every object but :data:`CLASSES_INDEX`, which Alembic
    cannot compare (SQLite's indexes on an expression cannot be reflected, and PostgreSQL has
    no such index by design); ``tests/experiments/test_eventlog.py`` checks it on its own."""
    return obj is not CLASSES_INDEX


#: Key of a connection's ``info``, true while :func:`experiments.store.driver.commit_with`
#: hands the listeners a write that SQLite runs as a transaction of its own.
WRITE_ALONE = "nudgelab.write_alone"


def make_engine(url: str, **kwargs: object) -> Engine:
    """Create an engine with the settings the event log relies on.

    SQLite gets WAL journaling (readers never wait for the writer), a busy timeout (a writer
    waits for the write lock instead of failing) and enforced foreign keys. ``sqlite://`` URLs
    without a path are refused, as each connection would get its own empty database.

    SQLite transactions are begun here, not by pysqlite (whose ``BEGIN`` is deferred): a
    statement that reads runs on its own until the transaction's first write, and the first
    write is preceded by ``BEGIN IMMEDIATE``, which waits (up to the busy timeout) for the write
    lock and keeps it until the commit or rollback. So a transaction takes the write lock only
    for its writes, never while it only reads, and a write never fails half-way because a
    deferred read snapshot could not be upgraded (SQLite answers that at once with "database
    is locked", without waiting). Whatever a write transaction reads after its first write
    sees the database as the write lock holder does. A transaction's only write run by
    :func:`experiments.store.driver.commit_with` gets no ``BEGIN``: it is a transaction of its
    own, holding the write lock only while SQLite runs it.
    """
    if url in ("sqlite://", "sqlite:///:memory:"):
        raise ValueError("use a SQLite file (sqlite:///path.db), not an in-memory database")
    engine = create_engine(url, **kwargs)  # type: ignore[arg-type]
    if engine.dialect.name == "sqlite":
        no_write = (
            "SELECT", "PRAGMA", "EXPLAIN", "VALUES", "BEGIN", "COMMIT", "END", "ROLLBACK",
            "SAVEPOINT", "RELEASE", "VACUUM", "ATTACH", "DETACH",
        )  # fmt: skip
        write_kinds = ("isinsert", "isupdate", "isdelete")

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None  # pysqlite begins no transaction itself
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "checkin")
        def _sqlite_end_transaction(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # A commit that failed (SQLAlchemy then skips its rollback on return) may leave
            # SQLite's transaction open, and with it the write lock, in an idle connection.
            if dbapi_connection.in_transaction:
                dbapi_connection.rollback()

        @event.listens_for(engine, "before_cursor_execute")
        def _sqlite_begin_write(conn, cursor, statement, _params, context, _many):  # type: ignore[no-untyped-def]
            if cursor.connection.in_transaction or conn.info.get(WRITE_ALONE):
                return
            verb = statement.lstrip()[:9].upper()
            if verb.startswith("WITH"):  # a read, unless SQLAlchemy compiled a write
                writes = any(getattr(context, kind, False) for kind in write_kinds)
            else:  # reads, transaction control, and what SQLite refuses in a transaction
                writes = not verb.startswith(no_write)
            if writes:
                cursor.execute("BEGIN IMMEDIATE")

    return engine


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Create or upgrade the event-log schema with the Alembic migrations."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if isinstance(url_or_engine, str):
        engine = make_engine(url_or_engine)
        owned = True
    else:
        engine, owned = url_or_engine, False
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        if owned:
            engine.dispose()


def refresh_planner_statistics(conn: Connection) -> None:
    """Refresh PostgreSQL's planner statistics of the visits, assignments and events tables.

    Call it after a bulk write (a simulation). Without statistics, as in a new schema on a
    server whose autovacuum has not come round yet (or is off), the planner guesses a few
    rows per table and the report's counting pass took twice as long at 100,000 visits
    (``bench/README.md``). SQLite needs nothing: its plans for the event log do not depend on
    statistics.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("ANALYZE visits, assignments, events"))
