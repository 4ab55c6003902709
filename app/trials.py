"""Trials as the kiosk sees them: the stored, already checked version of each trial file.

``nudgelab trial load`` runs the full check before it stores a version, so here a stored text
is only parsed (never re-checked). Versions are content hashes, so a parsed trial is cached per
``(trial id, version)`` for the life of the process (:func:`trial_at_version`): a visit is shown
from the version it started with (``visits.trial_version``), even after the trial is reloaded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Connection, select

from experiments.eventlog import trial_versions, trials
from experiments.load import load_text
from experiments.model import Trial


class StoredTrialError(Exception):
    """A stored trial version that can no longer be parsed (e.g. after a model change)."""


@dataclass(frozen=True)
class TrialRecord:
    """A trial's lifecycle row together with its current version, parsed."""

    trial: Trial
    status: str
    version: str
    locked_version: str | None
    started_at: datetime | None
    stopped_at: datetime | None
    results_url: str | None

    @property
    def running(self) -> bool:
        return self.status == "running"


@lru_cache(maxsize=64)
def parse_trial(source: str) -> Trial:
    """Parse a stored trial file (the text ``nudgelab trial load`` accepted)."""
    loaded = load_text(source, "<stored trial>")
    if loaded.trial is None or loaded.repaired:
        first = loaded.problems[0] if loaded.problems else "unknown problem"
        raise StoredTrialError(f"the stored trial no longer parses: {first}")
    return loaded.trial


def trial_source(conn: Connection, trial_id: str, version: str) -> str | None:
    return conn.execute(
        select(trial_versions.c.source).where(
            trial_versions.c.trial_id == trial_id, trial_versions.c.version == version
        )
    ).scalar_one_or_none()


_VERSIONS: OrderedDict[tuple[str, str], Trial] = OrderedDict()
_VERSIONS_LOCK = threading.Lock()
_VERSIONS_KEPT = 64


def trial_at_version(conn: Connection, trial_id: str, version: str) -> Trial:
    """The trial as it was in ``version`` (parsed once per process: a version is the hash of
    its text, so it never changes)."""
    key = (trial_id, version)
    with _VERSIONS_LOCK:
        if key in _VERSIONS:
            _VERSIONS.move_to_end(key)
            return _VERSIONS[key]
    source = trial_source(conn, trial_id, version)
    if source is None:
        raise StoredTrialError(f"trial {trial_id!r} has no stored version {version}")
    trial = parse_trial(source)
    with _VERSIONS_LOCK:
        _VERSIONS[key] = trial
        while len(_VERSIONS) > _VERSIONS_KEPT:
            _VERSIONS.popitem(last=False)
    return trial


def _record(conn: Connection, row) -> TrialRecord:  # type: ignore[no-untyped-def]
    return TrialRecord(
        trial=trial_at_version(conn, row.id, row.current_version),
        status=row.status,
        version=row.current_version,
        locked_version=row.locked_version,
        started_at=row.started_at,
        stopped_at=row.stopped_at,
        results_url=row.results_url,
    )


def get_record(conn: Connection, trial_id: str) -> TrialRecord | None:
    """The trial called ``trial_id`` with its current version, or None if it is not loaded."""
    row = conn.execute(select(trials).where(trials.c.id == trial_id)).first()
    return _record(conn, row) if row else None


def registered_records(conn: Connection) -> list[TrialRecord]:
    """Every trial that is or was running (it has a start time), newest first."""
    rows = conn.execute(
        select(trials).where(trials.c.started_at.is_not(None)).order_by(trials.c.started_at.desc())
    ).all()
    return [_record(conn, row) for row in rows]
