"""Event log → intention-to-treat counts per arm × stratum.

Every randomized visit (a row of ``visits`` with an ``assignments`` row) is counted in the arm it
was assigned to, whether or not it saw the material (intention to treat). Per visit four kinds
of 0/1 flags come from its events: ``exposed``, ``opted_out`` and one flag per declared outcome.
The database reads the event log in one pass and groups the visits into *visit classes*
(:mod:`analysis.visit_classes`: arm, stratum, start hour and the visit's events), so a trial of a
million visits arrives here as a few thousand rows and no event row is ever loaded into Python;
the classes are summed into cells by ``arm, location, language, week, hour, weekday``. A trial
with many locations and languages can have a few hundred thousand cells; they are read in
batches and kept column by column (categorical keys), about 60 bytes per cell with two outcomes.

Cell columns (:data:`KEY_COLUMNS` then counts):

- ``n``: randomized visits; ``opted_out``: visits with an ``opt_out`` event; ``exposed``;
- ``outcome_<id>``: analysed visits (not opted out) with at least one ``<event>``;
- ``unexposed_<id>``: analysed visits with the outcome but no exposure (a data-quality count);
- ``opted_out_with_outcome``: opted-out visits that still have an outcome event (should be 0).

Times are in UTC (PostgreSQL sessions are switched to UTC for the query); ``week`` is the
Monday of the ISO week, ``weekday`` 0 = Monday.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Integer, case, cast, func, select, text
from sqlalchemy.sql.elements import ColumnElement

from analysis.visit_classes import (
    EXPOSURE,
    OPT_OUT,
    LogTally,
    read_tally,
    read_visit_classes,
    signature_flags,
    time_keys,
)
from experiments.eventlog import assignments, events, visits

KEY_COLUMNS: tuple[str, ...] = ("arm", "location", "language", "week", "hour", "weekday")
BASE_COUNTS: tuple[str, ...] = ("n", "opted_out", "exposed", "opted_out_with_outcome")
#: Stands for "several values merged" in a coarsened export cell.
MERGED = "*"


def outcome_column(outcome_id: str) -> str:
    """Cell column with the successes of an outcome."""
    return f"outcome_{outcome_id}"


def unexposed_column(outcome_id: str) -> str:
    """Cell column with analysed visits that have the outcome but no exposure."""
    return f"unexposed_{outcome_id}"


@dataclass(frozen=True)
class OutcomeSpec:
    """An outcome to count: its id and the event type that marks it."""

    id: str
    event: str


@dataclass(frozen=True)
class Counts:
    """Sufficient statistics of a trial: one row per arm × stratum cell.

    ``source`` is ``"database"`` or ``"export"``; ``data_hash`` is :func:`cells_hash` of the
    cells, i.e. of exactly the numbers every estimate in the report is computed from. Counts
    read from the database carry the ``tally`` of the same pass over the event log (the
    data-quality figures, :func:`analysis.checks.read_quality`).
    """

    trial_id: str
    outcomes: tuple[OutcomeSpec, ...]
    cells: pd.DataFrame
    source: str
    data_hash: str
    tally: LogTally | None = None

    @property
    def count_columns(self) -> list[str]:
        """The count columns of a cell table, in their fixed order."""
        return count_columns(self.outcomes)

    def by(self, *keys: str, where: dict[str, str] | None = None) -> pd.DataFrame:
        """Sum the counts over every key not in ``keys`` (optionally within a stratum)."""
        frame = self.cells
        for column, value in (where or {}).items():
            frame = frame[frame[column] == value]
        table = frame.groupby(list(keys), sort=True, observed=True)[self.count_columns].sum()
        return _plain_index(table)


def count_columns(outcomes: Iterable[OutcomeSpec]) -> list[str]:
    """The count columns of a cell table, in their fixed order."""
    outcomes = list(outcomes)
    return [
        *BASE_COUNTS,
        *(outcome_column(o.id) for o in outcomes),
        *(unexposed_column(o.id) for o in outcomes),
    ]


# -- SQL -------------------------------------------------------------------------------------


def _flag(event_type: str) -> ColumnElement[int]:
    return func.max(case((events.c.type == event_type, 1), else_=0))


def _time_columns(
    dialect: str,
) -> tuple[ColumnElement[str], ColumnElement[int], ColumnElement[int]]:
    """Week (Monday, ``YYYY-MM-DD``), hour and weekday (0 = Monday) of ``visits.started_at``."""
    started = visits.c.started_at
    if dialect == "sqlite":
        week = func.date(started, "weekday 0", "-6 days")
        hour = cast(func.strftime("%H", started), Integer)
        weekday = (cast(func.strftime("%w", started), Integer) + 6) % 7
        return week, hour, weekday
    week = func.to_char(func.date_trunc("week", started), "YYYY-MM-DD")
    hour = cast(func.extract("hour", started), Integer)
    weekday = (cast(func.extract("isodow", started), Integer) + 6) % 7
    return week, hour, weekday


def visit_flags(trial_id: str, outcomes: Sequence[OutcomeSpec]):  # type: ignore[no-untyped-def]
    """Subquery: one row per visit that has events, with its 0/1 flags."""
    columns = [
        events.c.visit_id,
        _flag("exposure").label("exposed"),
        _flag("opt_out").label("opted_out"),
        *(_flag(o.event).label(f"f_{o.id}") for o in outcomes),
    ]
    return (
        select(*columns)
        .where(events.c.trial_id == trial_id)
        .group_by(events.c.visit_id)
        .subquery("flags")
    )


def itt_query(trial_id: str, outcomes: Sequence[OutcomeSpec], dialect: str):  # type: ignore[no-untyped-def]
    """Select one row per randomized visit: the intention-to-treat dataset."""
    flags = visit_flags(trial_id, outcomes)
    week, hour, weekday = _time_columns(dialect)
    opted = func.coalesce(flags.c.opted_out, 0)
    return (
        select(
            assignments.c.arm,
            visits.c.location,
            visits.c.language,
            week.label("week"),
            hour.label("hour"),
            weekday.label("weekday"),
            visits.c.started_at,
            opted.label("opted_out"),
            func.coalesce(flags.c.exposed, 0).label("exposed"),
            *(func.coalesce(getattr(flags.c, f"f_{o.id}"), 0).label(f"f_{o.id}") for o in outcomes),
        )
        .select_from(
            visits.join(assignments, assignments.c.visit_id == visits.c.id).outerjoin(
                flags, flags.c.visit_id == visits.c.id
            )
        )
        .where(visits.c.trial_id == trial_id)
    )


def utc_session(conn: Connection) -> None:
    """Make PostgreSQL report times in UTC for this transaction (SQLite stores them as given)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL TIME ZONE 'UTC'"))


