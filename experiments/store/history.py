"""A trial's history for the report: lifecycle, pauses, amendments, every stored version and
the looks taken.

:class:`TrialHistory` is what an analysis needs besides the counts, read from the event log in
one go (:func:`read_history`) or from an export file (:meth:`TrialHistory.from_dict`), so a
report from either source sees the same facts. It never carries the allocation secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection

from experiments.store.amendments import Amendment, read_amendments
from experiments.store.looks import look_times
from experiments.store.sql import aware
from experiments.store.trials import Pause, TrialStatus, read_pauses, read_trial, version_sources


@dataclass(frozen=True)
class TrialHistory:
    """What the event log knows about a trial besides its visits (all empty when unknown)."""

    status: TrialStatus | None = None
    current_version: str | None = None
    locked_version: str | None = None
    locked_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    locked_source: str | None = None
    #: Earlier looks at the results, oldest first.
    looks: tuple[datetime, ...] = ()
    #: Every stored version of the trial file, verbatim, by version hash.
    version_sources: dict[str, str] = field(default_factory=dict)
    #: Pauses (no randomization), oldest first.
    pauses: tuple[Pause, ...] = ()
    #: Versions loaded after the start, with when, who and why, oldest first.
    amendments: tuple[Amendment, ...] = ()

    @property
    def known(self) -> bool:
        """Whether the trial is in the event log (or the export came from one)."""
        return self.status is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (times as ISO 8601), as stored in an export file."""
        values = asdict(self)
        values["amendments"] = [amendment.to_dict() for amendment in self.amendments]
        return json.loads(json.dumps(values, default=_iso))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialHistory:
        """The history stored in an export file (unknown keys are ignored)."""
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if values.get("status") is not None:
            values["status"] = TrialStatus(values["status"])
        for key in ("locked_at", "started_at", "stopped_at"):
            values[key] = _parse_time(values.get(key))
        values["looks"] = tuple(_parse_time(item) for item in values.get("looks", ()))
        values["version_sources"] = dict(values.get("version_sources") or {})
        values["pauses"] = tuple(
            Pause(_parse_time(p["paused_at"]), _parse_time(p.get("resumed_at")))  # type: ignore[arg-type]
            for p in values.get("pauses", ())
        )
        values["amendments"] = tuple(
            Amendment.from_dict(item) for item in values.get("amendments", ())
        )
        return cls(**values)


def _iso(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(type(value))


def _parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return aware(value)
    return aware(datetime.fromisoformat(str(value)))


def read_history(conn: Connection, trial_id: str) -> TrialHistory:
    """Lifecycle, every stored version and the earlier looks; empty if the trial is unknown."""
    record = read_trial(conn, trial_id)
    if record is None:
        return TrialHistory()
    sources = version_sources(conn, trial_id)
    return TrialHistory(
        status=record.status,
        current_version=record.current_version,
        locked_version=record.locked_version,
        locked_at=record.locked_at,
        started_at=record.started_at,
        stopped_at=record.stopped_at,
        locked_source=sources.get(record.locked_version) if record.locked_version else None,
        looks=look_times(conn, trial_id),
        version_sources=sources,
        pauses=read_pauses(conn, trial_id),
        amendments=read_amendments(conn, trial_id),
    )
