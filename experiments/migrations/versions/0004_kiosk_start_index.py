"""kiosk start index: a kiosk's latest visit found by (kiosk, start time)

The kiosk starts at most one visit per interval (``NUDGELAB_START_INTERVAL_SECONDS``): each
start looks up the kiosk's latest visit (``experiments.store.recent_kiosk_visit``), which this
index answers without reading the visits of the trial.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 17:30:00.000000
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_visits_kiosk_id_started_at", "visits", ["kiosk_id", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_visits_kiosk_id_started_at", table_name="visits")
