"""The evaluation side of nudgelab: from the event log (or an export) to a :class:`Report`.

>>> from analysis.report import render_summary                   # doctest: +SKIP
>>> report = analyze(trial, "sqlite:///instance/nudgelab.db")   # doctest: +SKIP
>>> print(render_summary(report))                                # doctest: +SKIP

Heavy modules (pandas, statsmodels) are imported inside :func:`analyze`, so importing a
submodule such as :mod:`analysis.counts` stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.choices import Choices
from analysis.errors import AnalysisError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from analysis.results import Report
    from experiments.model import Trial

__all__ = ["AnalysisError", "Choices", "analyze"]


def analyze(
    trial: Trial,
    engine_or_url: Engine | str | None = None,
    *,
    export: str | Path | None = None,
    correction: str | None = None,
    alpha: float | None = None,
    interval: str = "newcombe",
    adjustment: str = "lpm",
    small_cell_threshold: int = 10,
    record_look: bool = True,
    progress: Callable[[str], None] | None = None,
    now: datetime | None = None,
) -> Report:
    """Analyse ``trial`` from a database (URL or engine) or from an ``export`` file.

    ``correction`` and ``alpha`` default to the pre-registered plan; any other value is listed
    as a deviation. Each run on a database counts as one look at the results (``result_looks``)
    unless ``record_look`` is false (tests only: the report then says the look was not counted).
    """
    # pandas, scipy and statsmodels deferred on purpose: `import analysis` stays cheap.
    from analysis.pipeline import Inputs, build_report, read_database, read_exported

    step = progress or (lambda _message: None)
    now = now or datetime.now(UTC)
    if (engine_or_url is None) == (export is None):
        raise AnalysisError("give either a database (engine or URL) or an export file")
    inputs: Inputs
    if export is not None:
        inputs = read_exported(trial, export, step)
    else:
        inputs = read_database(trial, engine_or_url, step, record_look=record_look, now=now)
    choices = Choices(correction, alpha, interval, adjustment, small_cell_threshold)
    return build_report(trial, inputs, choices, step, now)
