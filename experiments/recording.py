"""Writing to the event log: trial versions, randomized visits and idempotent events.

The kiosk (``app``) and the simulator (``analysis``) both write through these functions, so a
simulated trial exercises exactly the code a real one does. Every function takes an open
SQLAlchemy ``Connection`` inside a transaction owned by the caller.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from experiments.assignment import (
    Assignment,
    assign_block,
    assign_hash,
    assign_simple,
    stratum_key,
)
from experiments.eventlog import (
    allocation_counters,
    assignments,
    events,
    trial_versions,
    trials,
    visits,
)
from experiments.model import Trial
from experiments.vocabulary import SYSTEM_EVENTS


class RecordingError(Exception):
    """A write the event log refuses; ``field`` names the offending input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UnknownTrial(RecordingError):
    pass


class UnknownVisit(RecordingError):
    pass


class UndeclaredEvent(RecordingError):
    pass


class IdempotencyConflict(RecordingError):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


def source_version(source: str) -> str:
    """The version of a trial file: SHA-256 of its exact text."""
    return hashlib.sha256(source.encode()).hexdigest()


# -- trials -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialState:
    id: str
    status: str
    current_version: str
    locked_version: str | None
    locked_at: datetime | None
    started_at: datetime | None
    stopped_at: datetime | None
    allocation_secret: str


def trial_state(conn: Connection, trial_id: str) -> TrialState:
    row = conn.execute(select(trials).where(trials.c.id == trial_id)).mappings().first()
    if row is None:
        raise UnknownTrial(f"trial {trial_id!r} is not loaded; run `nudgelab trial load`", "trial")
    return TrialState(
        **{key: row[key] for key in TrialState.__dataclass_fields__}  # type: ignore[arg-type]
    )


def load_trial(
    conn: Connection, trial: Trial, source: str, *, allocation_secret: str | None = None
) -> str:
    """Store a checked trial file's text as a new version; return the version hash.

    Reloading the same text is a no-op. A trial that has started keeps its locked version:
    the report lists any later version as a deviation from the pre-registration.
    ``allocation_secret`` (seeds blocks and hash salts) is drawn at random unless given, which
    only a simulation should do; it is set once, when the trial is first loaded.
    """
    version = source_version(source)
    now = utcnow()
    exists = conn.execute(select(trials.c.id).where(trials.c.id == trial.id)).first()
    if exists is None:
        conn.execute(
            insert(trials).values(
                id=trial.id,
                title=trial.title,
                status="loaded",
                current_version=version,
                allocation_secret=allocation_secret or secrets.token_hex(16),
                created_at=now,
            )
        )
    else:
        conn.execute(
            update(trials)
            .where(trials.c.id == trial.id)
            .values(current_version=version, title=trial.title)
        )
    known = conn.execute(
        select(trial_versions.c.version).where(
            trial_versions.c.trial_id == trial.id, trial_versions.c.version == version
        )
    ).first()
    if known is None:
        conn.execute(
            insert(trial_versions).values(
                trial_id=trial.id, version=version, source=source, loaded_at=now
            )
        )
    return version


def start_trial(conn: Connection, trial_id: str) -> TrialState:
    """Mark a trial running; the first start locks the pre-registration (version and time)."""
    state = trial_state(conn, trial_id)
    now = utcnow()
    values: dict[str, object] = {"status": "running", "stopped_at": None}
    if state.locked_version is None:
        values.update(locked_version=state.current_version, locked_at=now, started_at=now)
    conn.execute(update(trials).where(trials.c.id == trial_id).values(**values))
    return trial_state(conn, trial_id)


def stop_trial(conn: Connection, trial_id: str) -> TrialState:
    """Stop a running trial: kiosks stop starting visits for it."""
    trial_state(conn, trial_id)
    conn.execute(
        update(trials).where(trials.c.id == trial_id).values(status="stopped", stopped_at=utcnow())
    )
    return trial_state(conn, trial_id)


# -- visits and assignment ------------------------------------------------------------------


@dataclass(frozen=True)
class VisitSpec:
    """What the kiosk knows when a visitor taps "start"."""

    location: str
    language: str
    kiosk_id: str | None = None
    started_at: datetime | None = None


@dataclass(frozen=True)
class StartedVisit:
    id: str
    arm: str
    assignment: Assignment


