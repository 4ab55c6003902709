"""The rule registry: the check's settings, the context a rule reads, and ``@rule``.

Rule modules import this module (never the package), so registering a rule creates no import
circle; :mod:`experiments.rules` imports the rule modules in their fixed order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from experiments.media import MediaSource
from experiments.model import Trial
from experiments.problems import LineMap, Path, Problem


@dataclass(frozen=True)
class Settings:
    """Thresholds of the check (``nudgelab check --max-age-days ... --max-mde ...``)."""

    today: date
    max_age_days: int = 365
    max_mde_points: float = 5.0
    small_count: int = 10
    #: Largest image and narration files, in bytes (``docs/trial-format.md#media``).
    max_image_bytes: int = 500_000
    max_audio_bytes: int = 2_000_000
    #: Longest side of a raster image, in pixels.
    max_image_pixels: int = 4000
    #: The platform's public address (``NUDGELAB_PUBLIC_URL``), which makes a relative
    #: ``register_url`` an address a visitor can look up elsewhere.
    public_url: str | None = field(
        default_factory=lambda: os.environ.get("NUDGELAB_PUBLIC_URL") or None
    )


@dataclass(frozen=True)
class Context:
    """What a rule reads: the trial, where its lines are, and the check's thresholds."""

    trial: Trial
    file: str
    lines: LineMap
    settings: Settings
    #: Where the media files are read from (the file's folder, or a stored version's
    #: archive); None when there is nowhere to read them.
    media: MediaSource | None = None

    def problem(
        self,
        path: Path,
        message: str,
        rule: str,
        severity: Literal["error", "warning"] = "error",
        *,
        key: bool = False,
    ) -> Problem:
        return Problem(self.file, self.lines.line(path, key=key), path, message, severity, rule)


RuleFunction = Callable[[Context], Iterator[Problem]]


@dataclass(frozen=True)
class Rule:
    """A registered rule: its id, the summary listed in the docs, and its function."""

    id: str
    summary: str
    check: RuleFunction


RULES: list[Rule] = []


def rule(rule_id: str, summary: str) -> Callable[[RuleFunction], RuleFunction]:
    """Register a rule function under ``rule_id``."""

    def register(function: RuleFunction) -> RuleFunction:
        RULES.append(Rule(rule_id, summary, function))
        return function

    return register
