"""console: lifecycle draft/running/paused/closed, pauses, amendments, kiosk state, accounts, audit

Statuses are renamed: ``loaded`` becomes ``draft``, and ``stopped`` becomes ``closed`` (the
report already treated a stopped trial as ended: its ``stopped_at`` is the end used for the
deletion date). The audit log gets triggers that refuse UPDATE and DELETE on both databases.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 17:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_APPEND_ONLY = "the audit log is append-only"


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("kiosks") as batch:
        batch.add_column(_time("revoked_at", nullable=True))
        batch.add_column(_time("last_seen_at", nullable=True))
    op.execute("UPDATE trials SET status = 'draft' WHERE status = 'loaded'")
    op.execute("UPDATE trials SET status = 'closed' WHERE status = 'stopped'")
    op.create_table(
        "trial_pauses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trial_id", sa.String(length=64), nullable=False),
        _time("paused_at"),
        _time("resumed_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name=op.f("fk_trial_pauses_trial_id_trials")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trial_pauses")),
    )
    op.create_index("ix_trial_pauses_trial_id", "trial_pauses", ["trial_id"])
    op.create_table(
        "trial_amendments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("trial_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("previous_version", sa.String(length=64), nullable=False),
        _time("amended_at"),
        sa.Column("changes", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("interface", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name=op.f("fk_trial_amendments_trial_id_trials")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trial_amendments")),
    )
    op.create_index("ix_trial_amendments_trial_id", "trial_amendments", ["trial_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("password_change_required", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        _time("locked_until", nullable=True),
        _time("created_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "trial_members",
        sa.Column("trial_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _time("added_at"),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name=op.f("fk_trial_members_trial_id_trials")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_trial_members_user_id_users")
        ),
        sa.PrimaryKeyConstraint("trial_id", "user_id", name=op.f("pk_trial_members")),
    )
    op.create_index("ix_trial_members_user_id", "trial_members", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _time("at"),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("interface", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("trial_id", sa.String(length=64), nullable=True),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_trial_id", "audit_log", ["trial_id"])
    _append_only_triggers()


def _append_only_triggers() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
            "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
        )
        return
    for verb in ("update", "delete"):
        op.execute(
            f"CREATE TRIGGER audit_log_no_{verb} BEFORE {verb.upper()} ON audit_log "
            f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_index("ix_audit_log_trial_id", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_trial_members_user_id", table_name="trial_members")
    op.drop_table("trial_members")
    op.drop_table("users")
    op.drop_index("ix_trial_amendments_trial_id", table_name="trial_amendments")
    op.drop_table("trial_amendments")
    op.drop_index("ix_trial_pauses_trial_id", table_name="trial_pauses")
    op.drop_table("trial_pauses")
    op.execute("UPDATE trials SET status = 'loaded' WHERE status = 'draft'")
    op.execute("UPDATE trials SET status = 'stopped' WHERE status IN ('paused', 'closed')")
    with op.batch_alter_table("kiosks") as batch:
        batch.drop_column("last_seen_at")
        batch.drop_column("revoked_at")
