"""Events: idempotent writes to the event log, and the opt-out rule.

An event is stored at most once per idempotency key, so a kiosk may resend until it is
acknowledged. After a visit opts out nothing more is kept for it and its outcome events are
deleted: the visit stays only as a count in the participant flow (docs/ethics.md#opt-out).

Each batch is written with one ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING`` whose
``WHERE`` checks, row by row, that the visit belongs to the trial and has not opted out; only
the keys it did not insert are looked up again (a retry, a key reused for another event, an
opted-out or unknown visit). That INSERT and the event API's kiosk-visits query
(:func:`lock_kiosk_visits`) are compiled once per database and run on the driver's cursor
(:mod:`experiments.store.driver`), without SQLAlchemy's per-statement execution.

An outcome and an opt-out of the same visit sent at the same moment must not miss each other:
either the outcome is stored first and the opt-out deletes it, or the opt-out is stored first
and the outcome is discarded. The opt-out check inside the INSERT is ordered by a lock taken
before it:

- PostgreSQL locks the visits' rows first: ``FOR KEY SHARE`` for a batch without an opt-out
  (the lock an event's foreign key takes anyway, here taken before the check instead of after
  the insert), ``FOR UPDATE`` for a batch with one, which conflicts with it. The second of two
  such transactions waits for the first to commit, and its next statement (READ COMMITTED: a
  new snapshot) sees the first's rows: the outcome's INSERT finds the opt-out, or the opt-out's
  DELETE finds the outcome. Outcomes of one visit never wait for each other.
- SQLite has one writer at a time, and the INSERT is the transaction's first write: the write
  lock (``BEGIN IMMEDIATE``, see :func:`experiments.eventlog.make_engine`) is held from before
  the check until the commit.

The event API's requests after the first of a kiosk take a shorter path, one INSERT that
makes these checks and the kiosk's as it writes (:mod:`experiments.store.known_kiosks`); this
module is the full path, which a request takes when that INSERT stores nothing.

A caller that writes nothing more lets :func:`record_events` commit (``commit=True``); a single
event's INSERT is then run with the commit (:func:`experiments.store.driver.commit_with`,
without RETURNING: the count of rows it wrote tells whether it was stored). On SQLite that
INSERT is, when the transaction wrote nothing before, a transaction of its own, which takes the
write lock before it reads anything and commits at its end. (On PostgreSQL, sending the INSERT
and COMMIT in one round trip, psycopg's pipeline mode, cost more CPU than it saved.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Dialect,
    Select,
    bindparam,
    column,
    delete,
    literal,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from experiments.eventlog import events, kiosks, trials, visits
from experiments.model import Trial
from experiments.store import driver
from experiments.store.errors import (
    IdempotencyConflict,
    RecordingError,
    UndeclaredEvent,
    UnknownVisit,
)
from experiments.store.kiosks import SWITCHED_ON, contact_is_stale, note_contact, token_hash
from experiments.store.sql import aware, utcnow
from experiments.store.trials import TrialStatus
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


@dataclass(frozen=True)
class EventVisit:
    """A visit as the events sent for it are checked: its trial, version and start."""

    id: str
    trial_id: str
    trial_version: str
    started_at: datetime


#: The only trial status in which events are stored. A paused or closed trial stores nothing
#: more for its visits (an event sent then is answered ``discarded``: acknowledged, not kept),
#: except an opt-out, which is always honoured and deletes the visit's outcomes.
RECORDING_STATUS = TrialStatus.RUNNING.value

#: Rows per INSERT, and ids per ``IN`` list (within every database's limit on parameters).
CHUNK = 500

#: The columns of an event row (:func:`event_row`), in the order a batch sends them.
ROW_COLUMNS = (
    "visit_id", "trial_id", "type", "idempotency_key", "language", "material_version",
    "disclosure_version", "occurred_at", "recorded_at",
)  # fmt: skip

#: Lock modes by whether a batch has an opt-out (SQLite ignores both): see the module docstring.
_LOCK_MODES = {False: {"read": True, "key_share": True}, True: {}}


def _by_id(query: Select, single: bool) -> Select:
    """``query`` for the visit ``:id``, or (not ``single``) for the visits ``:ids``."""
    if single:
        return query.where(visits.c.id == bindparam("id"))
    return query.where(visits.c.id.in_(bindparam("ids", expanding=True)))


def _ids(visit_ids: Sequence[str]) -> tuple[bool, dict[str, Any]]:
    """Whether there is a single id, and the parameters of a :func:`_by_id` query."""
    unique = sorted(set(visit_ids))
    return (True, {"id": unique[0]}) if len(unique) == 1 else (False, {"ids": unique})


#: The visits ``:ids`` (any number, one parameter: a JSON array for SQLite, an array for
#: PostgreSQL), each found by its key. Neither database knows how few ids the parameter holds,
#: and both would rather read all the kiosk's visits by its index: the join's ``visits``
#: side is an expression (unary ``+``, ``|| ''``), so that index is not used for it.
_IDS_FILTER = {
    "postgresql": "visits.id = ANY(:ids)",
    "sqlite": "visits.id IN (SELECT value FROM json_each(:ids))",
}


def unindexed_kiosk_of_visit(dialect: str) -> ColumnElement[Any]:
    """``visits.kiosk_id`` as an expression (unary ``+``, ``|| ''``), which keeps the database
    from reading all the kiosk's visits by its index when the query names the visits by id."""
    if dialect == "postgresql":
        return visits.c.kiosk_id.concat(literal(""))
    return literal_column("+visits.kiosk_id")


