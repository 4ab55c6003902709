"""Kiosks: registration, state, last contact, and the secret token in a kiosk's URL (only its
hash is stored).

A kiosk is looked up on every request, in one query with its trial's row (status and current
version), so a kiosk switched off or revoked, or a trial paused, closed or reloaded by another
process, is seen by the next request, without a cache to invalidate.

States: ``active`` (switched on), ``off`` (switched off; can be switched on again) and
``revoked`` (for good: its token never works again and it cannot be switched on). Replacing a
token gives the kiosk a new one; the old one stops working at once. Each change writes an audit
entry when an ``actor`` is given (the command line and the console always give one).

Last contact (``last_seen_at``) is kept to the minute: a request writes it only when the stored
time is older than :data:`CONTACT_RESOLUTION`, so a busy kiosk costs one small UPDATE a minute,
not one per request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update

from experiments.eventlog import kiosks, trials
from experiments.model import Trial
from experiments.store.audit import Actor, audit
from experiments.store.sql import aware, utcnow
from experiments.store.trials import TrialRecord, TrialStatus, _record

#: How stale a kiosk's stored last contact may get before a request writes it again.
CONTACT_RESOLUTION = timedelta(minutes=1)

KioskState = Literal["active", "off", "revoked"]

#: The one test of a kiosk that may serve (switched on and not revoked), as SQL.
SWITCHED_ON = and_(kiosks.c.active.is_(True), kiosks.c.revoked_at.is_(None))


def switched_on(active: object, revoked_at: datetime | None) -> bool:
    """:data:`SWITCHED_ON` for a row already read."""
    return bool(active) and revoked_at is None


def contact_is_stale(last_seen_at: datetime | None, now: datetime) -> bool:
    """Whether a request at ``now`` should write the last contact (see the module doc)."""
    return last_seen_at is None or now - last_seen_at >= CONTACT_RESOLUTION


@dataclass(frozen=True)
class Kiosk:
    """A registered kiosk: which trial and location it serves, and whether it is switched on."""

    id: str
    trial_id: str
    location: str
    active: bool
    #: Its trial's row, when read with it (:func:`find_kiosk`).
    trial_record: TrialRecord | None = field(default=None, compare=False, repr=False)
    revoked_at: datetime | None = None
    last_seen_at: datetime | None = None
    created_at: datetime | None = None

    @property
    def state(self) -> KioskState:
        """``revoked`` for good, ``off`` (switched off) or ``active``."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.active else "off"

    def needs_contact_update(self, now: datetime) -> bool:
        """Whether a request at ``now`` should write the last contact (see the module doc)."""
        return contact_is_stale(self.last_seen_at, now)


_FIND = (
    select(
        kiosks.c.id.label("kiosk_id"),
        kiosks.c.location.label("kiosk_location"),
        kiosks.c.active.label("kiosk_active"),
        kiosks.c.revoked_at.label("kiosk_revoked_at"),
        kiosks.c.last_seen_at.label("kiosk_last_seen_at"),
        trials,
    )
    .join(trials, trials.c.id == kiosks.c.trial_id)
    .where(kiosks.c.token_hash == bindparam("token_hash"))
)


class KioskError(Exception):
    """A kiosk that cannot be registered; the message says why."""


def token_hash(token: str) -> str:
    """SHA-256 of a kiosk token: what the database keeps instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def kiosk_path(trial_id: str, location: str, token: str) -> str:
    """The path of a kiosk's welcome page: trial and location readable, the token secret."""
    return f"/kiosk/{trial_id}/{location}/{token}/"


def register_kiosk(
    conn: Connection, trial: Trial, location: str, actor: Actor | None = None
) -> tuple[Kiosk, str]:
    """Register a kiosk for ``trial`` at ``location``; return it and its (only) token.

    A closed trial gets no new kiosks."""
    record = conn.execute(select(trials.c.status).where(trials.c.id == trial.id)).scalar()
    if record is not None and TrialStatus(record) is TrialStatus.CLOSED:
        raise KioskError(f"trial {trial.id!r} is closed: it gets no new kiosks")
    if location not in trial.location_ids:
        raise KioskError(
            f"location {location!r} is not part of trial {trial.id!r}; "
            f"choose one of: {', '.join(trial.location_ids)}"
        )
    token = secrets.token_urlsafe(24)
    kiosk = Kiosk(secrets.token_hex(8), trial.id, location, True)
    conn.execute(
        insert(kiosks).values(
            id=kiosk.id,
            trial_id=trial.id,
            location=location,
            token_hash=token_hash(token),
            active=True,
            created_at=utcnow(),
        )
    )
    if actor is not None:
        audit(conn, actor, "kiosk.add", trial_id=trial.id, target=kiosk.id, detail=location)
    return kiosk, token


