"""The event log read in one pass: a trial's visits grouped into *visit classes*.

A visit class is a set of visits that agree on everything the report counts: the arm (none for
a visit without an assignment), location, language, trial version, the hour the visit started
in (UTC) and the visit's *event signature*. A trial of a million visits arrives here as a few
thousand rows. Cell counts (:mod:`analysis.counts`) and the data-quality figures
(:class:`LogTally`) are both computed from the classes, so they come from the same snapshot.

The event signature lists, separated by :data:`RECORD` and sorted, one token per event:

- an ``exposure``: ``x``, then its language, disclosure version and material version, each
  separated by :data:`UNIT` and written ``=value`` (an empty field is a missing value);
- any other event: its type, except ``finish``, ``timeout`` and ``language_switch``, which
  change no figure of the report.

The database keeps each visit's arm and signature in two columns of its row (``visits.arm``,
``visits.signature``): triggers of migration ``0006`` rewrite them in the same statement as
every insert, update or delete of an assignment or an event (on PostgreSQL once they hold the
visit's row, migration ``0007``, so that events written at the same moment miss none of each
other), so the pass reads the visits alone and never an event. SQLite reads the classes in
order from an index made for them (:data:`experiments.eventlog.CLASSES_INDEX`); PostgreSQL
hashes the visits into classes.
Events of visits without an assignment are counted by type, by one more query when the
classes show such visits (:func:`orphan_events_query`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import groupby

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals
from sqlalchemy import Connection, Select, and_, func, literal_column, select, text
from sqlalchemy.sql.elements import ColumnElement

from experiments.eventlog import HOUR_FORMAT, assignments, events, visits

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


#: Events kept out of the signature: they change no figure of the report.
UNCOUNTED_EVENTS = frozenset({"finish", "timeout", "language_switch"})


def encode_signature(
    visit_events: Iterable[tuple[str, str | None, str | None, str | None]],
) -> str | None:
    """The signature of a visit's events, each ``(type, language, disclosure_version,
    material_version)``, as the database keeps it (``None`` without a counted event): a recount
    in Python of what the triggers write."""
    tokens = []
    for kind, *shown in visit_events:
        if kind in UNCOUNTED_EVENTS:
            continue
        if kind != EXPOSURE:
            tokens.append(kind)
            continue
        tokens.append(UNIT.join(["x", *("" if value is None else f"={value}" for value in shown)]))
    return RECORD.join(sorted(tokens)) if tokens else None


def stale_signatures(conn: Connection) -> list[str]:
    """The visits whose kept signature (``visits.signature``) differs from
    :func:`encode_signature` of their events, read in one statement (one snapshot, also while
    events are being written). There should be none; this reads every event (for tests,
    benchmarks and an operator's check, not for the report)."""
    shown = (
        events.c.type,
        events.c.language,
        events.c.disclosure_version,
        events.c.material_version,
    )
    rows = conn.execute(
        select(visits.c.id, visits.c.signature, *shown)
        .select_from(visits.outerjoin(events, events.c.visit_id == visits.c.id))
        .order_by(visits.c.id)
    )
    stale = []
    for visit_id, visit_rows in groupby(rows, key=lambda row: row[0]):
        first, *rest = visit_rows
        kept = first[1]
        visit_events = [tuple(row[2:]) for row in (first, *rest) if row[2] is not None]
        if kept != encode_signature(visit_events):  # type: ignore[arg-type]
            stale.append(visit_id)
    return stale


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


def _hour_start(dialect: str) -> ColumnElement[object]:
    """The hour a visit started in, UTC: ``YYYY-MM-DD HH`` text (SQLite, the expression of
    :data:`experiments.eventlog.CLASSES_INDEX`) or a timestamp."""
    if dialect == "sqlite":
        # The format inline, not a bound parameter: only then does SQLite see the expression
        # of its index and read the classes in order (with a parameter it sorted: 1.3 s
        # instead of 0.2 s at 1.1 million visits).
        return func.strftime(literal_column(f"'{HOUR_FORMAT}'"), visits.c.started_at)
    return func.date_trunc("hour", visits.c.started_at)


def _assignment_join() -> ColumnElement[bool]:
    return and_(assignments.c.trial_id == visits.c.trial_id, assignments.c.visit_id == visits.c.id)


def classes_query(trial_id: str, dialect: str) -> Select:  # type: ignore[type-arg]
    """The trial's visits grouped into classes (:data:`CLASS_KEYS`), counting the visits.

    Each visit's arm and signature are columns of its row, kept by the database with every
    write of an assignment or an event (migration ``0006``), so this reads the visits alone.
    """
    hour_start = _hour_start(dialect).label("hour_start")
    keys = (
        visits.c.arm,
        visits.c.location,
        visits.c.language,
        visits.c.trial_version,
        hour_start,
        visits.c.signature,
    )
    # In the order of SQLite's classes index, which it then reads without sorting.
    order = (hour_start, *keys[:4], visits.c.signature)
    return (
        select(*keys, func.count().label("visits"))
        .where(visits.c.trial_id == trial_id)
        .group_by(*order)
    )


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
#: (``bench/README.md``): no sort (the planner expects as many classes as visits, as it cannot
#: know that visits share them, so it would sort every visit to group them where a hash table
#: holds only the few thousand classes: 1.06 s with the defaults against 0.57 s); ``work_mem``
#: enough for that hash table to stay in memory; no JIT (compiling the plan took longer than
#: running it); no parallel workers (two made no measurable difference on two cores); and a
#: plan for all rows of the (server-side) cursor, not the fastest first rows.
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


def read_visit_classes(conn: Connection, trial_id: str, batch_rows: int) -> pd.DataFrame:
    """The trial's visit classes: :data:`CLASS_KEYS` as categoricals (a missing arm is NaN) and
    ``visits`` as ``int64``, read ``batch_rows`` at a time (times in UTC).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL TIME ZONE 'UTC'"))
    query = classes_query(trial_id, conn.dialect.name)
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
