"""How the console reaches reports and exports without importing ``analysis``.

The app computes no statistics (the import contracts forbid it), so the composition root
(:mod:`nudgelab.results`) passes :class:`ResultSources`, two callables built on ``analysis``,
to :func:`app.create_app`. An app built without them (``create_app()`` alone, e.g. in a test
of the kiosk) shows the console's result pages as unavailable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy import Engine

RESULTS_KEY = "nudgelab.results"
#: The audit action of an interim look taken in the console (its detail holds the reason).
LOOK_ACTION = "trial.look"


@dataclass(frozen=True)
class ResultSources:
    """``report(engine, trial_id, look_reason)``: the report's HTML page (``look_reason``: why
    this interim look at a running trial was asked for, quoted in the report's Warnings; None
    after close); ``export(engine, trial_id)``: a file name and its bytes (a zip of the export
    files). Each call counts as one look at the results, recorded by ``analysis``."""

    report: Callable[[Engine, str, str | None], str]
    export: Callable[[Engine, str], tuple[str, bytes]]


def init_app(app: Flask, sources: ResultSources | None) -> None:
    app.extensions[RESULTS_KEY] = sources


def result_sources() -> ResultSources | None:
    """The app's result sources, or None when it was built without them."""
    return current_app.extensions.get(RESULTS_KEY)
