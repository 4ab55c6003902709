"""Kiosks: registration, and the secret token in a kiosk's URL (only its hash is stored)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, func, insert, select

from experiments.eventlog import kiosks
from experiments.model import Trial
from experiments.store.sql import utcnow


@dataclass(frozen=True)
class Kiosk:
    """A registered kiosk: which trial and location it serves, and whether it is switched on."""

    id: str
    trial_id: str
    location: str
    active: bool


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
    """The kiosk whose token this is, or None (active or not: the caller decides)."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(
        select(kiosks.c.id, kiosks.c.trial_id, kiosks.c.location, kiosks.c.active).where(
            kiosks.c.token_hash == token_hash(token)
        )
    ).first()
    return Kiosk(row.id, row.trial_id, row.location, bool(row.active)) if row else None


def active_kiosk_counts(conn: Connection) -> dict[str, int]:
    """Switched-on kiosks per trial id."""
    rows = conn.execute(
        select(kiosks.c.trial_id, func.count())
        .where(kiosks.c.active.is_(True))
        .group_by(kiosks.c.trial_id)
    )
    return {str(trial_id): int(count) for trial_id, count in rows}
