"""The audit log: who changed what, when, and from which interface. Append-only.

Every state-changing step of the command line and the console (lifecycle, kiosks, accounts,
memberships, amendments) writes one entry in the same transaction as the change, so an entry
exists exactly when the change does. There is no function to change or delete an entry, and the
database refuses it too (triggers of migration 0003). Entries name staff, never visitors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import Connection, insert, select

from experiments.eventlog import audit_log
from experiments.store.errors import RecordingError
from experiments.store.sql import aware, utcnow

#: Where an action came from.
Interface = Literal["cli", "console"]
INTERFACES: frozenset[str] = frozenset(get_args(Interface))


@dataclass(frozen=True)
class Actor:
    """Who acts: a console account's e-mail address, or the command line's user name."""

    name: str
    interface: Interface

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 320:
            raise RecordingError("an actor needs a name of 1 to 320 characters", "actor")
        if self.interface not in INTERFACES:
            raise RecordingError(
                f"interface must be one of {', '.join(sorted(INTERFACES))}", "interface"
            )


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit log (times aware, UTC)."""

    id: int
    at: datetime
    actor: str
    interface: str
    action: str
    trial_id: str | None
    target: str | None
    detail: str | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready values (the time as ISO 8601)."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "interface": self.interface,
            "action": self.action,
            "trial_id": self.trial_id,
            "target": self.target,
            "detail": self.detail,
        }


def audit(
    conn: Connection,
    actor: Actor,
    action: str,
    *,
    trial_id: str | None = None,
    target: str | None = None,
    detail: str | None = None,
    at: datetime | None = None,
) -> None:
    """Append one entry (call it in the transaction that makes the change)."""
    conn.execute(
        insert(audit_log).values(
            at=at or utcnow(),
            actor=actor.name,
            interface=actor.interface,
            action=action,
            trial_id=trial_id,
            target=target,
            detail=detail,
        )
    )


def read_audit(
    conn: Connection, trial_id: str | None = None, *, limit: int | None = None
) -> tuple[AuditEntry, ...]:
    """The entries of one trial (``trial_id``) or of everything, oldest first; with ``limit``,
    the newest ``limit`` of them (still oldest first)."""
    query = select(audit_log)
    if trial_id is not None:
        query = query.where(audit_log.c.trial_id == trial_id)
    if limit is not None:
        query = query.order_by(audit_log.c.id.desc()).limit(limit)
    else:
        query = query.order_by(audit_log.c.id)
    rows = list(conn.execute(query))
    if limit is not None:
        rows.reverse()
    return tuple(
        AuditEntry(
            row.id,
            aware(row.at),  # type: ignore[arg-type]
            row.actor,
            row.interface,
            row.action,
            row.trial_id,
            row.target,
            row.detail,
        )
        for row in rows
    )
