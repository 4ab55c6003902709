"""The choices a caller makes for one analysis run (the options of :func:`analysis.analyze`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Choices:
    """Options of one analysis run; ``None`` means the pre-registered plan's value.

    Any value that differs from the plan (or from the documented default, for ``interval`` and
    ``adjustment``) is listed in the report as a deviation.
    """

    correction: str | None = None
    alpha: float | None = None
    interval: str = "newcombe"
    adjustment: str = "lpm"
    small_cell_threshold: int = 10
