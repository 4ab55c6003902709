"""The event log read in one pass: a trial's visits grouped into *visit classes*.

A visit class is a set of visits that agree on everything the report counts: the arm (none for
a visit without an assignment), location, language, trial version, the hour the visit started
in (UTC) and the visit's *event signature*. The database derives the signature once per visit
from that visit's own events and then groups the visits, so each event row is read once, the
date arithmetic runs once per visit and a trial of a million visits arrives here as a few
thousand rows. Cell counts (:mod:`analysis.counts`) and the data-quality figures
(:class:`LogTally`) are both computed from the classes, so they come from the same snapshot.

The event signature lists, separated by :data:`RECORD`, one token per event the analysis uses:

- an ``exposure``: ``x``, then its language, disclosure version and material version, each
  separated by :data:`UNIT` and written ``=value`` (an empty field is a missing value);
- an ``opt_out`` or an outcome event: its type.

Other events (``finish``, ``timeout``, …) change no number of the report, except that events of
visits without an assignment are counted by type: when the classes show such visits, one more
query counts their events (:func:`orphan_events_query`).

Indexes that keep the pass linear (``experiments/eventlog.py``): visits by (trial, id) covering
the strata, assignments by (trial, visit) covering the arm, events by (trial, visit) covering
type, language and versions. SQLite reads each visit's events with one index seek, in visit-id
order; PostgreSQL aggregates the events per visit from the index and hash-joins the three.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals
from sqlalchemy import Connection, Select, and_, case, func, literal, select, text
from sqlalchemy.sql.elements import ColumnElement

from experiments.eventlog import assignments, events, visits

#: Separates the tokens of an event signature (ASCII record separator).
RECORD = "\x1e"
#: Separates the fields of an exposure token (ASCII unit separator).
UNIT = "\x1f"
EXPOSURE = "exposure"
OPT_OUT = "opt_out"
#: Columns of the visit-class table, in order; ``visits`` is the number of visits in the class.
CLASS_KEYS: tuple[str, ...] = (
    "arm",
    "location",
    "language",
    "trial_version",
    "hour_start",
    "signature",
)


@dataclass(frozen=True)
class Signature:
    """A visit's events as the analysis sees them, decoded from its signature text."""

    types: frozenset[str]
    #: Number of events of each type (exposures included, under ``exposure``).
    type_counts: tuple[tuple[str, int], ...]
    #: ``(language, disclosure_version, material_version)`` of each exposure, ``None`` if unset.
    exposures: tuple[tuple[str | None, str | None, str | None], ...]


@lru_cache(maxsize=4096)
def decode_signature(signature: str | None) -> Signature:
    """Decode an event signature (see the module docstring); ``None`` means no events."""
    types: Counter[str] = Counter()
    exposures: list[tuple[str | None, str | None, str | None]] = []
    for token in signature.split(RECORD) if signature else ():
        if UNIT not in token:
            types[token] += 1
            continue
        fields = token.split(UNIT)
        if fields[0] != "x" or len(fields) != 4 or any(f and f[0] != "=" for f in fields[1:]):
            raise ValueError(f"cannot decode the exposure {token!r} of an event signature")
        language, disclosure, material = (f[1:] if f else None for f in fields[1:])
        exposures.append((language, disclosure, material))
        types[EXPOSURE] += 1
    return Signature(frozenset(types), tuple(sorted(types.items())), tuple(exposures))


@dataclass(frozen=True)
class LogTally:
    """What the pass over the event log saw besides the cells: records the estimates do not use
    and the versions shown.
    """

    #: Visits per trial version, randomized or not.
    visits_by_version: dict[str, int] = field(default_factory=dict)
    visits_without_assignment: int = 0
    #: Events of visits without an assignment, by type.
    events_without_assignment: dict[str, int] = field(default_factory=dict)
    #: Exposure events of randomized visits per (arm, language, disclosure, material version).
    exposures: dict[tuple[str, str | None, str | None, str | None], int] = field(
        default_factory=dict
    )


# -- SQL -------------------------------------------------------------------------------------


def _field(column: ColumnElement[str]) -> ColumnElement[str]:
    """``=value``, or an empty text when the value is missing."""
    return func.coalesce(literal("=") + column, literal(""))


def _used_types(event_types: Sequence[str]) -> list[str]:
    return sorted({EXPOSURE, OPT_OUT, *event_types})


def _token(event_types: Sequence[str]) -> ColumnElement[str]:
    """The signature token of one row of ``events`` (NULL for an event the counts do not use)."""
    exposure = literal("x")
    for column in (events.c.language, events.c.disclosure_version, events.c.material_version):
        exposure = exposure + literal(UNIT) + _field(column)
    return case(
        (events.c.type == EXPOSURE, exposure),
        (events.c.type.in_(_used_types(event_types)), events.c.type),
        else_=None,
    )