def _kiosk_visits(dialect: str) -> Select:
    """The visits ``:ids`` that the switched-on kiosk ``:token_hash`` started, with the kiosk's
    id and last contact."""
    ids, kiosk_of_visit = _IDS_FILTER[dialect], unindexed_kiosk_of_visit(dialect)
    return (
        select(
            visits.c.id,
            visits.c.trial_id,
            visits.c.trial_version,
            visits.c.started_at,
            kiosks.c.id.label("kiosk_id"),
            kiosks.c.last_seen_at,
        )
        .select_from(visits)
        .join(kiosks, kiosks.c.id == kiosk_of_visit)
        .where(kiosks.c.token_hash == bindparam("token_hash"), SWITCHED_ON)
        .where(text(ids).bindparams(bindparam("ids")))
    )


def _ids_value(dialect: str, ids: list[str]) -> str | list[str]:
    """The ``:ids`` parameter of :data:`_IDS_FILTER` for ``dialect``."""
    return ids if dialect == "postgresql" else json.dumps(ids)


@dataclass(frozen=True)
class _KioskVisitsQuery:
    """:func:`_kiosk_visits`, locked, as the driver runs it, and how to read its times."""

    statement: driver.Compiled
    started_at: Callable[[Any], Any]
    last_seen_at: Callable[[Any], Any]


@lru_cache(maxsize=8)
def _kiosk_visits_query(dialect: Dialect, opt_out: bool) -> _KioskVisitsQuery:
    locked = _kiosk_visits(dialect.name).with_for_update(of=visits, **_LOCK_MODES[opt_out])  # type: ignore[arg-type]
    return _KioskVisitsQuery(
        driver.compiled(locked, dialect),
        driver.reader(visits.c.started_at, dialect),
        driver.reader(kiosks.c.last_seen_at, dialect),
    )


_VISITS = select(visits.c.id)
_LOCKED_VISITS = {
    (opt_out, single): _by_id(_VISITS, single).with_for_update(**mode)  # type: ignore[arg-type]
    for opt_out, mode in _LOCK_MODES.items()
    for single in (True, False)
}
_TRIAL_VISITS = _by_id(_VISITS, False).where(visits.c.trial_id == bindparam("trial_id"))
_STORED = select(events.c.idempotency_key, events.c.visit_id, events.c.type).where(
    events.c.idempotency_key.in_(bindparam("keys", expanding=True))
)
_DELETE_OUTCOMES = delete(events).where(
    events.c.visit_id.in_(bindparam("ids", expanding=True)),
    events.c.type.in_(bindparam("types", expanding=True)),
)


def allowed_events(trial: Trial) -> frozenset[str]:
    """The event types a visit of ``trial`` may log: its declared outcomes and system events."""
    return trial.outcome_events | SYSTEM_EVENTS


