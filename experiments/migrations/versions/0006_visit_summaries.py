"""visit summaries: each visit's arm and event signature kept on its row by the database

The report's counting pass (``analysis.visit_classes``) groups a trial's visits into classes by
arm, strata, start hour and *event signature* (the visit's events as the analysis sees them).
It used to derive the arm and the signature for every visit at every analysis, one index seek
into ``assignments`` and one into ``events`` per visit: about 8 s of a 1.1-million-visit trial.
Now two columns of ``visits`` hold them, kept by triggers in the same statement as every write
of an assignment or an event (insert, update or delete, by the kiosk, the console, a simulation
or a hand-made repair), so they cannot go stale; the counting pass reads the visits alone.

- ``arm``: the arm of the visit's assignment, NULL without one.
- ``signature``: the visit's events except ``finish``, ``timeout`` and ``language_switch``
  (which change no figure of the report), one token per event, sorted, joined by the ASCII
  record separator (char 30): ``x`` + unit separator (char 31) + ``=language`` + char 31 +
  ``=disclosure_version`` + char 31 + ``=material_version`` for an ``exposure`` (an empty field
  for a missing value), the type for any other event; sorted by code point. NULL without
  such events.

SQLite groups by sorting, so it gets an index in the order of the classes (the start hour as
``strftime('%Y-%m-%d %H', started_at)``, as the counting pass computes it) and reads the
classes from it without sorting. PostgreSQL hashes the visits into classes and needs no index
for it; there the two columns are in no index, so their updates stay heap-only (HOT).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 20:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: Events that change no figure of the report (kept out of the signature: fewer classes).
_IGNORED = "('finish', 'timeout', 'language_switch')"


def _token(char: str) -> str:
    """One event's (``e``) signature token; ``char`` is the dialect's name for chr()."""
    unit = f" || {char}(31) || "
    fields = unit.join(
        f"coalesce('=' || e.{column}, '')"
        for column in ("language", "disclosure_version", "material_version")
    )
    return f"CASE WHEN e.type = 'exposure' THEN 'x'{unit}{fields} ELSE e.type END"


def _signature(trial: str, visit: str, dialect: str) -> str:
    """A subquery: the signature of the visit whose trial and id are the SQL expressions
    ``trial`` and ``visit`` (both, so that the events' covering index answers it)."""
    events = (
        f"FROM events e WHERE e.trial_id = {trial} AND e.visit_id = {visit} "
        f"AND e.type NOT IN {_IGNORED}"
    )
    if dialect == "postgresql":
        token = _token("chr")
        # Sorted by code point, as SQLite's BINARY collation does (not by the locale).
        return f'(SELECT string_agg({token}, chr(30) ORDER BY {token} COLLATE "C") {events})'
    # SQLite concatenates in the order of the rows it is given.
    return (
        f"(SELECT group_concat(token, char(30)) FROM "
        f"(SELECT {_token('char')} AS token {events} ORDER BY token))"
    )


_CLASSES_INDEX = (
    "CREATE INDEX ix_visits_classes ON visits (trial_id, strftime('%Y-%m-%d %H', started_at), "
    "arm, location, language, trial_version, signature, started_at)"
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column("visits", sa.Column("arm", sa.String(64)))
    op.add_column("visits", sa.Column("signature", sa.Text))
    op.execute(
        "UPDATE visits SET "
        "arm = (SELECT a.arm FROM assignments a WHERE a.visit_id = visits.id), "
        f"signature = {_signature('visits.trial_id', 'visits.id', dialect)}"
    )
    if dialect == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()
        op.execute(_CLASSES_INDEX)


def _refresh(row: str, dialect: str) -> str:
    """The statement that rewrites the signature of the visit of trigger row ``row``."""
    signature = _signature(f"{row}.trial_id", f"{row}.visit_id", dialect)
    return f"UPDATE visits SET signature = {signature} WHERE id = {row}.visit_id;"


#: An inserted event of these types changes no signature: its trigger does not run.
_COUNTED = f"NEW.type NOT IN {_IGNORED}"


def _postgresql_triggers() -> None:
    # The statements inline in PL/pgSQL, whose plans are kept for the session (a SQL function
    # called per row was planned at every call: 0.2 ms more per event).
    op.execute(
        "CREATE FUNCTION events_refresh_signature() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN "
        f"IF TG_OP <> 'INSERT' THEN {_refresh('OLD', 'postgresql')} END IF; "
        "IF TG_OP = 'INSERT' OR (NEW.trial_id, NEW.visit_id) <> (OLD.trial_id, OLD.visit_id) "
        f"THEN {_refresh('NEW', 'postgresql')} END IF; "
        "RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER events_refresh_signature_insert AFTER INSERT ON events FOR EACH ROW "
        f"WHEN ({_COUNTED}) EXECUTE FUNCTION events_refresh_signature()"
    )
    op.execute(
        "CREATE TRIGGER events_refresh_signature_change AFTER UPDATE OR DELETE ON events "
        "FOR EACH ROW EXECUTE FUNCTION events_refresh_signature()"
    )
    op.execute(
        "CREATE FUNCTION assignments_refresh_arm() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN "
        "IF TG_OP <> 'INSERT' THEN UPDATE visits SET arm = NULL WHERE id = OLD.visit_id; "
        "END IF; "
        "IF TG_OP <> 'DELETE' THEN UPDATE visits SET arm = NEW.arm WHERE id = NEW.visit_id; "
        "END IF; "
        "RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER assignments_refresh_arm AFTER INSERT OR UPDATE OR DELETE ON assignments "
        "FOR EACH ROW EXECUTE FUNCTION assignments_refresh_arm()"
    )


def _sqlite_triggers() -> None:
    for verb, rows, when in (
        ("insert", ("NEW",), f" WHEN {_COUNTED}"),
        ("delete", ("OLD",), ""),
        ("update", ("OLD", "NEW"), ""),
    ):
        body = " ".join(_refresh(row, "sqlite") for row in rows)
        op.execute(
            f"CREATE TRIGGER events_refresh_signature_{verb} AFTER {verb.upper()} ON events"
            f"{when} BEGIN {body} END"
        )
    clear = "UPDATE visits SET arm = NULL WHERE id = OLD.visit_id;"
    assign = "UPDATE visits SET arm = NEW.arm WHERE id = NEW.visit_id;"
    for verb, body in (("insert", assign), ("delete", clear), ("update", f"{clear} {assign}")):
        op.execute(
            f"CREATE TRIGGER assignments_refresh_arm_{verb} AFTER {verb.upper()} ON assignments "
            f"BEGIN {body} END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER assignments_refresh_arm ON assignments")
        op.execute("DROP FUNCTION assignments_refresh_arm()")
        op.execute("DROP TRIGGER events_refresh_signature_insert ON events")
        op.execute("DROP TRIGGER events_refresh_signature_change ON events")
        op.execute("DROP FUNCTION events_refresh_signature()")
    else:
        op.execute("DROP INDEX ix_visits_classes")
        for verb in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER assignments_refresh_arm_{verb}")
            op.execute(f"DROP TRIGGER events_refresh_signature_{verb}")
    # ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), not a batch copy of the table, which the
    # foreign keys into visits would refuse.
    for column in ("signature", "arm"):
        op.execute(f"ALTER TABLE visits DROP COLUMN {column}")