def _hour_start(dialect: str) -> ColumnElement[object]:
    """The hour a visit started in, UTC: ``YYYY-MM-DD HH`` text (SQLite) or a timestamp."""
    if dialect == "sqlite":
        return func.strftime("%Y-%m-%d %H", visits.c.started_at)
    return func.date_trunc("hour", visits.c.started_at)


def _assignment_join() -> ColumnElement[bool]:
    return and_(assignments.c.trial_id == visits.c.trial_id, assignments.c.visit_id == visits.c.id)


def per_visit_query(trial_id: str, event_types: Sequence[str], dialect: str) -> Select:  # type: ignore[type-arg]
    """One row per visit of the trial: its class keys (:data:`CLASS_KEYS` but ``visits``)."""
    keys = (
        assignments.c.arm,
        visits.c.location,
        visits.c.language,
        visits.c.trial_version,
        _hour_start(dialect).label("hour_start"),
    )
    base = visits.outerjoin(assignments, _assignment_join())
    if dialect == "sqlite":
        # One index seek per visit, in the order of the visits' index: a correlated subquery.
        signature = (
            select(func.group_concat(_token(event_types), RECORD))
            .where(events.c.trial_id == visits.c.trial_id, events.c.visit_id == visits.c.id)
            .scalar_subquery()
        )
        return (
            select(*keys, signature.label("signature"))
            .select_from(base)
            .where(visits.c.trial_id == trial_id)
        )
    # PostgreSQL: aggregate the used events per visit from the index, then hash-join.
    signatures = (
        select(events.c.visit_id, func.string_agg(_token(event_types), RECORD).label("signature"))
        .where(events.c.trial_id == trial_id, events.c.type.in_(_used_types(event_types)))
        .group_by(events.c.visit_id)
        .subquery("signatures")
    )
    return (
        select(*keys, signatures.c.signature)
        .select_from(base.outerjoin(signatures, signatures.c.visit_id == visits.c.id))
        .where(visits.c.trial_id == trial_id)
    )


def classes_query(trial_id: str, event_types: Sequence[str], dialect: str) -> Select:  # type: ignore[type-arg]
    """Group the visits of :func:`per_visit_query` into classes, counting the visits."""
    per_visit = per_visit_query(trial_id, event_types, dialect)
    if dialect == "sqlite":
        # LIMIT -1 (no limit) keeps SQLite from flattening the subquery into the GROUP BY, which
        # would evaluate the signature's subquery twice per visit.
        per_visit = per_visit.limit(-1)
    rows = per_visit.subquery("per_visit")
    keys = [rows.c[key] for key in CLASS_KEYS]
    # SQLite groups by sorting: the start hour first ends most comparisons at the first column.
    order = sorted(keys, key=lambda column: column.name != "hour_start")
    return select(*keys, func.count().label("visits")).group_by(*order)


def orphan_events_query(trial_id: str) -> Select:  # type: ignore[type-arg]
    """Events of the trial's visits without an assignment, counted by type."""
    unassigned = visits.outerjoin(assignments, _assignment_join())
    orphans = (
        select(visits.c.id)
        .select_from(unassigned)
        .where(visits.c.trial_id == trial_id, assignments.c.visit_id.is_(None))
    )
    return (
        select(events.c.type, func.count())
        .where(events.c.visit_id.in_(orphans))
        .group_by(events.c.type)
        .order_by(events.c.type)
    )


#: PostgreSQL planner settings for the pass, chosen by measuring it at 1.1 million visits
#: (``bench/README.md``): no JIT (compiling the plan took longer than running it); no parallel
#: workers (each would build its own hash table of the per-visit signatures); no sort (the
#: planner expects as many classes as visits, as it cannot know that visits share them, so it
#: would sort every visit to group them where a hash table holds only the few thousand
#: classes); ``work_mem`` enough for the joins' hash tables to stay in memory; and a plan for
#: all rows of the (server-side) cursor, not the fastest first rows, which picks nested loops.
PLAN_SETTINGS: dict[str, str] = {
    "cursor_tuple_fraction": "1",
    "jit": "off",
    "max_parallel_workers_per_gather": "0",
    "enable_sort": "off",
    "work_mem": "64MB",
}


@contextmanager
def _plan_settings(conn: Connection) -> Iterator[None]:
    """Apply :data:`PLAN_SETTINGS` on PostgreSQL, and restore the previous values afterwards
    (the rest of the caller's transaction is planned as before)."""
    if conn.dialect.name != "postgresql":
        yield
        return

    def apply(values: dict[str, str]) -> None:
        calls = ", ".join(f"set_config(:n{i}, :v{i}, true)" for i in range(len(values)))
        params = {}
        for i, (name, value) in enumerate(values.items()):
            params.update({f"n{i}": name, f"v{i}": value})
        conn.execute(text(f"SELECT {calls}"), params)

    names = list(PLAN_SETTINGS)
    current = ", ".join(f"current_setting(:n{i})" for i in range(len(names)))
    saved = conn.execute(
        text(f"SELECT {current}"), {f"n{i}": name for i, name in enumerate(names)}
    ).one()
    apply(PLAN_SETTINGS)
    try:
        yield
    finally:
        apply(dict(zip(names, saved, strict=True)))


