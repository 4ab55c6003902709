"""Events of a known kiosk: one INSERT that checks in SQL what a full check would read first.

The event API's full path (:func:`experiments.store.events.lock_kiosk_visits`, then
:func:`~experiments.store.events.record_events`) reads the kiosk and its visits in a query of
their own before it writes: a statement, and on PostgreSQL about a third of the database's time
per event. Once that path has succeeded for a token, the kiosk behind it and the trial version
of its visits are known (:class:`KnownKiosk`); the next events sent with that token are written
by :func:`record_for_known_kiosk`, whose single INSERT stores a row only if everything the full
path checks holds, read at the moment of the write:

- the visit was started by that kiosk, with that trial and trial version, and no later than
  ``slack`` after the event's time (an earlier time is a kiosk clock the full path refuses);
- the kiosk is switched on and holds this token (a kiosk switched off since is caught here);
- the visit has not opted out, its trial is running, and the key is new.

It returns whether every row was stored. If any was not, nothing is kept and the caller takes
the full path, which finds out why and answers as it always does (duplicate, discarded, 400,
403, 409): a :class:`KnownKiosk` is a guess that can only make the happy path shorter.

The opt-out rule holds without the full path's lock taken first (see :mod:`.events`). A
visit's opt-out rewrites the visit's row in its transaction (the signature kept by migration
0006's triggers gains an ``opt_out`` token), and on PostgreSQL this INSERT locks the visit's
row ``FOR KEY SHARE`` as it reads it. An opt-out committed before the INSERT began is in its
snapshot; one in progress holds the row ``FOR UPDATE``, so the INSERT waits for it and then
checks the row's newest version again (READ COMMITTED re-evaluates a locked row that changed):
its signature names the opt-out and the row is not stored. An opt-out that starts after the
INSERT waits for its commit and deletes the outcome. SQLite writes one transaction at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from experiments.eventlog import events, kiosks, trials, visits
from experiments.model import Trial
from experiments.store import driver
from experiments.store.events import (
    RECORDING_STATUS,
    ROW_COLUMNS,
    EventSpec,
    KioskVisits,
    batch_rows,
    event_row,
    rows_json,
    unindexed_kiosk_of_visit,
)
from experiments.store.kiosks import SWITCHED_ON, contact_is_stale, token_hash
from experiments.store.sql import utcnow

#: Separates the tokens of a visit's kept signature (migration 0006: ``chr(30)``).
_SIGNATURE_SEPARATOR = "\x1e"
_OPTED_OUT = f"{_SIGNATURE_SEPARATOR}opt_out{_SIGNATURE_SEPARATOR}"


@dataclass(frozen=True)
class KnownKiosk:
    """What the full path found for a kiosk token, to be checked again by every write that
    relies on it: the kiosk, the trial version its visits were started with, and when its last
    contact was written."""

    token_hash: str
    kiosk_id: str
    trial_id: str
    trial_version: str
    contact_at: datetime

    @classmethod
    def from_found(cls, token: str, found: KioskVisits) -> KnownKiosk | None:
        """The kiosk as :func:`~experiments.store.events.lock_kiosk_visits` found it, if its
        visits were all started with one trial version (else ``None``)."""
        versions = {(visit.trial_id, visit.trial_version) for visit in found.visits.values()}
        if found.kiosk_id is None or found.contact_at is None or len(versions) != 1:
            return None
        ((trial_id, version),) = versions
        return cls(token_hash(token), found.kiosk_id, trial_id, version, found.contact_at)

    def usable(self, now: datetime) -> bool:
        """Whether a request at ``now`` may rely on it: not once the last contact it knows is
        due to be written again (the full path writes it)."""
        return not contact_is_stale(self.contact_at, now)


def _opted_out(signature: ColumnElement[str]) -> ColumnElement[bool]:
    """SQL: the kept signature ``signature`` names an opt-out."""
    framed = literal(_SIGNATURE_SEPARATOR) + signature + literal(_SIGNATURE_SEPARATOR)
    return framed.contains(_OPTED_OUT, autoescape=True)


@lru_cache(maxsize=4)
def _insert(dialect: str) -> Insert:
    """``INSERT INTO events … SELECT`` of the rows of a batch (with each row's ``start_by``:
    the latest start its visit may have), each only if every check of the module docstring
    holds."""
    batch = batch_rows(dialect, extra_times=("start_by",))
    prior = events.alias("prior")
    kiosk = select(kiosks.c.id).where(
        kiosks.c.id == bindparam("kiosk_id"),
        kiosks.c.token_hash == bindparam("token_hash"),
        SWITCHED_ON,
    )
    opt_out = select(prior.c.id).where(
        prior.c.visit_id == batch.c.visit_id, prior.c.type == "opt_out"
    )
    status = select(trials.c.status).where(trials.c.id == batch.c.trial_id)
    source = (
        select(*(batch.c[name] for name in ROW_COLUMNS))
        .select_from(batch.join(visits, visits.c.id == batch.c.visit_id))
        .where(
            unindexed_kiosk_of_visit(dialect) == bindparam("kiosk_id"),
            visits.c.trial_id == batch.c.trial_id,
            visits.c.trial_version == bindparam("trial_version"),
            visits.c.started_at <= batch.c.start_by,
            kiosk.scalar_subquery().is_not(None),
            or_(visits.c.signature.is_(None), ~_opted_out(visits.c.signature)),
            opt_out.limit(1).scalar_subquery().is_(None),
            status.scalar_subquery() == RECORDING_STATUS,
        )
    )
    if dialect == "postgresql":
        source = source.with_for_update(of=visits, read=True, key_share=True)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(events)
        .from_select(list(ROW_COLUMNS), source)
        .on_conflict_do_nothing(index_elements=[events.c.idempotency_key])
    )


@lru_cache(maxsize=8)
def _compiled(dialect: Dialect, returning: bool) -> driver.Compiled:
    """:func:`_insert` as the driver runs it, returning the keys it inserted (``returning``)."""
    statement = _insert(dialect.name)
    if returning:
        statement = statement.returning(events.c.idempotency_key)
    return driver.compiled(statement, dialect)


def _parameters(
    dialect: Dialect, kiosk: KnownKiosk, trial_id: str, specs: Sequence[EventSpec], slack: timedelta
) -> dict[str, Any]:
    """The parameters of :func:`_insert` for ``specs`` of ``kiosk``'s visits."""
    now = utcnow()
    rows = []
    for spec in specs:
        row = event_row(trial_id, spec, now)
        rows.append({**row, "start_by": row["occurred_at"] + slack})
    return {
        "rows": rows_json(dialect, rows),
        "kiosk_id": kiosk.kiosk_id,
        "token_hash": kiosk.token_hash,
        "trial_version": kiosk.trial_version,
    }


