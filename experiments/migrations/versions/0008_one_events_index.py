"""one events index: a visit's events found and summarised by one index instead of two

Since the report counts from the visits' summaries (migration 0006), no query reads the events
by trial first: the index led by ``trial_id`` (migration 0002) served only the summary
triggers, and ``ix_events_visit_id`` the lookups of a visit's events (its opt-out, the
outcomes an opt-out deletes). One index led by the visit and covering what the triggers read
serves both, and each stored event updates three indexes instead of four: in one process,
388-397 instead of 400-406 µs of CPU per event API request on SQLite (``bench/README.md``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 06:40:00.000000
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COVERED = ["trial_id", "type", "language", "disclosure_version", "material_version"]


def upgrade() -> None:
    op.create_index("ix_events_visit_id_trial_id", "events", ["visit_id", *_COVERED])
    op.drop_index("ix_events_trial_id_visit_id", table_name="events")
    op.drop_index("ix_events_visit_id", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_visit_id", "events", ["visit_id"])
    op.create_index(
        "ix_events_trial_id_visit_id",
        "events",
        ["trial_id", "visit_id", "type", "language", "disclosure_version", "material_version"],
    )
    op.drop_index("ix_events_visit_id_trial_id", table_name="events")