def _reserve_indices(conn: Connection, trial_id: str, stratum: str, count: int) -> int:
    """Atomically reserve ``count`` consecutive positions of a stratum; return the first.

    The UPDATE takes a row lock (PostgreSQL) or the write lock (SQLite) until the caller's
    transaction ends, so concurrent visits never receive the same position.
    """
    conn.execute(
        _insert_ignore(conn, allocation_counters).values(
            trial_id=trial_id, stratum=stratum, next_index=0
        )
    )
    end = conn.execute(
        update(allocation_counters)
        .where(
            allocation_counters.c.trial_id == trial_id,
            allocation_counters.c.stratum == stratum,
        )
        .values(next_index=allocation_counters.c.next_index + count)
        .returning(allocation_counters.c.next_index)
    ).scalar_one()
    return end - count


def _insert_ignore(conn: Connection, table):  # type: ignore[no-untyped-def]
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's dialect."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise RecordingError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")


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
) -> list[StartedVisit]:
    """Create visits and randomize each to an arm, recording the assignment first.

    ``rng`` drives visit ids and simple draws; kiosks use the default
    (``secrets.SystemRandom``), the simulator a seeded generator.
    """
    if not specs:
        return []
    for spec in specs:
        _validate_visit(trial, spec)
    rng = rng or secrets.SystemRandom()
    state = trial_state(conn, trial.id)
    method = trial.randomization.method
    weights = trial.weights
    new_id: Callable[[], str] = lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4))  # noqa: E731
    ids = [new_id() for _ in specs]

    chosen: list[Assignment]
    if method == "simple":
        chosen = [assign_simple(weights, rng) for _ in specs]
    elif method == "hash":
        salt = trial.randomization.salt or state.allocation_secret
        chosen = [assign_hash(weights, visit_id, salt) for visit_id in ids]
    else:
        chosen = _assign_blocks(conn, trial, state, specs)

    now = utcnow()
    conn.execute(
        insert(visits),
        [
            {
                "id": visit_id,
                "trial_id": trial.id,
                "trial_version": state.current_version,
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
    conn: Connection, trial: Trial, state: TrialState, specs: Sequence[VisitSpec]
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
            assign_block(trial.weights, block_size, state.allocation_secret, key, next_index[key])
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
) -> StartedVisit:
    """Create one randomized visit (see :func:`start_visits`)."""
    return start_visits(conn, trial, [VisitSpec(location, language, kiosk_id)], rng=rng)[0]


# -- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventSpec:
    visit_id: str
    type: str
    idempotency_key: str
    language: str | None = None
    material_version: str | None = None
    disclosure_version: str | None = None
    occurred_at: datetime | None = None


Outcome = Literal["stored", "duplicate", "discarded"]


def allowed_events(trial: Trial) -> frozenset[str]:
    """The event types a visit of ``trial`` may log: its declared outcomes and system events."""
    return trial.outcome_events | SYSTEM_EVENTS


def _check_event(trial: Trial, spec: EventSpec) -> None:
    if spec.type not in allowed_events(trial):
        raise UndeclaredEvent(
            f"event {spec.type!r} is not declared by trial {trial.id!r}; "
            f"allowed: {', '.join(sorted(allowed_events(trial)))}",
            "type",
        )
    if not spec.idempotency_key or len(spec.idempotency_key) > 64:
        raise RecordingError("idempotency_key must be 1 to 64 characters", "idempotency_key")
    if spec.language is not None and spec.language not in trial.languages:
        raise RecordingError(f"language {spec.language!r} is not a trial language", "language")


def _lock_visits(conn: Connection, visit_ids: Sequence[str]) -> list[tuple[str, str]]:
    """Lock the visits' rows until the transaction ends; return ``(id, trial_id)`` pairs.

    Events of one visit are then written one transaction at a time, so an opt-out and an
    outcome sent at the same moment cannot both miss each other (ETHICS: nothing is kept after
    an opt-out). PostgreSQL locks the rows (``FOR UPDATE``); SQLite takes its database write
    lock with a no-op update. Visits are looked up by primary key and their trial checked here:
    with ``AND trial_id = ?`` in SQL, SQLite without statistics scans the whole trial instead.
    """
    query = select(visits.c.id, visits.c.trial_id).where(visits.c.id.in_(visit_ids))
    if conn.dialect.name == "sqlite":
        conn.execute(
            update(visits).where(visits.c.id.in_(visit_ids)).values(language=visits.c.language)
        )
    else:
        query = query.with_for_update()
    return [(row.id, row.trial_id) for row in conn.execute(query)]


def record_events(conn: Connection, trial: Trial, specs: Iterable[EventSpec]) -> list[Outcome]:
    """Store events idempotently, in order; return what happened to each.

    - ``stored``: written now;
    - ``duplicate``: an event with this idempotency key already exists (a retry);
    - ``discarded``: the visit opted out earlier, so nothing more is kept for it.

    An opt-out deletes the visit's outcome events already stored. Undeclared types, unknown
    visits and a key reused for a different event raise :class:`RecordingError` subclasses
    and the caller's transaction should be rolled back.
    """
    specs = list(specs)
    for spec in specs:
        _check_event(trial, spec)
    visit_ids = sorted({spec.visit_id for spec in specs})
    known: set[str] = set()
    opted_out: set[str] = set()
    for chunk_start in range(0, len(visit_ids), 500):
        chunk = visit_ids[chunk_start : chunk_start + 500]
        known |= {
            visit_id for visit_id, trial_id in _lock_visits(conn, chunk) if trial_id == trial.id
        }
        opted_out |= set(
            conn.execute(
                select(events.c.visit_id).where(
                    events.c.visit_id.in_(chunk), events.c.type == "opt_out"
                )
            ).scalars()
        )
    missing = set(visit_ids) - known
    if missing:
        raise UnknownVisit(
            f"unknown visit {sorted(missing)[0]!r} for trial {trial.id!r}", "visit_id"
        )

    now = utcnow()
    results: list[Outcome] = []
    rows: list[dict[str, object]] = []
    for spec in specs:
        if spec.visit_id in opted_out and spec.type != "opt_out":
            results.append("discarded")
            continue
        if spec.type == "opt_out":
            opted_out.add(spec.visit_id)
        rows.append(
            {
                "visit_id": spec.visit_id,
                "trial_id": trial.id,
                "type": spec.type,
                "idempotency_key": spec.idempotency_key,
                "language": spec.language,
                "material_version": spec.material_version,
                "disclosure_version": spec.disclosure_version,
                "occurred_at": spec.occurred_at or now,
                "recorded_at": now,
            }
        )
        results.append("stored")
    if len(rows) == 1:
        inserted = conn.execute(
            _insert_ignore(conn, events).values(**rows[0]).returning(events.c.id)
        ).first()
        stored = inserted is not None
        if not stored:
            _check_duplicate(conn, rows[0])
            results[results.index("stored")] = "duplicate"
    elif rows:
        results = _insert_many(conn, rows, results)
    _apply_opt_outs(conn, trial, {row["visit_id"] for row in rows if row["type"] == "opt_out"})
    return results


def _insert_many(
    conn: Connection, rows: list[dict[str, object]], results: list[Outcome]
) -> list[Outcome]:
    keys = [str(row["idempotency_key"]) for row in rows]
    existing = set()
    for start in range(0, len(keys), 500):
        existing |= set(
            conn.execute(
                select(events.c.idempotency_key).where(
                    events.c.idempotency_key.in_(keys[start : start + 500])
                )
            ).scalars()
        )
    fresh: list[dict[str, object]] = []
    seen: set[str] = set()
    row_results: list[Outcome] = []
    for row in rows:
        key = str(row["idempotency_key"])
        if key in existing or key in seen:
            if key in existing:
                _check_duplicate(conn, row)
            row_results.append("duplicate")
        else:
            seen.add(key)
            fresh.append(row)
            row_results.append("stored")
    if fresh:
        conn.execute(insert(events), fresh)
    merged = iter(row_results)
    return [next(merged) if outcome == "stored" else outcome for outcome in results]


def _check_duplicate(conn: Connection, row: dict[str, object]) -> None:
    stored = conn.execute(
        select(events.c.visit_id, events.c.type).where(
            events.c.idempotency_key == row["idempotency_key"]
        )
    ).first()
    if stored is not None and (stored.visit_id, stored.type) != (row["visit_id"], row["type"]):
        raise IdempotencyConflict(
            "this idempotency_key was already used for a different event; "
            "generate a new key per event",
            "idempotency_key",
        )


def _apply_opt_outs(conn: Connection, trial: Trial, visit_ids: set[object]) -> None:
    """Delete the outcome events of visits that opted out (they stay only as a count)."""
    if visit_ids and trial.outcome_events:
        conn.execute(
            delete(events).where(
                events.c.visit_id.in_(sorted(visit_ids, key=str)),
                events.c.type.in_(sorted(trial.outcome_events)),
            )
        )


def record_event(conn: Connection, trial: Trial, spec: EventSpec) -> Outcome:
    """Store one event idempotently (see :func:`record_events`)."""
    return record_events(conn, trial, [spec])[0]
