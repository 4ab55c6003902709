"""``media.csv`` of the export: the pictures and narrations of each arm, per trial version.

One row per picture and per narration (one per language) of each arm, for every version of the
trial file that visitors met: the locked version from the start, then each amendment's version
from its time. ``sha256`` pins the exact bytes (the material version each exposure records
hashes them too), so with ``in_use_from``/``in_use_until`` the file says exactly which picture
and which sound a visitor of an arm met in a given week. An arm without media has one row with
``media`` ``none``. Columns: ``version, in_use_from, in_use_until, arm, media, file, sha256,
kind, languages`` (``kind``: the picture's kind or the narration's voice; ``languages``: those
with alt text, or the narration's language).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from experiments.model import Arm, Trial
from experiments.store import StoredTrialError, TrialHistory, parse_trial

MEDIA_FILE = "media.csv"
MEDIA_COLUMNS = (
    "version",
    "in_use_from",
    "in_use_until",
    "arm",
    "media",
    "file",
    "sha256",
    "kind",
    "languages",
)


@dataclass(frozen=True)
class Period:
    """A version of the trial file and when visitors met it (None: not known, or still)."""

    version: str
    start: datetime | None
    end: datetime | None


def periods(record: TrialHistory) -> list[Period]:
    """The versions visitors met, oldest first: the locked one, then each amendment's."""
    if record.locked_version is None:
        return [Period(record.current_version, None, None)] if record.current_version else []
    starts = [(record.locked_version, record.locked_at)]
    starts += [(a.version, a.amended_at) for a in record.amendments]
    ends = [start for _, start in starts[1:]] + [record.stopped_at]
    return [Period(v, s, e) for (v, s), e in zip(starts, ends, strict=True)]


def arm_media(arm: Arm) -> list[dict[str, str]]:
    """The rows of one arm's pictures and narrations (``none`` when it has neither)."""
    rows = [
        {
            "media": "picture",
            "file": image.file,
            "sha256": image.sha256 or "",
            "kind": image.kind,
            "languages": " ".join(sorted(image.alt)),
        }
        for image in arm.images
    ]
    rows += [
        {
            "media": "narration",
            "file": narration.file,
            "sha256": narration.sha256 or "",
            "kind": narration.voice,
            "languages": language,
        }
        for language, narration in sorted(arm.audio.items())
    ]
    return rows or [{"media": "none", "file": "", "sha256": "", "kind": "", "languages": ""}]


def _trial_of(record: TrialHistory, version: str, current: Trial) -> Trial | None:
    source = record.version_sources.get(version)
    if source is None:
        return current if version == record.current_version else None
    try:
        return parse_trial(source)
    except StoredTrialError:
        return None


def _time(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def media_rows(record: TrialHistory, trial: Trial) -> list[dict[str, str]]:
    """Every row of ``media.csv`` (``trial``: the current version, for a trial never started)."""
    rows = []
    for period in periods(record):
        shown = _trial_of(record, period.version, trial)
        base = {
            "version": period.version,
            "in_use_from": _time(period.start),
            "in_use_until": _time(period.end),
        }
        if shown is None:
            rows.append({**base, "arm": "", "media": "version not stored"})
            continue
        for arm in shown.arms:
            rows += [{**base, "arm": arm.id, **item} for item in arm_media(arm)]
    return rows


def write_media(path: Path, record: TrialHistory, trial: Trial) -> Path:
    """Write ``media.csv`` to ``path``."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MEDIA_COLUMNS, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(media_rows(record, trial))
    return path
