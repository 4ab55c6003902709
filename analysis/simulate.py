"""Simulated visitors with known true rates, written through the kiosk's own write path.

Every visit is started with :func:`experiments.store.start_visits` (so it is randomized by
the trial's own method) and every event is stored with
:func:`experiments.store.record_events` (so idempotency and opt-out deletion apply), in
batches. Nothing writes the analysis tables directly. A seeded run on a fresh database is
reproducible: the same visits, arms, times and events.

Per visit: an ``exposure`` (probability ``exposure_rate``) carrying the material and disclosure
versions; if exposed, each outcome event; an ``opt_out`` (probability ``opt_out_rate``), logged
after the outcomes so the event log deletes them as it would on a kiosk; then ``finish``
(probability ``finish_rate``) or ``timeout``.

**What a rate means.** A true rate ``r`` for (outcome, arm, location, language) is the outcome's
probability among the *analysed* visits of that arm and stratum, i.e. the rate the report
estimates (modified intention to treat: every randomized visit except opt-outs, exposed or
not). Outcomes happen only after an exposure, so an exposed visit has the outcome with the
conditional probability ``r / e`` (``e`` = ``exposure_rate``) and an unexposed one never::

    P(outcome) = P(exposed) · P(outcome | exposed) = e · (r / e) = r.

Opt-outs are drawn independently of everything else, so leaving them out does not change the
rate. A rate above the exposure rate cannot be reached and is refused
(:class:`SimulationError`). This is also how a plan's ``baseline_rate`` is read: the rate in the
control arm of the analysed visits.
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import Connection, Engine

from experiments import store
from experiments.eventlog import refresh_planner_statistics
from experiments.model import Trial

RateKey = tuple[str, str, str | None, str | None]  # outcome, arm, location, language


class SimulationError(ValueError):
    """Bad simulation input (unknown arm, rate outside [0, 1], …)."""


@dataclass(frozen=True)
class Rates:
    """True outcome probabilities among analysed visits; the most specific matching entry wins.

    Lookup order for (outcome, arm, location, language): the exact entry, then any language,
    then any location, then (outcome, arm) alone, then ``default`` (the plan's baseline rate
    when built by :func:`parse_rates`).
    """

    table: Mapping[RateKey, float]
    default: float

    def rate(self, outcome: str, arm: str, location: str, language: str) -> float:
        """True probability of ``outcome`` for an analysed visit with these attributes."""
        for key in (
            (outcome, arm, location, language),
            (outcome, arm, location, None),
            (outcome, arm, None, language),
            (outcome, arm, None, None),
        ):
            if key in self.table:
                return self.table[key]
        return self.default


def parse_rates(
    trial: Trial, spec: str | None = None, rates_file: str | Path | None = None
) -> Rates:
    """Build :class:`Rates` from ``arm=0.05,...`` (primary outcome) and/or a CSV file.

    The CSV has columns ``outcome,arm,location,language,rate``; leave location or language
    empty for "any". Unlisted combinations use the plan's ``baseline_rate``.
    """
    table: dict[RateKey, float] = {}
    primary = trial.primary_outcome.id
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        arm, sep, value = item.partition("=")
        if not sep:
            raise SimulationError(f"rate {item!r} is not of the form arm=0.05")
        table[(primary, arm.strip(), None, None)] = _probability(value, item)
    if rates_file is not None:
        with open(rates_file, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                key = (
                    (row.get("outcome") or primary).strip(),
                    (row.get("arm") or "").strip(),
                    (row.get("location") or "").strip() or None,
                    (row.get("language") or "").strip() or None,
                )
                table[key] = _probability(row.get("rate", ""), str(row))
    _validate_keys(trial, table)
    return Rates(table, trial.analysis.baseline_rate)


def _probability(value: str, item: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise SimulationError(f"rate in {item!r} is not a number") from None
    if not 0.0 <= rate <= 1.0:
        raise SimulationError(f"rate in {item!r} must be a proportion between 0 and 1")
    return rate


def _validate_keys(trial: Trial, table: Mapping[RateKey, float]) -> None:
    arms = {arm.id for arm in trial.arms}
    outcomes = {outcome.id for outcome in trial.outcomes}
    for outcome, arm, location, language in table:
        if outcome not in outcomes:
            raise SimulationError(f"unknown outcome {outcome!r}; trial has {sorted(outcomes)}")
        if arm not in arms:
            raise SimulationError(f"unknown arm {arm!r}; trial has {sorted(arms)}")
        if location is not None and location not in trial.location_ids:
            raise SimulationError(f"unknown location {location!r}")
        if language is not None and language not in trial.languages:
            raise SimulationError(f"unknown language {language!r}")


@dataclass(frozen=True)
class Settings:
    """How visitors behave, apart from the outcome rates."""

    visits: int
    seed: int = 0
    batch_size: int = 10_000
    exposure_rate: float = 0.97
    opt_out_rate: float = 0.02
    finish_rate: float = 0.8
    #: Share of exposures that carry an outdated disclosure hash (to exercise the check).
    stale_disclosure_rate: float = 0.0
    location_weights: Mapping[str, float] = field(default_factory=dict)
    language_weights: Mapping[str, float] = field(default_factory=dict)
    #: Visits are spread over these days (default: the trial's schedule), 08:00-20:00 UTC.
    start: datetime | None = None
    days: int | None = None


@dataclass(frozen=True)
class SimulationResult:
    """What a simulation wrote: visits per arm and events by type and outcome."""

    trial_id: str
    visits: int
    per_arm: dict[str, int]
    events: Counter[str]


def check_reachable(rates: Rates, exposure_rate: float) -> None:
    """Refuse a rate among analysed visits that the exposure rate cannot reach (``r > e``).

    Outcomes happen only after an exposure, so at most a share ``e`` of the analysed visits can
    have one (see the module docstring).
    """
    entries = [("the default (baseline) rate", rates.default)]
    entries += [(_describe(key), rate) for key, rate in rates.table.items()]
    for name, rate in entries:
        if rate > exposure_rate:
            raise SimulationError(
                f"{name} {rate:g} is above the exposure rate {exposure_rate:g}: outcomes happen "
                "only after an exposure, so at most that share of the analysed visits can have "
                "one; lower the rate or raise --exposure-rate"
            )


def _describe(key: RateKey) -> str:
    outcome, arm, location, language = key
    parts = [f"the rate of {outcome} in arm {arm}"]
    if location is not None:
        parts.append(f"location {location}")
    if language is not None:
        parts.append(f"language {language}")
    return ", ".join(parts)


def conditional_rate(rate: float, exposure_rate: float) -> float:
    """``P(outcome | exposed) = r / e``: gives the rate ``r`` among all analysed visits."""
    return rate / exposure_rate if exposure_rate > 0 else 0.0


def prepare_trial(conn: Connection, trial: Trial, source: str | None, seed: int) -> None:
    """Load (if new or changed) and start the trial.

    A trial that the simulator loads for the first time gets an allocation secret derived from
    the seed, so that block and hash randomization are reproducible too. An existing trial's
    secret is never touched.
    """
    if store.read_trial(conn, trial.id) is None and source is None:
        raise SimulationError(f"trial {trial.id!r} is not loaded; pass the trial file")
    if source is not None:
        secret = hashlib.sha256(f"nudgelab-simulate|{trial.id}|{seed}".encode()).hexdigest()[:32]
        store.load_trial(conn, trial, source, allocation_secret=secret)
    if not store.require_trial(conn, trial.id).running:
        store.start_trial(conn, trial.id)


def _choices(rng: np.random.Generator, names: list[str], weights: Mapping[str, float], size: int):  # type: ignore[no-untyped-def]
    p = np.array([float(weights.get(name, 1.0)) for name in names])
    return rng.choice(len(names), size=size, p=p / p.sum())


def event_key(visit_id: str, event_type: str) -> str:
    """Idempotency key of a simulated event: stable for a visit and type."""
    return hashlib.sha256(f"{visit_id}|{event_type}".encode()).hexdigest()[:32]


def simulate(
    engine: Engine,
    trial: Trial,
    rates: Rates,
    settings: Settings,
    *,
    source: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Write ``settings.visits`` simulated visits of ``trial``; return what was written."""
    if settings.visits < 1 or settings.batch_size < 1:
        raise SimulationError("visits and batch size must be at least 1")
    check_reachable(rates, settings.exposure_rate)
    with engine.begin() as conn:
        prepare_trial(conn, trial, source, settings.seed)
    assign_rng = random.Random(settings.seed)
    rng = np.random.default_rng(settings.seed)
    start = settings.start or datetime.combine(trial.schedule.start, time(8), tzinfo=UTC)
    days = settings.days or max((trial.schedule.end - trial.schedule.start).days + 1, 1)
    locations, languages = trial.location_ids, list(trial.languages)
    per_arm: Counter[str] = Counter()
    written: Counter[str] = Counter()
    for offset in range(0, settings.visits, settings.batch_size):
        size = min(settings.batch_size, settings.visits - offset)
        loc = _choices(rng, locations, settings.location_weights, size)
        lang = _choices(rng, languages, settings.language_weights, size)
        position = (offset + np.arange(size) + rng.random(size)) / settings.visits
        day = np.minimum((position * days).astype(int), days - 1)
        seconds = rng.integers(0, 12 * 3600, size)
        times = [
            start + timedelta(days=int(d), seconds=int(s))
            for d, s in zip(day, seconds, strict=True)
        ]
        specs = [
            store.VisitSpec(locations[lo], languages[la], started_at=when)
            for lo, la, when in zip(loc, lang, times, strict=True)
        ]
        with engine.begin() as conn:
            started = store.start_visits(conn, trial, specs, rng=assign_rng)
            event_specs = visit_events(trial, rates, settings, rng, specs, started)
            outcomes = store.record_events(conn, trial, event_specs)
        per_arm.update(visit.arm for visit in started)
        for spec, outcome in zip(event_specs, outcomes, strict=True):
            written[f"{spec.type}:{outcome}"] += 1
        if progress is not None:
            progress(size)
    with engine.begin() as conn:  # after a bulk write PostgreSQL's planner statistics are stale
        refresh_planner_statistics(conn)
    return SimulationResult(trial.id, settings.visits, dict(per_arm), written)