def _check_event(trial: Trial, allowed: frozenset[str], spec: EventSpec) -> None:
    if spec.type not in allowed:
        raise UndeclaredEvent(
            f"event {spec.type!r} is not declared by trial {trial.id!r}; "
            f"allowed: {', '.join(sorted(allowed))}",
            "type",
        )
    if not spec.idempotency_key or len(spec.idempotency_key) > 64:
        raise RecordingError("idempotency_key must be 1 to 64 characters", "idempotency_key")
    if spec.language is not None and spec.language not in trial.languages:
        raise RecordingError(f"language {spec.language!r} is not a trial language", "language")


def _conflict() -> IdempotencyConflict:
    return IdempotencyConflict(
        "this idempotency_key was already used for a different event; generate a new key per event",
        "idempotency_key",
    )


@dataclass(frozen=True)
class KioskVisits:
    """What :func:`lock_kiosk_visits` found for a token: the kiosk (``None``: no switched-on
    kiosk with this token started any of the visits), when its last contact was written
    (stored, or now), and its visits by id."""

    kiosk_id: str | None
    contact_at: datetime | None
    visits: dict[str, EventVisit]


def lock_kiosk_visits(
    conn: Connection, token: str, visit_ids: Sequence[str], *, opt_out: bool
) -> KioskVisits:
    """Those of ``visit_ids`` that the switched-on kiosk with this token started, read in one
    query with the kiosk and locked for recording their events (``opt_out``: whether the events
    include an opt-out); pass ``visits_locked=True`` to :func:`record_events` in the same
    transaction. An unknown, switched-off or revoked token finds no visits.

    The kiosk's last contact is written too, with one UPDATE, but only when the stored one is
    older than :data:`experiments.store.kiosks.CONTACT_RESOLUTION` (most batches send none)."""
    query = _kiosk_visits_query(conn.dialect, opt_out)
    ids = _ids_value(conn.dialect.name, sorted(set(visit_ids)))
    rows = driver.fetch(conn, query.statement, {"ids": ids, "token_hash": token_hash(token)})
    if not rows:
        return KioskVisits(None, None, {})
    now = utcnow()
    kiosk_id, contact_at = rows[0][4], aware(query.last_seen_at(rows[0][5]))
    if contact_is_stale(contact_at, now):
        note_contact(conn, kiosk_id, now)
        contact_at = now
    found = {
        visit_id: EventVisit(visit_id, trial_id, version, aware(query.started_at(started_at)))  # type: ignore[arg-type]
        for visit_id, trial_id, version, started_at, *_kiosk in rows
    }
    return KioskVisits(kiosk_id, contact_at, found)


def _lock_visits(conn: Connection, visit_ids: Sequence[str], *, opt_out: bool) -> None:
    if conn.dialect.name != "postgresql":
        return  # SQLite: the INSERT takes the write lock
    for start in range(0, len(visit_ids), CHUNK):
        single, parameters = _ids(visit_ids[start : start + CHUNK])
        conn.execute(_LOCKED_VISITS[opt_out, single], parameters).all()


def batch_rows(dialect: str, extra_times: tuple[str, ...] = ()) -> Subquery:
    """The rows of a batch, sent as one parameter ``:rows`` (see :func:`rows_json`): a JSON
    array of objects, one statement for any number of rows, compiled and planned once. Each
    row has the columns of an event and the times ``extra_times``."""
    names = ROW_COLUMNS + extra_times
    if dialect == "postgresql":
        typed = ", ".join(f"{name} {_PG_TYPES.get(name, 'timestamptz')}" for name in names)
        sql = f"SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS batch({typed})"
    else:
        values = ", ".join(f"json_extract(value, '$.{name}') AS {name}" for name in names)
        sql = f"SELECT {values} FROM json_each(:rows)"
    time = events.c.recorded_at.type
    columns = (column(name, events.c[name].type if name in ROW_COLUMNS else time) for name in names)
    return text(sql).columns(*columns).subquery("batch")


_PG_TYPES = dict.fromkeys(ROW_COLUMNS, "varchar") | {
    "occurred_at": "timestamptz",
    "recorded_at": "timestamptz",
}


