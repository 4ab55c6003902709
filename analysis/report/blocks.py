"""A tiny document model shared by the Markdown and HTML writers, and number formatting.

Sections build lists of blocks; writers only turn blocks into text. Content and order live in
one place (:mod:`analysis.report.sections`), so the writers cannot differ in what they show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class Paragraph:
    text: str
    tone: Literal["plain", "note", "warning", "alarm"] = "plain"


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class FigureRef:
    key: str  # "flow" or "forest"
    caption: str
    alt: str


@dataclass(frozen=True)
class Quote:
    """Verbatim text shown to visitors, in its language (writers set the text direction)."""

    text: str
    language: str
    label: str = ""


@dataclass(frozen=True)
class Picture:
    """A picture an arm showed, embedded from the stored trial version (nothing is fetched).

    ``data`` is the file in base64, empty when the version's bytes are not stored."""

    media_type: str
    data: str
    alt: str
    caption: str


Block = Heading | Paragraph | Table | Bullets | FigureRef | Quote | Picture


# -- numbers as people read them ---------------------------------------------------------------


def missing(value: float | None) -> bool:
    """True for ``None``, NaN and infinities."""
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def percent(value: float | None, digits: int = 2) -> str:
    """A proportion as a percentage."""
    return "–" if missing(value) else f"{value * 100:.{digits}f}%"  # type: ignore[operator]


def points(value: float | None, digits: int = 2) -> str:
    """A difference of proportions in percentage points, signed."""
    return "–" if missing(value) else f"{value * 100:+.{digits}f} pp"  # type: ignore[operator]


def interval(low: float | None, high: float | None, scale: float = 100, digits: int = 2) -> str:
    """``[low, high]`` scaled (percent by default)."""
    if missing(low) or missing(high):
        return "–"
    return f"[{low * scale:.{digits}f}, {high * scale:.{digits}f}]"  # type: ignore[operator]


def ratio(value: float | None, low: float | None, high: float | None) -> str:
    """A ratio with its interval."""
    if missing(value):
        return "–"
    return f"{value:.3f} {interval(low, high, 1, 3)}"


def p_value(value: float | None) -> str:
    """A p-value: 4 decimals, or scientific below 0.0001."""
    if missing(value):
        return "–"
    if value < 1e-4:  # type: ignore[operator]
        return f"{value:.1e}"
    return f"{value:.4f}"


def statistic(value: float | None, digits: int = 3) -> str:
    """A test statistic."""
    return "–" if missing(value) else f"{value:.{digits}f}"


def number(value: float | int | None) -> str:
    """A count or size with thousands separators."""
    if missing(value):  # type: ignore[arg-type]
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"  # type: ignore[arg-type]


def small(value: int | None, threshold: int) -> str:
    """A count in a table by location, language or time: 1 … threshold-1 shown as ``<threshold``."""
    if value is None:
        return "–"
    return f"<{threshold}" if 0 < value < threshold else f"{value:,}"
