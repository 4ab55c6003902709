"""Events: idempotent writes to the event log, and the opt-out rule.

An event is stored at most once per idempotency key, so a kiosk may resend until it is
acknowledged. After a visit opts out nothing more is kept for it and its outcome events are
deleted: the visit stays only as a count in the participant flow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, delete, insert, select, update

from experiments.eventlog import events, visits
from experiments.model import Trial
from experiments.store.errors import (
    IdempotencyConflict,
    RecordingError,
    UndeclaredEvent,
    UnknownVisit,
)
from experiments.store.sql import insert_ignore, utcnow
from experiments.vocabulary import SYSTEM_EVENTS


@dataclass(frozen=True)
class EventSpec:
    """One event to store: its visit, type, idempotency key and what was shown."""

    visit_id: str
    type: str
    idempotency_key: str
    language: str | None = None
    material_version: str | None = None
    disclosure_version: str | None = None
    occurred_at: datetime | None = None


#: What happened to an event the kiosk sent (a write result, not a trial outcome).
EventStatus = Literal["stored", "duplicate", "discarded"]


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


def record_events(conn: Connection, trial: Trial, specs: Iterable[EventSpec]) -> list[EventStatus]:
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
    results: list[EventStatus] = []
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
            insert_ignore(conn, events).values(**rows[0]).returning(events.c.id)
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
    conn: Connection, rows: list[dict[str, object]], results: list[EventStatus]
) -> list[EventStatus]:
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
    row_results: list[EventStatus] = []
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


def record_event(conn: Connection, trial: Trial, spec: EventSpec) -> EventStatus:
    """Store one event idempotently (see :func:`record_events`)."""
    return record_events(conn, trial, [spec])[0]


def stored_events(conn: Connection, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
    """The already stored events among these idempotency keys: key -> (visit id, type)."""
    return {
        row.idempotency_key: (row.visit_id, row.type)
        for row in conn.execute(
            select(events.c.idempotency_key, events.c.visit_id, events.c.type).where(
                events.c.idempotency_key.in_(sorted(set(keys)))
            )
        )
    }
