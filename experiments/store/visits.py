"""Visits: creating randomized visits (the assignment is recorded with the visit) and reading
back what a kiosk needs to know about them."""

from __future__ import annotations

import json
import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from experiments.assignment import Assignment, assign_block, assign_hash, assign_simple, stratum_key
from experiments.eventlog import allocation_counters, assignments, events, kiosks, trials, visits
from experiments.model import Trial
from experiments.store.errors import RecordingError
from experiments.store.kiosks import SWITCHED_ON
from experiments.store.sql import aware, utcnow
from experiments.store.trials import TrialRecord, _record, require_trial


@dataclass(frozen=True)
class VisitSpec:
    """What the kiosk knows when a visitor taps "start"."""

    location: str
    language: str
    kiosk_id: str | None = None
    started_at: datetime | None = None


@dataclass(frozen=True)
class StartedVisit:
    """A new visit and the arm it was randomized to."""

    id: str
    arm: str
    assignment: Assignment


@dataclass(frozen=True)
class AssignedVisit:
    """A stored visit as the kiosk reads it back: its arm, trial version and start."""

    id: str
    arm: str
    trial_version: str
    started_at: datetime


def _reservation(dialect: str) -> Insert:
    """Add ``count`` to a stratum's counter (created at 0 when missing); return the new value."""
    insert_ = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert_(allocation_counters).values(
        trial_id=bindparam("trial_id"), stratum=bindparam("stratum"), next_index=bindparam("count")
    )
    return statement.on_conflict_do_update(
        index_elements=[allocation_counters.c.trial_id, allocation_counters.c.stratum],
        set_={"next_index": allocation_counters.c.next_index + statement.excluded.next_index},
    ).returning(allocation_counters.c.next_index)


_RESERVATIONS = {dialect: _reservation(dialect) for dialect in ("postgresql", "sqlite")}


def _reserve_indices(conn: Connection, trial_id: str, stratum: str, count: int) -> int:
    """Atomically reserve ``count`` consecutive positions of a stratum; return the first.

    One upsert: it takes the counter's row lock (PostgreSQL) or the write lock (SQLite) until
    the caller's transaction ends, so concurrent visits never receive the same position.
    """
    parameters = {"trial_id": trial_id, "stratum": stratum, "count": count}
    end = conn.execute(_RESERVATIONS[conn.dialect.name], parameters).scalar_one()
    return end - count


def _validate_visit(trial: Trial, spec: VisitSpec) -> None:
    if spec.location not in trial.location_ids:
        raise RecordingError(
            f"location {spec.location!r} is not part of trial {trial.id!r}", "location"
        )
    if spec.language not in trial.languages:
        raise RecordingError(
            f"language {spec.language!r} is not one of {', '.join(trial.languages)}", "language"
        )


def start_visits(
    conn: Connection,
    trial: Trial,
    specs: Sequence[VisitSpec],
    *,
    rng: random.Random | None = None,
    record: TrialRecord | None = None,
) -> list[StartedVisit]:
    """Create visits and randomize each to an arm, recording the assignment with the visit.

    ``rng`` drives visit ids and simple draws; kiosks use the default
    (``secrets.SystemRandom``), the simulator a seeded generator. ``record`` is the trial's row
    when the caller has just read it (saves a query).
    """
    if not specs:
        return []
    for spec in specs:
        _validate_visit(trial, spec)
    rng = rng or secrets.SystemRandom()
    record = record or require_trial(conn, trial.id)
    method = trial.randomization.method
    weights = trial.weights
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in specs]

    chosen: list[Assignment]
    if method == "simple":
        chosen = [assign_simple(weights, rng) for _ in specs]
    elif method == "hash":
        salt = trial.randomization.salt or record.allocation_secret
        chosen = [assign_hash(weights, visit_id, salt) for visit_id in ids]
    else:
        chosen = _assign_blocks(conn, trial, record, specs)

    now = utcnow()
    conn.execute(
        insert(visits),
        [
            {
                "id": visit_id,
                "trial_id": trial.id,
                "trial_version": record.current_version,
                "location": spec.location,
                "kiosk_id": spec.kiosk_id,
                "language": spec.language,
                "started_at": spec.started_at or now,
            }
            for visit_id, spec in zip(ids, specs, strict=True)
        ],
    )
    conn.execute(
        insert(assignments),
        [
            {
                "visit_id": visit_id,
                "trial_id": trial.id,
                "arm": assignment.arm,
                "method": assignment.method,
                "inputs": json.dumps(assignment.inputs, sort_keys=True),
                "assigned_at": spec.started_at or now,
            }
            for visit_id, assignment, spec in zip(ids, chosen, specs, strict=True)
        ],
    )
    return [
        StartedVisit(visit_id, assignment.arm, assignment)
        for visit_id, assignment in zip(ids, chosen, strict=True)
    ]