@lru_cache(maxsize=4)
def _insert(dialect: str, returning: bool = True) -> Insert:
    """``INSERT INTO events … SELECT`` of the rows of :func:`batch_rows`: each only when its visit
    belongs to its trial and, unless it is an opt-out, has no opt-out and its trial is running
    (see :data:`RECORDING_STATUS`), and only when its key is new; returns the keys inserted
    (``returning``)."""
    batch = batch_rows(dialect)
    prior = events.alias("prior")
    # Scalar subqueries with LIMIT, not EXISTS: each is one index lookup per row. (PostgreSQL
    # turns EXISTS into a join or a hashed subplan, which for a batch it guesses at 100 rows
    # reads every visit or every opt-out of the log.)
    trial_of_visit = select(visits.c.trial_id).where(visits.c.id == batch.c.visit_id)
    status = select(trials.c.status).where(trials.c.id == batch.c.trial_id)
    opt_out = select(prior.c.id).where(
        prior.c.visit_id == batch.c.visit_id, prior.c.type == "opt_out"
    )
    source = select(*(batch.c[name] for name in ROW_COLUMNS)).where(
        trial_of_visit.scalar_subquery() == batch.c.trial_id,
        or_(batch.c.type == "opt_out", opt_out.limit(1).scalar_subquery().is_(None)),
        or_(batch.c.type == "opt_out", status.scalar_subquery() == RECORDING_STATUS),
    )
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(events)
        .from_select(list(ROW_COLUMNS), source)
        .on_conflict_do_nothing(index_elements=[events.c.idempotency_key])
    )
    return statement.returning(events.c.idempotency_key) if returning else statement


@lru_cache(maxsize=16)
def _compiled_insert(dialect: Dialect, returning: bool = True) -> driver.Compiled:
    """:func:`_insert` as the driver runs it."""
    return driver.compiled(_insert(dialect.name, returning), dialect)


@lru_cache(maxsize=2)
def _time_text(dialect: Dialect) -> Callable[[datetime], str]:
    """How the dialect stores a time, as text for :func:`batch_rows`'s JSON."""
    if dialect.name == "postgresql":
        return datetime.isoformat
    store_as = events.c.recorded_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert store_as is not None  # SQLite keeps times as text of its own format
    return store_as


def rows_json(dialect: Dialect, rows: Sequence[dict[str, Any]]) -> str:
    """The ``:rows`` parameter of :func:`batch_rows`: its times as the dialect stores them."""
    as_text = _time_text(dialect)
    return json.dumps(
        [
            {
                key: as_text(value) if isinstance(value, datetime) else value
                for key, value in row.items()
            }
            for row in rows
        ]
    )


def event_row(trial_id: str, spec: EventSpec, now: datetime) -> dict[str, Any]:
    """The row of ``spec`` for :func:`rows_json`, recorded ``now`` (also its time if it has
    none)."""
    return {
        "visit_id": spec.visit_id,
        "trial_id": trial_id,
        "type": spec.type,
        "idempotency_key": spec.idempotency_key,
        "language": spec.language,
        "material_version": spec.material_version,
        "disclosure_version": spec.disclosure_version,
        "occurred_at": spec.occurred_at or now,
        "recorded_at": now,
    }


def record_events(
    conn: Connection,
    trial: Trial,
    specs: Iterable[EventSpec],
    *,
    visits_locked: bool = False,
    commit: bool = False,
) -> list[EventStatus]:
    """Store events idempotently, in order; return what happened to each.

    - ``stored``: written now;
    - ``duplicate``: an event with this idempotency key already exists (a retry);
    - ``discarded``: the visit opted out (earlier, or earlier in ``specs``), so nothing more is
      kept for it; or its trial is paused or closed, so nothing but an opt-out is stored.

    An opt-out deletes the visit's outcome events already stored. Undeclared types, unknown
    visits and a key reused for a different event raise :class:`RecordingError` subclasses
    and the caller's transaction should be rolled back. ``visits_locked``: the caller has
    locked the visits with :func:`lock_kiosk_visits` in this transaction. ``commit``: commit the
    caller's transaction (which writes nothing more) with the events; an error is raised before
    the commit, except for a single event that was not inserted (its key stored for another
    event, or an unknown visit): the transaction's earlier writes are then committed already.
    (A transaction of ``engine.begin()`` is committed by its block: do not pass ``commit``.)
    """
    specs = list(specs)
    allowed = allowed_events(trial)
    for spec in specs:
        _check_event(trial, allowed, spec)
    results: list[EventStatus] = ["stored"] * len(specs)
    now = utcnow()
    sent: dict[str, tuple[str, str]] = {}  # key -> (visit, type) of this batch
    opted_out: set[str] = set()
    planned: list[tuple[int, dict[str, Any]]] = []
    for index, spec in enumerate(specs):
        event = (spec.visit_id, spec.type)
        if spec.idempotency_key in sent:
            if sent[spec.idempotency_key] != event:
                raise _conflict()
            results[index] = "duplicate"
            continue
        sent[spec.idempotency_key] = event
        if spec.visit_id in opted_out and spec.type != "opt_out":
            results[index] = "discarded"
            continue
        if spec.type == "opt_out":
            opted_out.add(spec.visit_id)
        planned.append((index, event_row(trial.id, spec, now)))
    if planned:
        _store(conn, trial, planned, results, opted_out, visits_locked=visits_locked, commit=commit)
    if commit:
        conn.commit()  # nothing left to commit if a single event was sent with the commit
    return results


