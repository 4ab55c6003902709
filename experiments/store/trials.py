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
from urllib.parse import urlsplit

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import Row

from experiments.eventlog import trial_pauses, trial_versions, trials
from experiments.load import load_text
from experiments.model import Trial
from experiments.store.audit import Actor, audit
from experiments.store.errors import RecordingError, StoredTrialError, UnknownTrial
from experiments.store.sql import aware, insert_ignore, utcnow


class TrialStatus(StrEnum):
    """Where a trial is in its lifecycle ``draft → running ⇄ paused → closed`` (stored as the
    string value). Values of earlier versions are read as today's: ``loaded`` as draft,
    ``stopped`` as closed (migration 0003 renames them in the database; export files may
    still hold them)."""

    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    CLOSED = "closed"

    @classmethod
    def _missing_(cls, value: object) -> TrialStatus | None:
        return {"loaded": cls.DRAFT, "stopped": cls.CLOSED}.get(str(value))


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
        """Whether kiosks may start randomized visits for this trial."""
        return self.status is TrialStatus.RUNNING

    @property
    def paused(self) -> bool:
        """Whether kiosks show the control arm's plain information and randomize nobody."""
        return self.status is TrialStatus.PAUSED

    @property
    def serving(self) -> bool:
        """Whether kiosks answer at all (running or paused)."""
        return self.status in (TrialStatus.RUNNING, TrialStatus.PAUSED)

    @property
    def closed_at(self) -> datetime | None:
        """When the trial was closed (stored as ``stopped_at``)."""
        return self.stopped_at

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


def lock_trial(conn: Connection, trial_id: str) -> TrialRecord | None:
    """The trial's row (None when it is not loaded), locked until the transaction ends, so
    that a load, a lifecycle step and a kiosk start that read it take turns: ``SELECT … FOR NO
    KEY UPDATE`` on PostgreSQL (the lock its own UPDATE would take: it does not hold up the
    foreign-key checks of events and visits being written meanwhile); on SQLite a write that
    changes nothing first takes the database's write lock (see
    :func:`experiments.eventlog.make_engine`), then the row is read."""
    if conn.dialect.name == "postgresql":
        query = select(trials).where(trials.c.id == trial_id).with_for_update(key_share=True)
        row = conn.execute(query).first()
        return _record(row) if row is not None else None
    conn.execute(update(trials).where(trials.c.id == trial_id).values(status=trials.c.status))
    return read_trial(conn, trial_id)


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
        query = query.where(trials.c.started_at.is_not(None)).order_by(trials.c.started_at.desc())
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
    created = 0
    if read_trial(conn, trial.id) is None:
        # Two first loads at once: the second inserts nothing and updates the draft instead.
        created = conn.execute(
            insert_ignore(conn, trials).values(
                id=trial.id,
                title=trial.title,
                status=TrialStatus.DRAFT.value,
                current_version=version,
                allocation_secret=allocation_secret or secrets.token_hex(16),
                created_at=now,
            )
        ).rowcount
    if not created:
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


class TransitionRefused(RecordingError):
    """A lifecycle step the trial's status does not allow (e.g. resuming a running trial)."""


#: Which statuses each step may leave from.
TRANSITIONS: dict[str, frozenset[TrialStatus]] = {
    "start": frozenset({TrialStatus.DRAFT}),
    "pause": frozenset({TrialStatus.RUNNING}),
    "resume": frozenset({TrialStatus.PAUSED}),
    "close": frozenset({TrialStatus.RUNNING, TrialStatus.PAUSED}),
}


def _refused(record: TrialRecord, step: str) -> TransitionRefused:
    allowed = " or ".join(sorted(TRANSITIONS[step]))
    return TransitionRefused(
        f"trial {record.id!r} is {record.status}; only a {allowed} trial can be {_DONE[step]}",
        "status",
    )


_DONE = {"start": "started", "pause": "paused", "resume": "resumed", "close": "closed"}


def _transition(
    conn: Connection, trial_id: str, step: str, values: dict[str, object]
) -> TrialRecord:
    """Apply ``step`` (its new ``values``) only if the status allows it: the row is locked
    first (:func:`lock_trial`) and the UPDATE's ``WHERE`` checks the status too, so two
    concurrent steps, or a step and a load, cannot both act on what they read; the row
    before."""
    before = lock_trial(conn, trial_id)
    if before is None:
        before = require_trial(conn, trial_id)  # raises UnknownTrial
    if before.status not in TRANSITIONS[step]:
        raise _refused(before, step)
    allowed = [status.value for status in TRANSITIONS[step]]
    changed = conn.execute(
        update(trials).where(trials.c.id == trial_id, trials.c.status.in_(allowed)).values(**values)
    ).rowcount
    if changed != 1:  # another process took a step in between
        raise _refused(require_trial(conn, trial_id), step)
    return before


def start_trial(
    conn: Connection, trial_id: str, *, actor: Actor | None = None, now: datetime | None = None
) -> TrialRecord:
    """Start a draft trial: lock the pre-registration (the current version and the time).

    The locked version is taken from the row by the same UPDATE that starts the trial (with
    the row locked), never from an earlier read that a concurrent load could make stale."""
    now = now or utcnow()
    values: dict[str, object] = {
        "status": TrialStatus.RUNNING.value,
        "locked_version": trials.c.current_version,
        "locked_at": now,
        "started_at": now,
    }
    _transition(conn, trial_id, "start", values)
    started = require_trial(conn, trial_id)
    detail = f"pre-registration locked: version {started.locked_version} at {now.isoformat()}"
    _audit(conn, actor, "start", trial_id, now, detail)
    return started


