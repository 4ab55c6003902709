"""The visit-level export: one row per randomized visit, coarsened like the count export, and
its codebook.

``visits.csv`` has the columns ``arm, location, language, week, opted_out, exposed,
outcome_<id>…``: no visit id, no time finer than the ISO week, rows sorted by their values (so
the order says nothing about when a visit happened). Each visit carries the keys of the row of
the count export (:func:`analysis.export.merge_cells`) that its cell was merged into, so the
visit file grouped by ``arm, location, language, week`` is exactly the count export; a count
the count export leaves empty (still small after merging everything but the arm) is empty for
every visit of that row here. Per-arm totals therefore equal the report's.

``codebook.csv`` has one row per column of ``visits.csv``: ``variable, type, allowed_values,
meaning, trial_id, locked_version``. ``type`` is a pandas dtype, so
``pd.read_csv("visits.csv", dtype=dict(zip(codebook.variable, codebook.type)))`` reads the file
with the right types (empty = unknown).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, func, select

from analysis.counts import MERGED, OutcomeSpec, itt_query, outcome_column, utc_session
from analysis.export import EXPORT_KEYS, MergedCells
from experiments.model import Trial

VISITS_FILE = "visits.csv"
CODEBOOK_FILE = "codebook.csv"
CODEBOOK_COLUMNS = ("variable", "type", "allowed_values", "meaning", "trial_id", "locked_version")


def read_visit_rows(
    conn: Connection, trial_id: str, outcomes: Sequence[OutcomeSpec]
) -> pd.DataFrame:
    """One row per randomized visit: keys (week as its Monday), opted_out, exposed and one 0/1
    column per outcome (0 for a visit that opted out, as the analysis counts it).

    The database counts the visits per combination of these values (a visit row has nothing
    else), and each combination is repeated as often as it occurs: a trial of a million visits
    arrives as a few thousand rows.
    """
    utc_session(conn)
    itt = itt_query(trial_id, outcomes, conn.dialect.name).subquery("itt")
    values = [itt.c[key] for key in EXPORT_KEYS]
    values += [itt.c.opted_out, itt.c.exposed, *(itt.c[f"f_{o.id}"] for o in outcomes)]
    grouped = select(*values, func.count().label("visits")).group_by(*values)
    result = conn.execute(grouped)
    combos = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    repeat = combos.index.repeat(combos["visits"].astype("int64"))
    raw = combos.loc[repeat].reset_index(drop=True)
    frame = raw[list(EXPORT_KEYS)].astype(str)
    opted = raw["opted_out"].astype("int64")
    frame["opted_out"] = opted
    frame["exposed"] = raw["exposed"].astype("int64")
    for outcome in outcomes:
        frame[outcome_column(outcome.id)] = raw[f"f_{outcome.id}"].astype("int64") * (1 - opted)
    return frame


def coarsen_visits(
    rows: pd.DataFrame, merged: MergedCells, outcomes: Sequence[OutcomeSpec]
) -> pd.DataFrame:
    """The visit rows with the merged keys of their count-export row and its empty counts."""
    keys = list(EXPORT_KEYS)
    joined = rows.merge(merged.keys, on=keys, how="left", validate="many_to_one")
    if joined["to_week"].isna().any():
        raise ValueError("visits whose cell is not in the count export (read in one transaction)")
    for key in ("location", "language", "week"):
        joined[key] = joined.pop(f"to_{key}")
    columns = ["opted_out", "exposed", *(outcome_column(o.id) for o in outcomes)]
    table = joined[keys + columns].astype({column: "Int64" for column in columns})
    place = pd.MultiIndex.from_frame(table[keys])
    for column, rows_blanked in merged.blanked.items():
        if column in table:
            table.loc[place.isin(rows_blanked), column] = pd.NA
    return table.sort_values(keys + columns, na_position="last").reset_index(drop=True)


@dataclass(frozen=True)
class Variable:
    """One row of the codebook."""

    variable: str
    type: str
    allowed_values: str
    meaning: str


def codebook(
    trial: Trial, outcomes: Sequence[OutcomeSpec], arms: Sequence[str] = ()
) -> list[Variable]:
    """The variables of ``visits.csv``, in its column order; ``arms``: arm ids found in the
    data besides the trial's (e.g. an arm dropped after the lock)."""
    arm_ids = [arm.id for arm in trial.arms]
    arm_ids += [arm for arm in arms if arm not in arm_ids]
    merged = f"or {MERGED} (merged with others: small cells)"
    flag = "0 | 1"
    primary = {o.id for o in trial.outcomes if o.primary}
    described = {o.id: o.description for o in trial.outcomes}
    rows = [
        Variable(
            "arm",
            "string",
            " | ".join(arm_ids),
            "the arm the visit was randomized to (analysed in it whatever it saw: "
            "intention to treat); its pictures and narrations, per version of the trial file, "
            "are in media.csv",
        ),
        Variable(
            "location",
            "string",
            " | ".join(trial.location_ids) + f" {merged}",
            "the location of the kiosk",
        ),
        Variable(
            "language",
            "string",
            " | ".join(trial.languages) + f" {merged}",
            "the language the visit started in",
        ),
        Variable(
            "week",
            "string",
            f"YYYY-MM-DD {merged}",
            "Monday of the ISO week (UTC) in which the visit started",
        ),
        Variable(
            "opted_out",
            "Int64",
            flag,
            "1: the visitor chose not to let the visit be used; it is left out of every "
            "outcome analysis and its outcome events were deleted",
        ),
        Variable(
            "exposed",
            "Int64",
            flag,
            "1: the kiosk showed the visit its assigned material",
        ),
    ]
    for outcome in outcomes:
        role = "primary outcome" if outcome.id in primary else "secondary outcome"
        meaning = described.get(outcome.id, "an outcome added after pre-registration")
        rows.append(
            Variable(
                outcome_column(outcome.id),
                "Int64",
                f"{flag}; empty: left out (small cell)",
                f"{role} {outcome.id} (event {outcome.event}): 1 when the visit logged it; "
                f"0 for an opted-out visit. {meaning}",
            )
        )
    return rows


def write_visit_files(
    directory: str | Path,
    rows: pd.DataFrame,
    merged: MergedCells,
    trial: Trial,
    outcomes: Sequence[OutcomeSpec],
    locked_version: str | None,
) -> tuple[Path, Path]:
    """Write ``visits.csv`` and ``codebook.csv`` into ``directory``; return their paths."""
    folder = Path(directory)
    visits_path, codebook_path = folder / VISITS_FILE, folder / CODEBOOK_FILE
    table = coarsen_visits(rows, merged, outcomes)
    table.to_csv(visits_path, index=False, lineterminator="\n")
    book = pd.DataFrame(
        [
            {**vars(variable), "trial_id": trial.id, "locked_version": locked_version or ""}
            for variable in codebook(trial, outcomes, sorted(set(table["arm"])))
        ],
        columns=list(CODEBOOK_COLUMNS),
    )
    book.to_csv(codebook_path, index=False, lineterminator="\n")
    return visits_path, codebook_path