def load_counts(
    engine: Engine | Connection, trial_id: str, outcomes: Sequence[OutcomeSpec]
) -> Counts:
    """Count the trial's randomized visits per cell with one pass over the event log.

    The visit classes are read in batches of :data:`FETCH_ROWS` rows and stored column by
    column (categorical keys, ``int64`` counts), so a trial with hundreds of thousands of
    cells (many locations × weeks × hours) never holds them as Python row tuples or strings.
    """

    def read(conn: Connection) -> tuple[pd.DataFrame, LogTally]:
        classes = read_visit_classes(conn, trial_id, FETCH_ROWS)
        return classes, read_tally(conn, trial_id, classes)

    if isinstance(engine, Connection):
        classes, log = read(engine)
    else:
        with engine.begin() as conn:
            classes, log = read(conn)
    frame = cells_from_classes(classes, outcomes)
    return replace(counts_from_frame(trial_id, outcomes, frame, "database"), tally=log)


def cells_from_classes(classes: pd.DataFrame, outcomes: Sequence[OutcomeSpec]) -> pd.DataFrame:
    """Sum the randomized visit classes into cells with the columns of :func:`count_columns`."""
    randomized = classes[classes["arm"].notna()]
    flags = signature_flags(randomized, [EXPOSURE, OPT_OUT, *(o.event for o in outcomes)])
    visits_ = randomized["visits"].to_numpy()
    exposed, opted = flags[EXPOSURE].to_numpy(), flags[OPT_OUT].to_numpy()
    has = {o.id: flags[o.event].to_numpy() for o in outcomes}
    any_outcome = np.zeros(len(randomized), dtype="int64")
    for value in has.values():
        any_outcome |= value
    data: dict[str, object] = {key: randomized[key] for key in ("arm", "location", "language")}
    hours = randomized["hour_start"].cat
    derived = [time_keys(value) for value in hours.categories]
    for i, key in enumerate(("week", "hour", "weekday")):
        texts = [keys[i] for keys in derived]
        data[key] = pd.Categorical(np.array(texts, dtype=object)[hours.codes.to_numpy()])
    data["n"] = visits_
    data["opted_out"] = visits_ * opted
    data["exposed"] = visits_ * exposed
    data["opted_out_with_outcome"] = visits_ * (opted & any_outcome)
    for o in outcomes:
        data[outcome_column(o.id)] = visits_ * ((1 - opted) & has[o.id])
        data[unexposed_column(o.id)] = visits_ * ((1 - opted) & (1 - exposed) & has[o.id])
    frame = pd.DataFrame(data)
    return (
        frame.groupby(list(KEY_COLUMNS), observed=True, sort=False)[count_columns(outcomes)]
        .sum()
        .reset_index()
    )