def pause_trial(
    conn: Connection, trial_id: str, *, actor: Actor | None = None, now: datetime | None = None
) -> TrialRecord:
    """Pause a running trial: kiosks randomize nobody until it is resumed (a pause is stored)."""
    now = now or utcnow()
    _transition(conn, trial_id, "pause", {"status": TrialStatus.PAUSED.value})
    conn.execute(insert(trial_pauses).values(trial_id=trial_id, paused_at=now))
    _audit(conn, actor, "pause", trial_id, now)
    return require_trial(conn, trial_id)


def resume_trial(
    conn: Connection, trial_id: str, *, actor: Actor | None = None, now: datetime | None = None
) -> TrialRecord:
    """Resume a paused trial: its open pause ends now."""
    now = now or utcnow()
    _transition(conn, trial_id, "resume", {"status": TrialStatus.RUNNING.value})
    _end_pause(conn, trial_id, now)
    _audit(conn, actor, "resume", trial_id, now)
    return require_trial(conn, trial_id)


def close_trial(
    conn: Connection, trial_id: str, *, actor: Actor | None = None, now: datetime | None = None
) -> TrialRecord:
    """Close a running or paused trial for good: kiosks stop, results may be released.

    An open pause ends at the close. ``stopped_at`` holds the time (the report's end of the
    trial, from which the retention period counts).
    """
    now = now or utcnow()
    values = {"status": TrialStatus.CLOSED.value, "stopped_at": now}
    _transition(conn, trial_id, "close", values)
    _end_pause(conn, trial_id, now)
    _audit(conn, actor, "close", trial_id, now)
    return require_trial(conn, trial_id)


#: The longest results address the trials table keeps.
RESULTS_URL_LENGTH = 500


def check_results_url(url: str, public_url: str | None = None) -> str:
    """``url`` (trimmed) if the register may link it as a closed trial's results: an
    ``https://`` address, a path on this platform (``/reports/…``), or an address under its
    public address ``public_url``. Anything else (``http://`` elsewhere, ``javascript:``, a
    protocol-relative ``//host``, spaces or control characters) raises :class:`RecordingError`."""
    url = url.strip()
    refused = RecordingError(
        "the results address must start with https://, or be a path on this platform "
        "(/reports/...), or lie under its public address (NUDGELAB_PUBLIC_URL)",
        "results_url",
    )
    if not url or len(url) > RESULTS_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise refused
    if "\\" in url:
        raise refused
    if url.startswith("/") and not url.startswith("//"):
        return url
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.netloc:
        return url
    if public_url and parts.netloc and url.startswith(public_url.rstrip("/") + "/"):
        return url
    raise refused


def publish_results(
    conn: Connection,
    trial_id: str,
    url: str,
    *,
    actor: Actor | None = None,
    public_url: str | None = None,
    now: datetime | None = None,
) -> TrialRecord:
    """Set the address of a closed trial's results (:func:`check_results_url`): the public
    register links it. Refused (:class:`TransitionRefused`) unless the trial is closed; a new
    address replaces the old one, and each is audited."""
    url = check_results_url(url, public_url)
    now = now or utcnow()
    record = lock_trial(conn, trial_id) or require_trial(conn, trial_id)
    if record.status is not TrialStatus.CLOSED:
        raise TransitionRefused(
            f"trial {trial_id!r} is {record.status}; results are published only for a closed "
            "trial (close it first)",
            "status",
        )
    conn.execute(
        update(trials)
        .where(trials.c.id == trial_id, trials.c.status == TrialStatus.CLOSED.value)
        .values(results_url=url)
    )
    _audit(conn, actor, "publish", trial_id, now, f"results at {url}")
    return require_trial(conn, trial_id)


def _audit(
    conn: Connection,
    actor: Actor | None,
    step: str,
    trial_id: str,
    now: datetime,
    detail: str | None = None,
) -> None:
    if actor is not None:
        audit(conn, actor, f"trial.{step}", trial_id=trial_id, detail=detail, at=now)


#: ``nudgelab trial stop`` and earlier code: stopping a trial is closing it.
stop_trial = close_trial


def _end_pause(conn: Connection, trial_id: str, now: datetime) -> None:
    conn.execute(
        update(trial_pauses)
        .where(trial_pauses.c.trial_id == trial_id, trial_pauses.c.resumed_at.is_(None))
        .values(resumed_at=now)
    )


@dataclass(frozen=True)
class Pause:
    """One pause: from ``paused_at`` until ``resumed_at`` (None: still paused)."""

    paused_at: datetime
    resumed_at: datetime | None


def read_pauses(conn: Connection, trial_id: str) -> tuple[Pause, ...]:
    """The trial's pauses, oldest first."""
    rows = conn.execute(
        select(trial_pauses.c.paused_at, trial_pauses.c.resumed_at)
        .where(trial_pauses.c.trial_id == trial_id)
        .order_by(trial_pauses.c.paused_at, trial_pauses.c.id)
    )
    return tuple(Pause(aware(a), aware(b)) for a, b in rows)  # type: ignore[arg-type]


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
