"""The export file: cell counts safe to share, and enough metadata to re-run the analysis.

Format ``nudgelab-export/1``: a CSV file whose first two lines are comments, the format name
and one line of JSON metadata (trial id, outcomes, lock, looks, data-quality counts, what was
suppressed), followed by the table ``arm,location,language,week,n,opted_out,exposed,
outcome_<id>…``. Times are rounded to the ISO week (``week`` is its Monday).

Small cells (``docs/ethics.md``, "Exports and retention"): in every row, ``n`` and every count
and its complement (visits without the event) must be 0 or at least the threshold (default 10).
Rows that break the rule are merged step by step, first over weeks, then languages, then
locations (the merged value is ``*``); rows stay disjoint, so per-arm totals are exact. A count
that is still small after merging everything but the arm is left empty and listed in
``suppressed``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine

from analysis.checks import Quality, read_quality
from analysis.counts import (
    MERGED,
    Counts,
    OutcomeSpec,
    counts_from_frame,
    load_counts,
    outcome_column,
)
from analysis.preregistered import outcome_specs, preregistered_trial
from analysis.staff_names import StaffNames, staff_names
from experiments.model import Trial
from experiments.store import TrialHistory, read_audit, read_history, record_look
from experiments.store.audit import AuditEntry

FORMAT = "nudgelab-export/1"
EXPORT_KEYS = ("arm", "location", "language", "week")
MERGE_ORDER = ("week", "language", "location")


class ExportError(ValueError):
    """The file is not a nudgelab export or does not match the trial."""


@dataclass(frozen=True)
class Exported:
    """An export read back: counts to analyse, and the event-log facts stored with them."""

    counts: Counts
    record: TrialHistory
    quality: Quality
    suppressed: dict[str, list[str]]  # column -> arms whose value was left empty
    meta: dict[str, Any]


def _columns(outcomes: Sequence[OutcomeSpec]) -> list[str]:
    return ["n", "opted_out", "exposed", *(outcome_column(o.id) for o in outcomes)]


def _small(frame: pd.DataFrame, outcomes: Sequence[OutcomeSpec], k: int) -> pd.DataFrame:
    """Boolean frame: which count of which row lies in 1 … k-1 (counting complements too)."""

    def small(values: pd.Series) -> pd.Series:
        return (values > 0) & (values < k)

    analysed = frame["n"] - frame["opted_out"]
    flags = {
        "n": small(frame["n"]),
        "opted_out": small(frame["opted_out"]) | small(analysed),
        "exposed": small(frame["exposed"]) | small(frame["n"] - frame["exposed"]),
    }
    for o in outcomes:
        column = outcome_column(o.id)
        flags[column] = small(frame[column]) | small(analysed - frame[column])
    return pd.DataFrame(flags)


def coarsen(
    cells: pd.DataFrame, outcomes: Sequence[OutcomeSpec], threshold: int = 10
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Merge small cells as described in the module docstring; return the table and gaps."""
    merged = merge_cells(cells, outcomes, threshold)
    return merged.table, merged.suppressed


@dataclass(frozen=True)
class MergedCells:
    """The export's table, and where each original cell went (for the visit-level file).

    ``keys`` has one row per original ``arm, location, language, week`` cell: those four
    columns, then ``to_location``, ``to_language``, ``to_week`` (its row of ``table``; the arm
    never changes). ``blanked`` names, per count column, the rows of ``table`` (by their keys)
    whose value was left empty.
    """

    table: pd.DataFrame
    suppressed: dict[str, list[str]]
    keys: pd.DataFrame
    blanked: dict[str, pd.MultiIndex]


def merge_cells(
    cells: pd.DataFrame, outcomes: Sequence[OutcomeSpec], threshold: int = 10
) -> MergedCells:
    """:func:`coarsen`, keeping the map from each original cell to its merged row."""
    columns = _columns(outcomes)
    keys = list(EXPORT_KEYS)
    base = cells.groupby(keys, as_index=False, observed=True)[columns].sum()
    base[keys] = base[keys].astype(str)  # plain text keys (the cells' may be categorical)
    labels = base[keys].copy()  # the merged row each original cell belongs to, step by step

    def regroup() -> pd.DataFrame:
        return base[columns].groupby([labels[key] for key in keys]).sum().reset_index()

    def relabel(rows: pd.DataFrame, **values: str) -> None:
        hit = pd.MultiIndex.from_frame(labels).isin(pd.MultiIndex.from_frame(rows[keys]))
        for key, value in values.items():
            labels.loc[hit, key] = value

    frame = regroup()
    for level in MERGE_ORDER:
        bad = _small(frame, outcomes, threshold).any(axis=1)
        if not bad.any():
            break
        relabel(frame[bad], **{level: MERGED})
        frame = regroup()
    frame = _absorb_remainders(frame, outcomes, threshold, regroup, relabel)
    flags = _small(frame, outcomes, threshold)
    suppressed: dict[str, list[str]] = {}
    blanked: dict[str, pd.MultiIndex] = {}
    frame = frame.astype({column: "Int64" for column in columns})
    for column in columns:
        if flags[column].any():
            suppressed[column] = sorted(frame.loc[flags[column], "arm"].unique().tolist())
            blanked[column] = pd.MultiIndex.from_frame(frame.loc[flags[column], keys])
            frame.loc[flags[column], column] = pd.NA
    mapping = pd.concat(
        [base[keys], labels[list(MERGE_ORDER)].add_prefix("to_")], axis=1
    ).reset_index(drop=True)
    table = frame.sort_values(keys).reset_index(drop=True)
    return MergedCells(table, suppressed, mapping, blanked)


