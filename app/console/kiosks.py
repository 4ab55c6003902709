"""Kiosks in the console: list per location with state and last contact, add, switch off and
on, revoke, replace the token.

A new kiosk's URL holds its secret token, stored only as a hash: the page that adds (or gives a
new token to) a kiosk shows the URL and a QR code of it once, for setting up the tablet, and
never again. The QR code is an SVG made here (segno) and embedded as a data URI: nothing is
loaded from outside.
"""

from __future__ import annotations

from datetime import UTC, datetime

import segno
from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import SelectField

from app.console.access import Can, roles, trial_for
from app.console.blueprint import bp
from app.console.monitoring import settings
from app.db import commit, get_connection
from experiments import store
from experiments.monitoring import kiosk_contacts
from experiments.store.kiosks import (
    KioskError,
    list_kiosks,
    replace_token,
    require_kiosk,
    revoke_kiosk,
    switch_kiosk,
)
from experiments.store.users import Role


class AddKioskForm(FlaskForm):
    location = SelectField("Location (its id in the trial file)")


class StepForm(FlaskForm):
    """A kiosk button: only the CSRF token."""


def _base_url() -> str:
    """The address kiosks reach this server at: NUDGELAB_PUBLIC_URL, else this request's."""
    return current_app.config.get("PUBLIC_URL") or request.host_url.rstrip("/")


def qr_data_uri(url: str) -> str:
    """A QR code of ``url`` as an SVG data URI."""
    return segno.make(url, error="m").svg_data_uri(scale=4, border=2)


@bp.get("/trials/<trial_id>/kiosks")
@roles(Role.RESEARCHER, Role.ADMIN)
def kiosks(trial_id: str) -> str:
    """The trial's kiosks by location: state, last contact, silent flag."""
    record = trial_for(trial_id, Can.KIOSKS)
    conn = get_connection()
    trial = store.current_trial(conn, record)
    rows = list_kiosks(conn, trial_id)
    form = AddKioskForm()
    form.location.choices = list(trial.location_ids)
    contacts = kiosk_contacts(
        conn, trial_id, now=datetime.now(UTC), settings=settings(), serving=record.serving
    )
    silent = {contact.id for contact in contacts if contact.silent}
    return render_template(
        "console/kiosks.html",
        record=record,
        trial=trial,
        kiosks=rows,
        silent=silent,
        form=form,
        step_form=StepForm(),
        names={loc.id: loc.name for loc in trial.locations},
    )


@bp.post("/trials/<trial_id>/kiosks")
@roles(Role.RESEARCHER, Role.ADMIN)
def add_kiosk(trial_id: str) -> str | Response:
    """Register a kiosk; show its URL and QR code this once."""
    record = trial_for(trial_id, Can.KIOSKS)
    conn = get_connection()
    trial = store.current_trial(conn, record)
    form = AddKioskForm()
    form.location.choices = list(trial.location_ids)
    if not form.validate():
        flash("Not added: choose one of the trial's locations.")
        return redirect(url_for("console.kiosks", trial_id=trial_id))
    try:
        kiosk, token = store.register_kiosk(conn, trial, form.location.data, current_user.actor)
    except KioskError as refused:
        flash(f"Not added: {refused}")
        return redirect(url_for("console.kiosks", trial_id=trial_id))
    commit()
    return _show_once(trial_id, kiosk.id, kiosk.location, token, "added")


def _show_once(trial_id: str, kiosk_id: str, location: str, token: str, what: str) -> str:
    url = _base_url() + store.kiosk_path(trial_id, location, token)
    return render_template(
        "console/kiosk_url.html",
        trial_id=trial_id,
        kiosk_id=kiosk_id,
        location=location,
        url=url,
        qr=qr_data_uri(url),
        what=what,
    )


@bp.post("/kiosks/<kiosk_id>/<any(off, on, revoke, replace):change>")
@roles(Role.RESEARCHER, Role.ADMIN)
def change_kiosk(kiosk_id: str, change: str) -> str | Response:
    """Switch a kiosk off or on, revoke it for good, or give it a new token."""
    conn = get_connection()
    try:
        kiosk = require_kiosk(conn, kiosk_id)
    except KioskError:
        abort(404)
    trial_for(kiosk.trial_id, Can.KIOSKS)
    actor = current_user.actor
    try:
        if change == "replace":
            kiosk, token = replace_token(conn, kiosk_id, actor)
            commit()
            return _show_once(kiosk.trial_id, kiosk.id, kiosk.location, token, "given a new token")
        if change == "revoke":
            kiosk = revoke_kiosk(conn, kiosk_id, actor)
        else:
            kiosk = switch_kiosk(conn, kiosk_id, change == "on", actor)
    except KioskError as refused:
        flash(f"Not done: {refused}")
    else:
        commit()
        flash(f"Kiosk {kiosk.id} at {kiosk.location} is {kiosk.state}.")
    return redirect(url_for("console.kiosks", trial_id=kiosk.trial_id))