def counts_from_frame(
    trial_id: str, outcomes: Sequence[OutcomeSpec], frame: pd.DataFrame, source: str
) -> Counts:
    """Normalise a cell table once and hash exactly the normalised cells."""
    cells = normalise_cells(frame, outcomes)
    return Counts(trial_id, tuple(outcomes), cells, source, _canonical_hash(cells))


#: Rows fetched from the database at a time by :func:`load_counts`.
FETCH_ROWS = 50_000


def itt_frame(engine: Engine, trial_id: str, outcomes: Sequence[OutcomeSpec]) -> pd.DataFrame:
    """The ITT dataset as a DataFrame, one row per randomized visit (for small trials).

    Outcome columns are named after the outcome ids and are 0 for opted-out visits, which the
    analysis excludes. Use :func:`load_counts` for anything large.
    """
    with engine.begin() as conn:
        utc_session(conn)
        result = conn.execute(itt_query(trial_id, outcomes, conn.dialect.name))
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for o in outcomes:
        frame[o.id] = frame.pop(f"f_{o.id}").astype("int64") * (1 - frame["opted_out"])
    return frame


def normalise_cells(frame: pd.DataFrame, outcomes: Sequence[OutcomeSpec]) -> pd.DataFrame:
    """Give a cell table fixed column order, text keys, integer counts and a stable sort.

    Key columns become categoricals whose categories are the key texts in sorted order (one
    small integer code per cell instead of one Python string per cell and key), so sorting by
    them sorts by the text, and ``==``, ``set()`` and ``groupby`` see the texts.
    """
    columns = count_columns(outcomes)
    data: dict[str, object] = {}
    for key in KEY_COLUMNS:
        if key in frame:
            data[key] = _key_categorical(frame[key])
        else:
            data[key] = pd.Categorical.from_codes(
                np.zeros(len(frame), dtype="int8"), categories=[MERGED]
            )
    for column in columns:
        values = frame[column] if column in frame else pd.Series(0, index=frame.index)
        data[column] = pd.to_numeric(values).fillna(0).to_numpy("int64")
    cells = pd.DataFrame(data)
    return cells.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)


def _key_categorical(values: pd.Series) -> pd.Categorical:
    """Key values as a categorical of their texts (:func:`_key_text`), categories sorted."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        uniques = list(values.cat.categories)
    else:
        codes, found = pd.factorize(values.to_numpy(dtype=object), use_na_sentinel=True)
        uniques = list(found)
    texts = [_key_text(value) for value in uniques]
    if (codes < 0).any():
        texts.append(MERGED)  # code -1 (missing) indexes the last text
    categories = sorted(set(texts))
    position = {text: i for i, text in enumerate(categories)}
    lookup = np.array([position[text] for text in texts] or [0], dtype="int64")
    return pd.Categorical.from_codes(lookup[codes], categories=pd.Index(categories, dtype=object))


def _plain_index(table: pd.DataFrame) -> pd.DataFrame:
    """Replace categorical index levels (from categorical keys) by plain text levels."""
    index = table.index
    if isinstance(index, pd.MultiIndex):
        if any(isinstance(level, pd.CategoricalIndex) for level in index.levels):
            table.index = pd.MultiIndex.from_arrays(
                [index.get_level_values(i).astype(str) for i in range(index.nlevels)],
                names=index.names,
            )
    elif isinstance(index, pd.CategoricalIndex):
        table.index = index.astype(str)
    return table


def _key_text(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return MERGED
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cells_hash(cells: pd.DataFrame, outcomes: Sequence[OutcomeSpec]) -> str:
    """SHA-256 of the cells as canonical CSV (sorted, ``\\n`` line ends, no index).

    Recompute by hand: sort the cell table by the key columns and hash
    ``cells.to_csv(index=False, lineterminator="\\n")``. The CSV is hashed in slices of
    :data:`HASH_ROWS` rows, which gives the same bytes without holding the whole text.
    """
    return _canonical_hash(normalise_cells(cells, outcomes))


def _canonical_hash(canonical: pd.DataFrame) -> str:
    """SHA-256 of an already normalised cell table's CSV, in slices of :data:`HASH_ROWS`."""
    digest = hashlib.sha256()
    for start in range(0, max(len(canonical), 1), HASH_ROWS):
        piece = canonical.iloc[start : start + HASH_ROWS]
        digest.update(piece.to_csv(index=False, header=start == 0, lineterminator="\n").encode())
    return digest.hexdigest()


#: Rows of canonical CSV produced at a time by :func:`cells_hash`.
HASH_ROWS = 20_000