def _fully_merged(frame: pd.DataFrame) -> pd.Series:
    return (frame["week"] == MERGED) & (frame["language"] == MERGED) & (
        frame["location"] == MERGED
    )


def _absorb_remainders(
    frame: pd.DataFrame,
    outcomes: Sequence[OutcomeSpec],
    threshold: int,
    regroup: Callable[[], pd.DataFrame],
    relabel: Callable[..., None],
) -> pd.DataFrame:
    """Fold an arm's smallest rows into its fully merged row until that row is no longer small."""
    for arm in frame.loc[_fully_merged(frame), "arm"].tolist():
        while True:
            mine = frame["arm"] == arm
            row = frame[mine & _fully_merged(frame)]
            others = frame[mine & ~_fully_merged(frame)]
            if others.empty or not _small(row, outcomes, threshold).to_numpy().any():
                break
            smallest = others.loc[[others["n"].idxmin()]]
            relabel(smallest, location=MERGED, language=MERGED, week=MERGED)
            frame = regroup()
    return frame


def write_export(
    path: str | Path,
    counts: Counts,
    record: TrialHistory,
    quality: Quality,
    *,
    threshold: int = 10,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Write the export file; return its metadata. ``record`` should name staff by pseudonyms
    (:meth:`analysis.staff_names.StaffNames.history`), as :func:`export_trial` does."""
    table, suppressed = coarsen(counts.cells, counts.outcomes, threshold)
    meta = {
        "format": FORMAT,
        "trial_id": counts.trial_id,
        "exported_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "threshold": threshold,
        "time_unit": "ISO week (Monday), UTC",
        "outcomes": [{"id": o.id, "event": o.event} for o in counts.outcomes],
        "source_data_hash": counts.data_hash,
        "suppressed": suppressed,
        "record": record.to_dict(),
        "quality": quality.to_dict(),
    }
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(f"# {FORMAT}\n# {json.dumps(meta, ensure_ascii=False)}\n")
        table.to_csv(handle, index=False, lineterminator="\n")
    return meta


def read_export(path: str | Path, trial_id: str | None = None) -> Exported:
    """Read an export file written by :func:`write_export`."""
    with open(path, encoding="utf-8") as handle:
        first, second = handle.readline().strip(), handle.readline().strip()
        if first != f"# {FORMAT}" or not second.startswith("# {"):
            raise ExportError(f"{path} is not a {FORMAT} file")
        meta = json.loads(second[2:])
        table = pd.read_csv(
            handle,
            dtype={key: str for key in EXPORT_KEYS},
            keep_default_na=False,
            na_values={c: [""] for c in ("n", "opted_out", "exposed")},
        )
    if trial_id is not None and meta["trial_id"] != trial_id:
        raise ExportError(f"{path} holds trial {meta['trial_id']!r}, not {trial_id!r}")
    outcomes = tuple(OutcomeSpec(o["id"], o["event"]) for o in meta["outcomes"])
    suppressed = {key: list(value) for key, value in meta["suppressed"].items()}
    for column in _columns(outcomes):
        table[column] = pd.to_numeric(table[column].replace("", pd.NA))
        blank = sorted(table.loc[table[column].isna(), "arm"].unique().tolist())
        if blank:  # a blank is unknown, never 0: record it even if the metadata does not
            suppressed[column] = sorted({*suppressed.get(column, []), *blank})
    counts = counts_from_frame(meta["trial_id"], outcomes, table, "export")
    return Exported(
        counts,
        TrialHistory.from_dict(meta["record"]),
        Quality.from_dict(meta["quality"]),
        suppressed,
        meta,
    )


def export_trial(
    trial: Trial,
    engine: Engine,
    path: str | Path,
    *,
    threshold: int = 10,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Count the trial in the database and write its export; the export counts as a look."""
    now = now or datetime.now(UTC)
    with engine.begin() as conn:
        read = read_for_export(conn, trial, now)
    return write_export(path, read.counts, read.record, read.quality, threshold=threshold, now=now)


@dataclass(frozen=True)
class ExportRead:
    """What every export reads of a trial, in one transaction that also records the look.

    ``record`` already lists this export among its looks and names staff by pseudonym;
    ``audit`` holds the trial's audit entries as stored (pseudonymise with ``names``).
    """

    record: TrialHistory
    specs: tuple[OutcomeSpec, ...]
    counts: Counts
    quality: Quality
    audit: tuple[AuditEntry, ...]
    names: StaffNames


def read_for_export(conn: Connection, trial: Trial, now: datetime) -> ExportRead:
    """Read the trial's history, counts, quality and audit log, and record the export as a
    look at ``now`` (raises :class:`ExportError` for a trial not in the database)."""
    record = read_history(conn, trial.id)
    if record.status is None:
        raise ExportError(f"trial {trial.id!r} is not in this database")
    specs = tuple(outcome_specs(preregistered_trial(record, trial), trial))
    counts = load_counts(conn, trial.id, specs)
    quality = read_quality(conn, trial, counts)
    audit = tuple(read_audit(conn, trial.id))
    names = staff_names(conn, audit, record.amendments)
    record_look(conn, trial.id, counts.data_hash, now, kind="export")
    record = names.history(replace(record, looks=(*record.looks, now)))
    return ExportRead(record, specs, counts, quality, audit, names)