def read_visit_classes(
    conn: Connection, trial_id: str, event_types: Iterable[str], batch_rows: int
) -> pd.DataFrame:
    """The trial's visit classes: :data:`CLASS_KEYS` as categoricals (a missing arm is NaN) and
    ``visits`` as ``int64``, read ``batch_rows`` at a time (times in UTC).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL TIME ZONE 'UTC'"))
    query = classes_query(trial_id, sorted(set(event_types)), conn.dialect.name)
    parts: list[dict[str, object]] = []
    with _plan_settings(conn):
        result = conn.execute(query, execution_options={"stream_results": True})
        for rows in result.partitions(batch_rows):
            columns = list(zip(*rows, strict=True))
            part: dict[str, object] = {
                key: pd.Categorical(pd.Series(values, dtype=object))
                for key, values in zip(CLASS_KEYS, columns, strict=False)
            }
            part["visits"] = np.asarray(columns[-1], dtype="int64")
            parts.append(part)
    if not parts:
        empty: dict[str, object] = {key: pd.Categorical([]) for key in CLASS_KEYS}
        return pd.DataFrame({**empty, "visits": np.zeros(0, dtype="int64")})
    data = {
        key: union_categoricals([part[key] for part in parts])  # type: ignore[misc]
        for key in CLASS_KEYS
    }
    data["visits"] = np.concatenate([part["visits"] for part in parts])  # type: ignore[arg-type]
    return pd.DataFrame(data)


# -- decoding --------------------------------------------------------------------------------


def time_keys(hour_start: object) -> tuple[str, str, str]:
    """``(week, hour, weekday)`` of a start hour: the Monday of its ISO week (``YYYY-MM-DD``),
    the hour 0-23 and the weekday 0 = Monday, as texts.
    """
    if isinstance(hour_start, datetime):
        day, hour = hour_start.date(), hour_start.hour
    else:
        moment = datetime.strptime(str(hour_start), "%Y-%m-%d %H")
        day, hour = moment.date(), moment.hour
    monday: date = day - timedelta(days=day.weekday())
    return monday.isoformat(), str(hour), str(day.weekday())


def signature_flags(classes: pd.DataFrame, event_types: Sequence[str]) -> pd.DataFrame:
    """One 0/1 ``int64`` column per event type: whether the class's visits have that event."""
    categories = classes["signature"].cat.categories
    codes = classes["signature"].cat.codes.to_numpy()
    decoded = [decode_signature(text) for text in categories] + [decode_signature(None)]
    flags = {}
    for event_type in event_types:
        lookup = np.array([event_type in s.types for s in decoded], dtype="int64")
        flags[event_type] = lookup[codes]  # code -1 (no events) indexes the last entry
    return pd.DataFrame(flags, index=classes.index)


def read_tally(conn: Connection, trial_id: str, classes: pd.DataFrame) -> LogTally:
    """The data-quality facts of :class:`LogTally`: from the visit classes, and the events of
    visits without an assignment if there are any.
    """
    orphan_events: dict[str, int] = {}
    if classes["arm"].isna().any():
        rows = conn.execute(orphan_events_query(trial_id)).all()
        orphan_events = {str(kind): int(number) for kind, number in rows}
    return tally(classes, orphan_events)


def tally(classes: pd.DataFrame, orphan_events: dict[str, int]) -> LogTally:
    """The data-quality facts of :class:`LogTally` from the visit classes and the events of the
    visits without an assignment, by type."""
    by_version = classes.groupby("trial_version", observed=True)["visits"].sum()
    signatures = [None, *classes["signature"].cat.categories]  # indexed by code + 1
    unassigned = classes["arm"].isna().to_numpy()
    # Visits per (arm, signature code + 1) pair; 0 = no events.
    codes = classes["signature"].cat.codes.to_numpy().astype("int64") + 1
    visits = classes["visits"].to_numpy()
    assigned = classes[~unassigned]
    pairs = (
        pd.DataFrame(
            {
                "arm": assigned["arm"].cat.codes,
                "signature": codes[~unassigned],
                "visits": visits[~unassigned],
            }
        )
        .groupby(["arm", "signature"], sort=True)["visits"]
        .sum()
    )
    arms = classes["arm"].cat.categories
    exposures: Counter[tuple[str, str | None, str | None, str | None]] = Counter()
    for (arm, code), number in pairs.items():
        for shown in decode_signature(signatures[code]).exposures:
            exposures[(str(arms[arm]), *shown)] += int(number)
    return LogTally(
        visits_by_version={str(k): int(v) for k, v in sorted(by_version.items())},
        visits_without_assignment=int(visits[unassigned].sum()),
        events_without_assignment=dict(sorted(orphan_events.items())),
        exposures=dict(exposures),
    )
