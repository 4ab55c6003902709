"""Blinded monitoring of a trial: how it runs, never how its arms do.

What a research team may watch while a trial runs without it being a look at the results:
visits, exposures, opt-outs and finishes per arm, per location and per day; each kiosk's last
contact and whether it has gone silent during opening hours; the sample-ratio-mismatch check
(are visits split between the arms as planned? Pearson's chi-square goodness of fit); and when
the planned sample size will be reached at the recent rate.

Outcome events are never read: the one query on the events table selects only the types in
:data:`MONITORED_EVENTS`, which are system events that no trial can declare as an outcome (the
checker refuses it, and :func:`monitor` refuses a trial that would). So nothing this module
returns can carry an outcome count or rate per arm, and calling it is not counted as a look.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from experiments import store
from experiments.eventlog import assignments, events, visits
from experiments.opening_hours import OpeningHours

#: The only event types monitoring reads: system events, never outcomes.
MONITORED_EVENTS: tuple[str, ...] = ("exposure", "opt_out", "finish")
#: The p-value under which the sample-ratio check raises its alert.
SRM_THRESHOLD = 0.001
#: Fewest visits expected in every arm before the sample-ratio check is computed.
SRM_MIN_EXPECTED = 5.0


@dataclass(frozen=True)
class MonitorSettings:
    """What counts as a silent kiosk, the alert threshold and the rate window."""

    silent_after: timedelta = timedelta(hours=2)
    opening: OpeningHours = field(default_factory=OpeningHours)
    srm_threshold: float = SRM_THRESHOLD
    rate_window: timedelta = timedelta(days=14)


@dataclass(frozen=True)
class Progress:
    """Visits and what happened to them, for one arm, location or day (``key``), or all."""

    key: str
    visits: int = 0
    exposed: int = 0
    opted_out: int = 0
    finished: int = 0


@dataclass(frozen=True)
class KioskContact:
    """A kiosk's state and last contact; ``silent``: switched on, yet nothing heard from it
    for longer than the allowed opening-hours time."""

    id: str
    location: str
    state: str
    last_seen_at: datetime | None
    silent: bool


@dataclass(frozen=True)
class SampleRatio:
    """The sample-ratio-mismatch check: visits per arm against the planned allocation.

    ``p_value`` is None (and there is no alert) while some arm expects fewer than
    :data:`SRM_MIN_EXPECTED` visits.
    """

    expected_shares: dict[str, float]
    observed: dict[str, int]
    chi2: float | None
    p_value: float | None
    threshold: float
    alert: bool
    message: str


@dataclass(frozen=True)
class Forecast:
    """When the planned sample size (visits analysed: randomized minus opted out) is reached
    at the rate of the last ``window_days`` days."""

    planned: int
    analysed: int
    remaining: int
    rate_per_day: float
    window_days: float
    expected_date: date | None
    message: str


@dataclass(frozen=True)
class Monitoring:
    """Everything the console shows about a trial's progress. Holds no outcome data."""

    trial_id: str
    status: str
    generated_at: datetime
    planned_sample_size: int
    total: Progress
    by_arm: tuple[Progress, ...]
    by_location: tuple[Progress, ...]
    by_day: tuple[Progress, ...]
    kiosks: tuple[KioskContact, ...]
    sample_ratio: SampleRatio
    forecast: Forecast

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (times and dates as ISO 8601)."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _day(conn: Connection, column: Any) -> ColumnElement[str]:
    """``column`` (a UTC time) as its UTC day ``YYYY-MM-DD``, in SQL."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)


def _visit_counts(conn: Connection, trial_id: str) -> list[tuple[str, str, str, int]]:
    """(arm, location, day, visits) of the trial's randomized visits."""
    day = _day(conn, visits.c.started_at).label("day")
    query = (
        select(assignments.c.arm, visits.c.location, day, func.count())
        .select_from(visits.join(assignments, assignments.c.visit_id == visits.c.id))
        .where(visits.c.trial_id == trial_id)
        .group_by(assignments.c.arm, visits.c.location, day)
    )
    return [(str(a), str(loc), str(d), int(n)) for a, loc, d, n in conn.execute(query)]