def _assign_blocks(
    conn: Connection, trial: Trial, record: TrialRecord, specs: Sequence[VisitSpec]
) -> list[Assignment]:
    block_size = trial.randomization.block_size or sum(trial.weights.values())
    strata = trial.randomization.strata
    keys = [
        stratum_key(strata, {"location": spec.location, "language": spec.language})
        for spec in specs
    ]
    wanted: dict[str, int] = {}
    for key in keys:
        wanted[key] = wanted.get(key, 0) + 1
    next_index = {
        key: _reserve_indices(conn, trial.id, key, count) for key, count in sorted(wanted.items())
    }
    chosen = []
    for key in keys:
        chosen.append(
            assign_block(trial.weights, block_size, record.allocation_secret, key, next_index[key])
        )
        next_index[key] += 1
    return chosen


def start_visit(
    conn: Connection,
    trial: Trial,
    *,
    location: str,
    language: str,
    kiosk_id: str | None = None,
    rng: random.Random | None = None,
    record: TrialRecord | None = None,
) -> StartedVisit:
    """Create one randomized visit (see :func:`start_visits`)."""
    spec = VisitSpec(location, language, kiosk_id)
    return start_visits(conn, trial, [spec], rng=rng, record=record)[0]


#: The events that end a visit: after one of them it is nobody's current visit.
VISIT_ENDS = ("finish", "timeout", "opt_out")


def lock_kiosk_for_start(conn: Connection, kiosk_id: str, trial_id: str) -> TrialRecord | None:
    """Lock the kiosk's row for a start and read its trial's row again; None when the kiosk
    is switched off or revoked (the caller answers 403).

    Starts of one kiosk are serialized: the kiosk's row is locked first (a no-op UPDATE of a
    switched-on kiosk: a row lock on PostgreSQL, the write lock on SQLite) and stays locked
    until the caller commits, so a start that waits for another one sees that one's visit
    (:func:`recent_kiosk_visit`), in whichever worker it ran. The trial's row is then read
    with ``FOR SHARE`` on PostgreSQL (SQLite: under the write lock), so a pause or close either
    commits first, and this start sees it, or waits until the start has committed. Start a visit
    only when the record returned is running, and commit in the same transaction."""
    locked = conn.execute(
        update(kiosks).where(kiosks.c.id == kiosk_id, SWITCHED_ON).values(active=kiosks.c.active)
    ).rowcount
    if not locked:
        return None
    query = select(trials).where(trials.c.id == trial_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    row = conn.execute(query).first()
    return _record(row) if row is not None else None


@dataclass(frozen=True)
class RecentVisit:
    """The latest visit a kiosk started: its id, language, and whether it has ended."""

    id: str
    language: str
    ended: bool


def recent_kiosk_visit(conn: Connection, kiosk_id: str, within: timedelta) -> RecentVisit | None:
    """The visit the kiosk started less than ``within`` ago (the latest), or None when the
    kiosk may start a new one. ``ended``: it has one of :data:`VISIT_ENDS`, so it is nobody's
    current visit any more and no one may be sent to it. Call :func:`lock_kiosk_for_start`
    first, in the same transaction."""
    ended = select(events.c.id).where(
        events.c.visit_id == visits.c.id, events.c.type.in_(VISIT_ENDS)
    )
    latest = (
        select(visits.c.id, visits.c.language, ended.exists().label("ended"))
        .where(visits.c.kiosk_id == kiosk_id, visits.c.started_at > utcnow() - within)
        .order_by(visits.c.started_at.desc())
        .limit(1)
    )
    row = conn.execute(latest).first()
    return None if row is None else RecentVisit(row.id, row.language, bool(row.ended))


_ASSIGNED = (
    select(visits.c.id, assignments.c.arm, visits.c.trial_version, visits.c.started_at)
    .join(assignments, assignments.c.visit_id == visits.c.id)
    .where(visits.c.id == bindparam("visit_id"), visits.c.trial_id == bindparam("trial_id"))
)


def assigned_visit(conn: Connection, trial_id: str, visit_id: str) -> AssignedVisit | None:
    """The randomized visit ``visit_id`` of ``trial_id``, or None."""
    row = conn.execute(_ASSIGNED, {"visit_id": visit_id, "trial_id": trial_id}).first()
    if row is None:
        return None
    return AssignedVisit(row.id, row.arm, row.trial_version, aware(row.started_at))  # type: ignore[arg-type]