def _store(
    conn: Connection,
    trial: Trial,
    planned: list[tuple[int, dict[str, Any]]],
    results: list[EventStatus],
    opted_out: set[str],
    *,
    visits_locked: bool,
    commit: bool,
) -> None:
    """Write the planned rows (see :func:`record_events`); a single row that is not an opt-out
    is sent with the commit when the caller lets it commit."""
    if not visits_locked:
        visit_ids = sorted({row["visit_id"] for _, row in planned})
        _lock_visits(conn, visit_ids, opt_out=bool(opted_out))
    if commit and len(planned) == 1 and not opted_out:
        inserted = _insert_and_commit(conn, planned[0][1])
    else:
        inserted = set()
        statement = _compiled_insert(conn.dialect)
        for start in range(0, len(planned), CHUNK):
            rows = rows_json(conn.dialect, [row for _, row in planned[start : start + CHUNK]])
            inserted.update(key for (key,) in driver.fetch(conn, statement, {"rows": rows}))
    missing = [(index, row) for index, row in planned if row["idempotency_key"] not in inserted]
    if missing:
        _explain_missing(conn, trial, missing, results)
    if opted_out and trial.outcome_events:
        conn.execute(
            _DELETE_OUTCOMES, {"ids": sorted(opted_out), "types": sorted(trial.outcome_events)}
        )


def _insert_and_commit(conn: Connection, row: dict[str, Any]) -> set[str]:
    """Insert one row with the transaction's commit; the keys inserted."""
    statement = _compiled_insert(conn.dialect, returning=False)
    written = driver.commit_with(conn, statement, {"rows": rows_json(conn.dialect, [row])})
    return {row["idempotency_key"]} if written else set()


def _explain_missing(
    conn: Connection,
    trial: Trial,
    missing: list[tuple[int, dict[str, Any]]],
    results: list[EventStatus],
) -> None:
    """Why rows were not inserted: their key was stored before (a retry, or a conflict), the
    visit is unknown, it opted out, or its trial is not running."""
    stored = stored_events(conn, [row["idempotency_key"] for _, row in missing])
    rest = []
    for index, row in missing:
        earlier = stored.get(row["idempotency_key"])
        if earlier is None:
            rest.append((index, row))
        elif earlier != (row["visit_id"], row["type"]):
            raise _conflict()
        else:
            results[index] = "duplicate"
    if not rest:
        return
    ids = sorted({row["visit_id"] for _, row in rest})
    known = set(conn.execute(_TRIAL_VISITS, {"ids": ids, "trial_id": trial.id}).scalars())
    for index, row in rest:
        if row["visit_id"] not in known:
            raise UnknownVisit(
                f"unknown visit {row['visit_id']!r} for trial {trial.id!r}", "visit_id"
            )
        results[index] = "discarded"


def record_event(
    conn: Connection, trial: Trial, spec: EventSpec, *, commit: bool = False
) -> EventStatus:
    """Store one event idempotently (see :func:`record_events`)."""
    return record_events(conn, trial, [spec], commit=commit)[0]


def stored_events(conn: Connection, keys: Sequence[str]) -> dict[str, tuple[str, str]]:
    """The already stored events among these idempotency keys: key -> (visit id, type)."""
    found: dict[str, tuple[str, str]] = {}
    unique = sorted(set(keys))
    for start in range(0, len(unique), CHUNK):
        rows = conn.execute(_STORED, {"keys": unique[start : start + CHUNK]})
        found.update((row.idempotency_key, (row.visit_id, row.type)) for row in rows)
    return found