def find_kiosk(conn: Connection, token: str) -> Kiosk | None:
    """The kiosk whose token this is, with its trial's row, or None (active or not: the
    caller decides)."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(_FIND, {"token_hash": token_hash(token)}).first()
    if row is None:
        return None
    record = _record(row)
    return Kiosk(
        row.kiosk_id,
        record.id,
        row.kiosk_location,
        switched_on(row.kiosk_active, row.kiosk_revoked_at),
        record,
        revoked_at=aware(row.kiosk_revoked_at),
        last_seen_at=aware(row.kiosk_last_seen_at),
    )


def _kiosk(row) -> Kiosk:  # type: ignore[no-untyped-def]
    return Kiosk(
        row.id,
        row.trial_id,
        row.location,
        switched_on(row.active, row.revoked_at),
        revoked_at=aware(row.revoked_at),
        last_seen_at=aware(row.last_seen_at),
        created_at=aware(row.created_at),
    )


def list_kiosks(
    conn: Connection, trial_id: str | None = None, location: str | None = None
) -> list[Kiosk]:
    """The kiosks of a trial (or of all trials), by trial, location and age."""
    query = select(kiosks)
    if trial_id is not None:
        query = query.where(kiosks.c.trial_id == trial_id)
    if location is not None:
        query = query.where(kiosks.c.location == location)
    query = query.order_by(kiosks.c.trial_id, kiosks.c.location, kiosks.c.created_at, kiosks.c.id)
    return [_kiosk(row) for row in conn.execute(query)]


def require_kiosk(conn: Connection, kiosk_id: str) -> Kiosk:
    """The kiosk with this id; :class:`KioskError` when there is none."""
    row = conn.execute(select(kiosks).where(kiosks.c.id == kiosk_id)).first()
    if row is None:
        raise KioskError(f"no kiosk {kiosk_id!r}; `nudgelab kiosk list` shows them")
    return _kiosk(row)


def _not_revoked(kiosk: Kiosk, what: str) -> None:
    if kiosk.state == "revoked":
        raise KioskError(f"kiosk {kiosk.id} is revoked and cannot be {what}; add a new one")


def switch_kiosk(conn: Connection, kiosk_id: str, on: bool, actor: Actor | None = None) -> Kiosk:
    """Switch a kiosk on or off (its pages and API answer 403 while off). A revoked kiosk
    cannot be switched on."""
    kiosk = require_kiosk(conn, kiosk_id)
    if on:
        _not_revoked(kiosk, "switched on")
    changed = conn.execute(
        update(kiosks)
        .where(kiosks.c.id == kiosk_id, kiosks.c.revoked_at.is_(None))
        .values(active=on)
    ).rowcount
    if on and not changed:  # revoked by another process since it was read
        _not_revoked(require_kiosk(conn, kiosk_id), "switched on")
    if changed and actor is not None:
        action = "kiosk.on" if on else "kiosk.off"
        audit(conn, actor, action, trial_id=kiosk.trial_id, target=kiosk.id)
    return require_kiosk(conn, kiosk_id)


def revoke_kiosk(conn: Connection, kiosk_id: str, actor: Actor | None = None) -> Kiosk:
    """Revoke a kiosk for good: its token stops working with the next request."""
    kiosk = require_kiosk(conn, kiosk_id)
    revoked = conn.execute(
        update(kiosks)
        .where(kiosks.c.id == kiosk_id, kiosks.c.revoked_at.is_(None))
        .values(active=False, revoked_at=utcnow())
    ).rowcount
    if revoked and actor is not None:  # one revoke of two at once changes the row
        audit(conn, actor, "kiosk.revoke", trial_id=kiosk.trial_id, target=kiosk.id)
    return require_kiosk(conn, kiosk_id)


def replace_token(conn: Connection, kiosk_id: str, actor: Actor | None = None) -> tuple[Kiosk, str]:
    """Give a kiosk a new token; the old one stops working with the next request. Returns the
    kiosk and its new token (shown this once)."""
    kiosk = require_kiosk(conn, kiosk_id)
    _not_revoked(kiosk, "given a new token")
    token = secrets.token_urlsafe(24)
    replaced = conn.execute(
        update(kiosks)
        .where(kiosks.c.id == kiosk_id, kiosks.c.revoked_at.is_(None))
        .values(token_hash=token_hash(token))
    ).rowcount
    if not replaced:  # revoked by another process since it was read
        _not_revoked(require_kiosk(conn, kiosk_id), "given a new token")
    if actor is not None:
        audit(conn, actor, "kiosk.replace_token", trial_id=kiosk.trial_id, target=kiosk.id)
    return require_kiosk(conn, kiosk_id), token


def note_contact(conn: Connection, kiosk_id: str, now: datetime | None = None) -> bool:
    """Write the kiosk's last contact unless it is newer than :data:`CONTACT_RESOLUTION`;
    whether a row changed. One UPDATE; call it only when :meth:`Kiosk.needs_contact_update`
    says so (the caller knows the stored time from its lookup)."""
    now = now or utcnow()
    changed = conn.execute(
        update(kiosks)
        .where(
            kiosks.c.id == kiosk_id,
            or_(kiosks.c.last_seen_at.is_(None), kiosks.c.last_seen_at <= now - CONTACT_RESOLUTION),
        )
        .values(last_seen_at=now)
    ).rowcount
    return bool(changed)


def active_kiosk_counts(conn: Connection) -> dict[str, int]:
    """Switched-on kiosks per trial id."""
    rows = conn.execute(
        select(kiosks.c.trial_id, func.count()).where(SWITCHED_ON).group_by(kiosks.c.trial_id)
    )
    return {str(trial_id): int(count) for trial_id, count in rows}
