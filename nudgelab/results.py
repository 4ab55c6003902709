"""The console's reports and exports: ``analysis`` wired into the app by the composition root.

``app`` never imports ``analysis`` (the kiosk computes no statistics). The console gets the two
things it needs from the statistics, the report's HTML and the export files, as callables that
this module builds on ``analysis`` and passes to :func:`app.create_app`
(:class:`app.console.results.ResultSources`). Each is computed on request from the event log,
so a download is always current and, like ``nudgelab analyze`` and ``nudgelab export``, counts
as one recorded look at the results.

``analysis`` (pandas, scipy, statsmodels, matplotlib) is imported inside the two callables, at
the first report or export a worker makes, not when ``nudgelab serve`` starts a worker: most
workers only ever serve kiosks. Staff are named by pseudonyms in reports, as in exports
(:mod:`analysis.staff_names`).
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from flask import Flask
from sqlalchemy import Engine

from app import create_app
from app.console.results import LOOK_ACTION, ResultSources
from experiments.lifecycle import open_trial
from experiments.store import read_audit


def report_html(engine: Engine, trial_id: str, look_reason: str | None = None) -> str:
    """The trial's report as one HTML page (figures embedded); records a look.

    ``look_reason``: why this look at a running trial was asked for. The report's Warnings
    quote it, and the reasons of the earlier interim looks taken in the console (kept in the
    audit log as ``trial.look``), naming who looked by their pseudonym.
    """
    from analysis import analyze  # deferred: see the module's docstring
    from analysis.report import render_figures, render_html
    from analysis.staff_names import staff_names

    opened = open_trial(trial_id, engine, strict=False)
    report = analyze(opened.trial, engine)
    with engine.connect() as conn:
        logged = read_audit(conn, trial_id)
        names = staff_names(conn, logged)
    notes = [
        f"Interim look on {entry.at:%Y-%m-%d %H:%M} UTC by {names(entry.actor)}: {entry.detail}"
        for entry in logged
        if entry.action == LOOK_ACTION
    ]
    if look_reason is not None:
        notes.append(f"This report is an interim look at a running trial; {look_reason}")
    report = replace(report, warnings=(*report.warnings, *notes))
    return render_html(report, render_figures(report))


def export_zip(engine: Engine, trial_id: str) -> tuple[str, bytes]:
    """The trial's export files in one zip (``TRIAL-export/…``); records a look."""
    from analysis.export_bundle import export_bundle  # deferred: see the module's docstring

    opened = open_trial(trial_id, engine, strict=False)
    folder = f"{trial_id}-export"
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as temporary:
        bundle = export_bundle(opened.trial, engine, temporary)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in bundle.files:
                archive.write(path, f"{folder}/{path.name}")
    return f"{folder}.zip", buffer.getvalue()


RESULTS = ResultSources(report=report_html, export=export_zip)


def create_console_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The app with the console's reports and exports (what ``nudgelab serve`` runs)."""
    return create_app(config, results=RESULTS)
