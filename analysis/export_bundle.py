"""The full export of a trial, as a folder: the count export, the visit-level file with its
codebook, and the trial's audit log, read in one transaction and counted as one look.

- ``counts.csv``: the ``nudgelab-export/1`` file of ``nudgelab export`` (:mod:`analysis.export`);
- ``visits.csv`` and ``codebook.csv``: :mod:`analysis.visit_export`, merged like ``counts.csv``;
- ``audit.csv``: every recorded change to the trial (who, what, when, from which interface);
- ``media.csv``: the pictures and narrations of each arm in every version visitors met
  (:mod:`analysis.media_export`).

Staff are named by pseudonyms ("staff 1 (researcher)", :mod:`analysis.staff_names`) in every
file, the same in ``audit.csv`` and in the amendments of ``counts.csv``: no e-mail address of
an account leaves the console in an export.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from analysis.export import merge_cells, read_for_export, write_export
from analysis.media_export import MEDIA_FILE, write_media
from analysis.visit_export import read_visit_rows, write_visit_files
from experiments.model import Trial
from experiments.store.audit import AuditEntry

COUNTS_FILE = "counts.csv"
AUDIT_FILE = "audit.csv"
AUDIT_COLUMNS = ("at", "actor", "interface", "action", "target", "detail")


@dataclass(frozen=True)
class Bundle:
    """The files written and the count export's metadata."""

    files: tuple[Path, ...]
    meta: dict[str, Any]


def export_bundle(
    trial: Trial,
    engine: Engine,
    directory: str | Path,
    *,
    threshold: int = 10,
    now: datetime | None = None,
) -> Bundle:
    """Write the trial's export files into ``directory``; the export counts as one look."""
    now = now or datetime.now(UTC)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    with engine.begin() as conn:
        read = read_for_export(conn, trial, now)
        rows = read_visit_rows(conn, trial.id, read.specs)
    record, counts = read.record, read.counts
    entries = tuple(read.names.entry(entry) for entry in read.audit)
    counts_path = folder / COUNTS_FILE
    meta = write_export(counts_path, counts, record, read.quality, threshold=threshold, now=now)
    merged = merge_cells(counts.cells, counts.outcomes, threshold)
    visits_path, codebook_path = write_visit_files(
        folder, rows, merged, trial, counts.outcomes, record.locked_version
    )
    audit_path = folder / AUDIT_FILE
    write_audit(audit_path, entries)
    media_path = write_media(folder / MEDIA_FILE, record, trial)
    return Bundle((counts_path, visits_path, codebook_path, audit_path, media_path), meta)


def write_audit(path: Path, entries: tuple[AuditEntry, ...]) -> None:
    """The trial's audit entries as CSV, oldest first (times in UTC, ISO 8601); pass them
    pseudonymised (:meth:`analysis.staff_names.StaffNames.entry`)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(AUDIT_COLUMNS)
        for entry in entries:
            writer.writerow(
                [
                    entry.at.isoformat(timespec="seconds"),
                    entry.actor,
                    entry.interface,
                    entry.action,
                    entry.target or "",
                    entry.detail or "",
                ]
            )