def visit_events(
    trial: Trial,
    rates: Rates,
    settings: Settings,
    rng: np.random.Generator,
    specs: list[store.VisitSpec],
    started: list[store.StartedVisit],
) -> list[store.EventSpec]:
    """The events of a batch of started visits (the draws :func:`simulate` stores).

    An exposed visit gets each outcome with probability ``rate / exposure_rate``
    (:func:`conditional_rate`), so the outcome's rate among all analysed visits is ``rate``.
    """
    size = len(specs)
    exposed = rng.random(size) < settings.exposure_rate
    stale = rng.random(size) < settings.stale_disclosure_rate
    opt_out = rng.random(size) < settings.opt_out_rate
    finish = rng.random(size) < settings.finish_rate
    draws = rng.random((size, len(trial.outcomes)))
    disclosure = {language: trial.disclosure_version(language) for language in trial.languages}
    material = {
        (arm.id, language): trial.material_version(arm.id, language)
        for arm in trial.arms
        for language in trial.languages
    }
    result: list[store.EventSpec] = []
    for i, (spec, visit) in enumerate(zip(specs, started, strict=True)):
        when = spec.started_at or datetime.now(UTC)
        if exposed[i]:
            shown = disclosure[spec.language]
            result.append(
                _event(
                    visit.id,
                    spec.language,
                    "exposure",
                    when + timedelta(seconds=5),
                    material[(visit.arm, spec.language)],
                    ("stale-" + shown[:10]) if stale[i] else shown,
                )
            )
            for j, outcome in enumerate(trial.outcomes):
                rate = rates.rate(outcome.id, visit.arm, spec.location, spec.language)
                if draws[i, j] < conditional_rate(rate, settings.exposure_rate):
                    moment = when + timedelta(seconds=60 + j)
                    result.append(_event(visit.id, spec.language, outcome.event, moment))
        if opt_out[i]:
            result.append(_event(visit.id, spec.language, "opt_out", when + timedelta(seconds=90)))
        ending, after = ("finish", 120) if finish[i] else ("timeout", 300)
        result.append(_event(visit.id, spec.language, ending, when + timedelta(seconds=after)))
    return result


def _event(
    visit_id: str,
    language: str,
    kind: str,
    when: datetime,
    material_version: str | None = None,
    disclosure_version: str | None = None,
) -> store.EventSpec:
    return store.EventSpec(
        visit_id,
        kind,
        event_key(visit_id, kind),
        language=language,
        material_version=material_version,
        disclosure_version=disclosure_version,
        occurred_at=when,
    )