def _event_counts(conn: Connection, trial_id: str) -> list[tuple[str, str, str, str, int]]:
    """(arm, location, day, type, visits with it) for the :data:`MONITORED_EVENTS` only."""
    day = _day(conn, visits.c.started_at).label("day")
    query = (
        select(
            assignments.c.arm,
            visits.c.location,
            day,
            events.c.type,
            func.count(func.distinct(events.c.visit_id)),
        )
        .select_from(
            events.join(visits, visits.c.id == events.c.visit_id).join(
                assignments, assignments.c.visit_id == visits.c.id
            )
        )
        .where(events.c.trial_id == trial_id, events.c.type.in_(MONITORED_EVENTS))
        .group_by(assignments.c.arm, visits.c.location, day, events.c.type)
    )
    return [(str(a), str(loc), str(d), str(t), int(n)) for a, loc, d, t, n in conn.execute(query)]


_FIELDS = {"exposure": "exposed", "opt_out": "opted_out", "finish": "finished"}


def _progress(
    counts: Iterable[tuple[str, str, str, int]],
    happened: Iterable[tuple[str, str, str, str, int]],
    position: int,
    keys: Iterable[str] = (),
) -> tuple[Progress, ...]:
    """Sum by the ``position``-th of (arm, location, day); ``keys`` are listed even when 0."""
    totals: dict[str, dict[str, int]] = {key: defaultdict(int) for key in keys}
    for row in counts:
        totals.setdefault(row[position], defaultdict(int))["visits"] += row[3]
    for row in happened:
        totals.setdefault(row[position], defaultdict(int))[_FIELDS[row[3]]] += row[4]
    return tuple(Progress(key, **values) for key, values in totals.items())