def record_for_known_kiosk(
    conn: Connection,
    kiosk: KnownKiosk,
    trial: Trial,
    specs: Sequence[EventSpec],
    *,
    slack: timedelta,
) -> bool:
    """Store ``specs`` and commit, if every one passes the checks of the module docstring
    against ``kiosk``; whether they were. If not, nothing of them is kept (a batch's transaction
    is rolled back; a single event's INSERT, which then wrote nothing, has committed) and the
    caller should take the full path.

    ``trial`` is ``kiosk``'s trial at its trial version; the caller has checked the specs
    against it (declared types, languages, no opt-out, each key once, no time beyond ``slack``
    in the future). Call it before anything else is written in the transaction."""
    if not specs:
        raise ValueError("no events to record")
    if any(spec.type == "opt_out" for spec in specs):
        raise ValueError("an opt-out takes the full path (it deletes the visit's outcomes)")
    values = _parameters(conn.dialect, kiosk, trial.id, specs, slack)
    if len(specs) == 1:  # the INSERT commits with itself (on SQLite, a transaction of its own)
        return driver.commit_with(conn, _compiled(conn.dialect, False), values) == 1
    stored = driver.fetch(conn, _compiled(conn.dialect, True), values)
    if len(stored) == len(specs):
        conn.commit()
        return True
    conn.rollback()
    return False
