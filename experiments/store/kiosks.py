"""Kiosks: registration, and the secret token in a kiosk's URL (only its hash is stored).

A kiosk is looked up on every request, in one query with its trial's row (status and current
version), so a kiosk switched off or a trial stopped or reloaded by another process is seen by
the next request, without a cache to invalidate.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, func, insert, select

from experiments.eventlog import kiosks, trials
from experiments.model import Trial
from experiments.store.sql import utcnow
from experiments.store.trials import TrialRecord, _record


@dataclass(frozen=True)
class Kiosk:
    """A registered kiosk: which trial and location it serves, and whether it is switched on."""

    id: str
    trial_id: str
    location: str
    active: bool
    #: Its trial's row, when read with it (:func:`find_kiosk`).
    trial_record: TrialRecord | None = field(default=None, compare=False, repr=False)


_FIND = (
    select(
        kiosks.c.id.label("kiosk_id"),
        kiosks.c.location.label("kiosk_location"),
        kiosks.c.active.label("kiosk_active"),
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


def register_kiosk(conn: Connection, trial: Trial, location: str) -> tuple[Kiosk, str]:
    """Register a kiosk for ``trial`` at ``location``; return it and its (only) token."""
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
    return Kiosk(row.kiosk_id, record.id, row.kiosk_location, bool(row.kiosk_active), record)


def active_kiosk_counts(conn: Connection) -> dict[str, int]:
    """Switched-on kiosks per trial id."""
    rows = conn.execute(
        select(kiosks.c.trial_id, func.count())
        .where(kiosks.c.active.is_(True))
        .group_by(kiosks.c.trial_id)
    )
    return {str(trial_id): int(count) for trial_id, count in rows}