def chi2_survival(x: float, df: int) -> float:
    """P(X >= x) for a chi-square variable with ``df`` (a positive integer) degrees of freedom.

    The closed forms for integer degrees of freedom (Abramowitz and Stegun 26.4.4 and 26.4.5),
    so that the app, which may not load scipy, can run the check; the tests compare it with
    ``scipy.stats.chi2.sf``.
    """
    if x <= 0:
        return 1.0
    half = x / 2
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= half / i
            total += term
        return min(1.0, math.exp(-half) * total)
    root = math.sqrt(x)
    tail = math.erfc(root / math.sqrt(2))
    term, total = root * math.sqrt(2 / math.pi), 0.0
    for i in range(1, (df + 1) // 2):
        total += term
        term *= x / (2 * i + 1)
    return min(1.0, tail + math.exp(-half) * total)


def _sample_ratio(
    weights: Mapping[str, int], observed: Mapping[str, int], threshold: float
) -> SampleRatio:
    total_weight = sum(weights.values())
    shares = {arm: weight / total_weight for arm, weight in weights.items()}
    counts = {arm: int(observed.get(arm, 0)) for arm in weights}
    n = sum(counts.values())
    expected = [n * shares[arm] for arm in weights]
    if n == 0 or min(expected) < SRM_MIN_EXPECTED:
        message = (
            f"not computed yet: every arm needs {SRM_MIN_EXPECTED:g} expected visits "
            f"({n} randomized so far)"
        )
        return SampleRatio(shares, counts, None, None, threshold, False, message)
    chi2 = sum((counts[arm] - e) ** 2 / e for arm, e in zip(weights, expected, strict=True))
    p_value = chi2_survival(chi2, len(weights) - 1)
    alert = p_value < threshold
    if alert:
        message = (
            f"ALERT: visits are not split between the arms as planned (chi-square "
            f"{chi2:.2f}, p = {p_value:.2g} < {threshold:g}); check the kiosks and the "
            "randomization before going on"
        )
    else:
        message = (
            f"as planned (chi-square {chi2:.2f}, p = {p_value:.2g}; alert below {threshold:g})"
        )
    return SampleRatio(shares, counts, chi2, p_value, threshold, alert, message)


def _forecast(
    conn: Connection,
    trial_id: str,
    planned: int,
    total: Progress,
    started_at: datetime | None,
    now: datetime,
    window: timedelta,
) -> Forecast:
    analysed = total.visits - total.opted_out
    remaining = max(planned - analysed, 0)
    since = now - window
    if started_at is not None and started_at > since:
        since = started_at
    days = max((now - since).total_seconds() / 86400, 1 / 24)
    recent = conn.execute(
        select(func.count())
        .select_from(visits)
        .where(visits.c.trial_id == trial_id, visits.c.started_at >= since)
    ).scalar_one()
    kept = analysed / total.visits if total.visits else 1.0
    rate = recent * kept / days
    if remaining == 0:
        return Forecast(planned, analysed, 0, rate, days, now.date(), "planned sample size reached")
    if rate <= 0:
        message = "no visits in the window: no date can be given"
        return Forecast(planned, analysed, remaining, 0.0, days, None, message)
    expected = (now + timedelta(days=remaining / rate)).date()
    message = f"{remaining:,} more analysed visits at {rate:.1f} a day: around {expected}"
    return Forecast(planned, analysed, remaining, rate, days, expected, message)


def kiosk_contacts(
    conn: Connection,
    trial_id: str,
    *,
    now: datetime | None = None,
    settings: MonitorSettings | None = None,
    serving: bool = True,
) -> tuple[KioskContact, ...]:
    """The trial's kiosks with state and last contact; a switched-on kiosk of a ``serving``
    (running or paused) trial is ``silent`` when the opening-hours time since its last contact
    (or since it was added) exceeds ``settings.silent_after``."""
    now = now or store.utcnow()
    settings = settings or MonitorSettings()
    found = []
    for kiosk in store.list_kiosks(conn, trial_id):
        since = kiosk.last_seen_at or kiosk.created_at or now
        silent = (
            serving
            and kiosk.state == "active"
            and settings.opening.open_time(since, now) > settings.silent_after
        )
        found.append(
            KioskContact(kiosk.id, kiosk.location, kiosk.state, kiosk.last_seen_at, silent)
        )
    return tuple(found)


def monitor(
    conn: Connection,
    trial_id: str,
    *,
    now: datetime | None = None,
    settings: MonitorSettings | None = None,
) -> Monitoring:
    """The blinded progress of a trial (see the module docstring). Not a look at the results."""
    now = (now or store.utcnow()).astimezone(UTC)
    settings = settings or MonitorSettings()
    record = store.require_trial(conn, trial_id)
    trial = store.current_trial(conn, record)
    declared = set(MONITORED_EVENTS) & trial.outcome_events
    if declared:
        raise store.RecordingError(
            f"trial {trial_id!r} declares {', '.join(sorted(declared))} as an outcome; "
            "monitoring would show it, so it is refused",
            "outcomes",
        )
    counts = _visit_counts(conn, trial_id)
    happened = _event_counts(conn, trial_id)
    (total,) = _progress(
        [("all", "", "", n) for _, _, _, n in counts],
        [("all", "", "", t, n) for _, _, _, t, n in happened],
        0,
        ["all"],
    )
    by_arm = _progress(counts, happened, 0, [arm.id for arm in trial.arms])
    by_location = _progress(counts, happened, 1, trial.location_ids)
    by_day = tuple(sorted(_progress(counts, happened, 2), key=lambda p: p.key))
    observed = {p.key: p.visits for p in by_arm}
    planned = trial.analysis.planned_sample_size
    return Monitoring(
        trial_id=trial_id,
        status=str(record.status),
        generated_at=now,
        planned_sample_size=planned,
        total=total,
        by_arm=by_arm,
        by_location=by_location,
        by_day=by_day,
        kiosks=kiosk_contacts(conn, trial_id, now=now, settings=settings, serving=record.serving),
        sample_ratio=_sample_ratio(trial.weights, observed, settings.srm_threshold),
        forecast=_forecast(
            conn, trial_id, planned, total, record.started_at, now, settings.rate_window
        ),
    )
