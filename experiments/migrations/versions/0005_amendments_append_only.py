"""amendments append-only: trial_amendments refuses UPDATE and DELETE, like the audit log

An amendment is what the register and the report show as a deviation from the
pre-registration; once written it must not be edited or removed, so the same triggers as
``audit_log`` (migration 0003) now guard ``trial_amendments`` on both databases.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 18:20:00.000000
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_APPEND_ONLY = "amendments are append-only"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION trial_amendments_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER trial_amendments_append_only BEFORE UPDATE OR DELETE "
            "ON trial_amendments FOR EACH ROW EXECUTE FUNCTION trial_amendments_append_only()"
        )
        return
    for verb in ("update", "delete"):
        op.execute(
            f"CREATE TRIGGER trial_amendments_no_{verb} BEFORE {verb.upper()} "
            f"ON trial_amendments BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER trial_amendments_append_only ON trial_amendments")
        op.execute("DROP FUNCTION trial_amendments_append_only()")
        return
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER trial_amendments_no_{verb}")
