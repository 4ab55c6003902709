"""counting indexes: visits, assignments and events covered by (trial, visit)

The report's counting pass (``analysis.visit_classes``) reads a trial's visits in id order and,
per visit, its arm and its events, from these indexes alone. Each replaces an index with the
same leading column that no query needs any more, so a write updates as many indexes as before.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 14:00:00.000000
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_visits_trial_id_id",
        "visits",
        ["trial_id", "id", "location", "language", "started_at", "trial_version"],
    )
    op.drop_index("ix_visits_trial_id", table_name="visits")
    op.create_index(
        "ix_assignments_trial_id_visit_id", "assignments", ["trial_id", "visit_id", "arm"]
    )
    op.drop_index("ix_assignments_trial_id_arm", table_name="assignments")
    op.create_index(
        "ix_events_trial_id_visit_id",
        "events",
        ["trial_id", "visit_id", "type", "language", "disclosure_version", "material_version"],
    )
    op.drop_index("ix_events_trial_id_type", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_trial_id_type", "events", ["trial_id", "type"])
    op.drop_index("ix_events_trial_id_visit_id", table_name="events")
    op.create_index("ix_assignments_trial_id_arm", "assignments", ["trial_id", "arm"])
    op.drop_index("ix_assignments_trial_id_visit_id", table_name="assignments")
    op.create_index("ix_visits_trial_id", "visits", ["trial_id"])
    op.drop_index("ix_visits_trial_id_id", table_name="visits")
