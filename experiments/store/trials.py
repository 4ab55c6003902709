"""Trials in the event log: their lifecycle row, every stored version, and parsing them.

A trial's row (:class:`TrialRecord`) is the one typed view of a stored trial that the kiosk,
the analysis and the command line all read. A version is the SHA-256 of the trial file's exact
text, so a parsed version never changes and is cached per ``(trial id, version)`` for the life
of the process (:func:`trial_at_version`).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import lru_cache

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import Row

from experiments.eventlog import trial_versions, trials
from experiments.load import load_text
from experiments.model import Trial
from experiments.store.errors import StoredTrialError, UnknownTrial
from experiments.store.sql import aware, utcnow


class TrialStatus(StrEnum):
    """Where a trial is in its lifecycle (stored as the string value)."""

    LOADED = "loaded"
    RUNNING = "running"
    STOPPED = "stopped"
    CLOSED = "closed"


@dataclass(frozen=True)
class TrialRecord:
    """A trial's lifecycle row. Times are aware (UTC); ``allocation_secret`` is never shown."""

    id: str
    title: str
    status: TrialStatus
    current_version: str
    locked_version: str | None
    locked_at: datetime | None
    started_at: datetime | None
    stopped_at: datetime | None
    results_url: str | None
    allocation_secret: str = field(repr=False)

    @property
    def running(self) -> bool:
        """Whether kiosks may start visits for this trial."""
        return self.status is TrialStatus.RUNNING

    @property
    def registered(self) -> bool:
        """Whether the trial has ever started (and so is on the public register)."""
        return self.started_at is not None


def source_version(source: str) -> str:
    """The version of a trial file: SHA-256 of its exact text."""
    return hashlib.sha256(source.encode()).hexdigest()


def _record(row: Row) -> TrialRecord:
    return TrialRecord(
        id=row.id,
        title=row.title,
        status=TrialStatus(row.status),
        current_version=row.current_version,
        locked_version=row.locked_version,
        locked_at=aware(row.locked_at),
        started_at=aware(row.started_at),
        stopped_at=aware(row.stopped_at),
        results_url=row.results_url,
        allocation_secret=row.allocation_secret,
    )


def read_trial(conn: Connection, trial_id: str) -> TrialRecord | None:
    """The trial's row, or None when it is not loaded."""
    row = conn.execute(select(trials).where(trials.c.id == trial_id)).first()
    return _record(row) if row is not None else None


def require_trial(conn: Connection, trial_id: str) -> TrialRecord:
    """The trial's row; :class:`UnknownTrial` when it is not loaded."""
    record = read_trial(conn, trial_id)
    if record is None:
        raise UnknownTrial(f"trial {trial_id!r} is not loaded; run `nudgelab trial load`", "trial")
    return record


def list_trials(conn: Connection, *, registered_only: bool = False) -> list[TrialRecord]:
    """Every loaded trial by id; with ``registered_only``, those ever started, newest first."""
    query = select(trials)
    if registered_only:
        query = query.where(trials.c.started_at.is_not(None)).order_by(
            trials.c.started_at.desc()
        )
    else:
        query = query.order_by(trials.c.id)
    return [_record(row) for row in conn.execute(query)]


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
    if read_trial(conn, trial.id) is None:
        conn.execute(
            insert(trials).values(
                id=trial.id,
                title=trial.title,
                status=TrialStatus.LOADED.value,
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
    if version_source(conn, trial.id, version) is None:
        conn.execute(
            insert(trial_versions).values(
                trial_id=trial.id, version=version, source=source, loaded_at=now
            )
        )
    return version


def start_trial(conn: Connection, trial_id: str) -> TrialRecord:
    """Mark a trial running; the first start locks the pre-registration (version and time)."""
    record = require_trial(conn, trial_id)
    now = utcnow()
    values: dict[str, object] = {"status": TrialStatus.RUNNING.value, "stopped_at": None}
    if record.locked_version is None:
        values.update(locked_version=record.current_version, locked_at=now, started_at=now)
    conn.execute(update(trials).where(trials.c.id == trial_id).values(**values))
    return require_trial(conn, trial_id)


def stop_trial(conn: Connection, trial_id: str) -> TrialRecord:
    """Stop a running trial: kiosks stop starting visits for it."""
    require_trial(conn, trial_id)
    conn.execute(
        update(trials)
        .where(trials.c.id == trial_id)
        .values(status=TrialStatus.STOPPED.value, stopped_at=utcnow())
    )
    return require_trial(conn, trial_id)


# -- stored versions ---------------------------------------------------------------------------


def version_source(conn: Connection, trial_id: str, version: str) -> str | None:
    """The exact text of one stored version, or None."""
    return conn.execute(
        select(trial_versions.c.source).where(
            trial_versions.c.trial_id == trial_id, trial_versions.c.version == version
        )
    ).scalar_one_or_none()


def version_sources(conn: Connection, trial_id: str) -> dict[str, str]:
    """Every stored version of the trial file, verbatim, by version hash."""
    rows = conn.execute(
        select(trial_versions.c.version, trial_versions.c.source).where(
            trial_versions.c.trial_id == trial_id
        )
    )
    return {str(version): str(source) for version, source in rows}


@lru_cache(maxsize=64)
def parse_trial(source: str) -> Trial:
    """Parse a stored trial file (the text ``nudgelab trial load`` checked before storing it)."""
    loaded = load_text(source, "<stored trial>")
    if loaded.trial is None or loaded.repaired:
        first = loaded.problems[0] if loaded.problems else "unknown problem"
        raise StoredTrialError(f"the stored trial no longer parses: {first}")
    return loaded.trial


_VERSIONS: OrderedDict[tuple[str, str], Trial] = OrderedDict()
_VERSIONS_LOCK = threading.Lock()
_VERSIONS_KEPT = 64


def trial_at_version(conn: Connection, trial_id: str, version: str) -> Trial:
    """The trial as it was in ``version``, parsed once per process."""
    key = (trial_id, version)
    with _VERSIONS_LOCK:
        if key in _VERSIONS:
            _VERSIONS.move_to_end(key)
            return _VERSIONS[key]
    source = version_source(conn, trial_id, version)
    if source is None:
        raise StoredTrialError(f"trial {trial_id!r} has no stored version {version}")
    trial = parse_trial(source)
    with _VERSIONS_LOCK:
        _VERSIONS[key] = trial
        while len(_VERSIONS) > _VERSIONS_KEPT:
            _VERSIONS.popitem(last=False)
    return trial


def current_trial(conn: Connection, record: TrialRecord) -> Trial:
    """The trial in its current (most recently loaded) version."""
    return trial_at_version(conn, record.id, record.current_version)
