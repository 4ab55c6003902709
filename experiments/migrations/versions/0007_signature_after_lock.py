"""signature after lock: PostgreSQL rewrites a visit's signature only once it holds the visit

Migration 0006's PostgreSQL trigger rewrote a visit's signature with one ``UPDATE visits SET
signature = (events of the visit)``. Two transactions writing events of the same visit at the
same moment each ran that statement with a snapshot taken before the other committed; the
second waited for the first's row lock and then wrote a signature computed without the first's
event, which was lost from the report's counts (READ COMMITTED re-checks the row, not the
subquery). The trigger now first locks the visit's row (``FOR NO KEY UPDATE``, the lock its
UPDATE takes anyway) and reads the events in a statement of its own, begun after that lock is
held: it sees every event committed before, and a transaction after it waits for its commit.
SQLite has one writer at a time and needs no change.

``tests/experiments/test_visit_summaries.py`` writes events of one visit from several
transactions at once and compares every signature with a recount (it failed on 0006).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 06:30:00.000000
"""

import importlib

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: Migration 0006, whose signature subquery this one keeps.
_SUMMARIES = importlib.import_module("experiments.migrations.versions.0006_visit_summaries")


def _refresh(row: str, locked: bool) -> str:
    """The statements that rewrite the signature of the visit of trigger row ``row``."""
    statement = _SUMMARIES._refresh(row, "postgresql")
    if not locked:
        return statement
    return f"PERFORM 1 FROM visits WHERE id = {row}.visit_id FOR NO KEY UPDATE; {statement}"


def _function(locked: bool) -> str:
    return (
        "CREATE OR REPLACE FUNCTION events_refresh_signature() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP <> 'INSERT' THEN {_refresh('OLD', locked)} END IF; "
        "IF TG_OP = 'INSERT' OR (NEW.trial_id, NEW.visit_id) <> (OLD.trial_id, OLD.visit_id) "
        f"THEN {_refresh('NEW', locked)} END IF; "
        "RETURN NULL; END $$"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function(locked=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function(locked=False))
