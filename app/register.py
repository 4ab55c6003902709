"""The public register: every trial that is or was running, in full, without login.

This is the publicity principle made concrete: purpose, organisation, contacts, every arm with
its full materials, element and strength, the disclosure, the schedule, the trial file itself,
and once a trial is closed a link to its results.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, url_for

from app.db import get_connection
from app.kiosk.render import register_address
from app.labels import ELEMENT_LABELS, STATUS_LABELS, STRENGTH_LABELS
from experiments import store

bp = Blueprint("register", __name__)


@bp.get("/")
def home() -> Response:
    return redirect(url_for("register.index"))


@bp.get("/register")
def index() -> str:
    """All trials that are or were running."""
    conn = get_connection()
    entries = [
        (record, store.current_trial(conn, record))
        for record in store.list_trials(conn, registered_only=True)
    ]
    return render_template("register/index.html", entries=entries, status_labels=STATUS_LABELS)


def _registered(trial_id: str) -> store.TrialRecord:
    record = store.read_trial(get_connection(), trial_id)
    if record is None or not record.registered:
        abort(404)
    return record


@bp.get("/register/<trial_id>")
def trial(trial_id: str) -> str:
    """One trial in full, in every language it uses."""
    record = _registered(trial_id)
    trial = store.current_trial(get_connection(), record)
    return render_template(
        "register/trial.html",
        record=record,
        trial=trial,
        amendments=store.read_amendments(get_connection(), trial_id),
        languages=trial.languages,
        show_notes=True,
        register_address=register_address,
        element_labels=ELEMENT_LABELS,
        strength_labels=STRENGTH_LABELS,
    )


@bp.get("/register/<trial_id>/trial.yaml")
def trial_file(trial_id: str) -> Response:
    """The trial file exactly as loaded (the current version)."""
    record = _registered(trial_id)
    source = store.version_source(get_connection(), trial_id, record.current_version) or ""
    return Response(source, content_type="text/plain; charset=utf-8")
