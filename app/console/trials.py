"""Trials in the console: the list, a trial's page, its lifecycle steps and its members.

``draft → running ⇄ paused → closed``; every step writes an audit entry naming the account.
Closing may give the address of the trial's results, and a closed trial's researchers can set
or change it later ("publish results link"): the public register links it. Loading files is
:mod:`app.console.loading`.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional

from app.console.access import Can, allowed, roles, trial_for
from app.console.blueprint import bp
from app.db import commit, get_connection
from experiments import store
from experiments.store.amendments import read_amendments
from experiments.store.users import Role, add_member, members, trials_for


class StepForm(FlaskForm):
    """A lifecycle button: only the CSRF token."""


class MemberForm(FlaskForm):
    email = StringField("E-mail address", validators=[DataRequired(), Length(max=320)])


class CloseForm(FlaskForm):
    """Closing, with the results' address if it is known already."""

    results_url = StringField(
        "Results address (optional: https://…, or a path on this site)",
        validators=[Optional(), Length(max=2000)],
    )


class ResultsForm(FlaskForm):
    """The address of a closed trial's results, which the public register links."""

    results_url = StringField(
        "Results address (https://…, or a path on this site)",
        validators=[DataRequired(), Length(max=2000)],
    )


@bp.get("/")
@roles(Role.RESEARCHER, Role.EVALUATOR, Role.ADMIN)
def trials() -> str:
    """The trials this account may see, with their status and kiosks."""
    conn = get_connection()
    visible = set(trials_for(conn, current_user.account))
    records = [record for record in store.list_trials(conn) if record.id in visible]
    return render_template(
        "console/trials.html",
        records=records,
        kiosks=store.active_kiosk_counts(conn),
        can_load=current_user.role is Role.RESEARCHER,
    )


@bp.get("/trials/<trial_id>")
@roles(Role.RESEARCHER, Role.EVALUATOR, Role.ADMIN)
def trial(trial_id: str) -> str:
    """A trial: status, pre-registration lock, amendments, the steps it allows."""
    record = trial_for(trial_id, Can.VIEW)
    conn = get_connection()
    return render_template(
        "console/trial.html",
        record=record,
        trial=store.current_trial(conn, record),
        amendments=read_amendments(conn, trial_id),
        pauses=store.read_pauses(conn, trial_id),
        members=members(conn, trial_id),
        can_act=allowed(record, Can.ACT),
        can_kiosks=allowed(record, Can.KIOSKS),
        can_results=allowed(record, Can.RESULTS),
        is_admin=current_user.is_admin,
        form=StepForm(),
        member_form=MemberForm(),
        close_form=CloseForm(),
        results_form=ResultsForm(),
    )


STEPS = {
    "start": store.start_trial,
    "pause": store.pause_trial,
    "resume": store.resume_trial,
    "close": store.close_trial,
}


@bp.post("/trials/<trial_id>/<any(start, pause, resume, close):step>")
@roles(Role.RESEARCHER)
def step(trial_id: str, step: str) -> Response:
    """Start, pause, resume or close the trial (closing with the results' address, if given:
    both in one transaction, so a refused address closes nothing)."""
    trial_for(trial_id, Can.ACT)
    conn = get_connection()
    url = (CloseForm().results_url.data or "").strip() if step == "close" else ""
    try:
        if url:
            store.check_results_url(url, _public_url())
        record = STEPS[step](conn, trial_id, actor=current_user.actor)
        if url:
            record = store.publish_results(
                conn, trial_id, url, actor=current_user.actor, public_url=_public_url()
            )
    except store.RecordingError as refused:  # TransitionRefused, or a refused address
        conn.rollback()
        flash(f"Not done: {refused.message}")
    else:
        commit()
        message = f"{trial_id} is {record.status}."
        if step == "start" and record.locked_version and record.locked_at:
            message += (
                f" Pre-registration locked at {record.locked_at:%Y-%m-%d %H:%M} UTC, version "
                f"{record.locked_version}."
            )
        flash(message)
    return redirect(url_for("console.trial", trial_id=trial_id))


def _public_url() -> str | None:
    return current_app.config.get("PUBLIC_URL") or None


@bp.post("/trials/<trial_id>/results-url")
@roles(Role.RESEARCHER)
def publish_results(trial_id: str) -> Response:
    """Set or change the address of a closed trial's results (the public register links it)."""
    trial_for(trial_id, Can.ACT)
    form = ResultsForm()
    if not form.validate():
        flash("Not published: give the results' address.")
        return redirect(url_for("console.trial", trial_id=trial_id))
    conn = get_connection()
    try:
        record = store.publish_results(
            conn,
            trial_id,
            form.results_url.data or "",
            actor=current_user.actor,
            public_url=_public_url(),
        )
    except store.RecordingError as refused:
        conn.rollback()
        flash(f"Not published: {refused.message}")
    else:
        commit()
        flash(f"The public register now links the results: {record.results_url}")
    return redirect(url_for("console.trial", trial_id=trial_id))


@bp.post("/trials/<trial_id>/members")
@roles(Role.ADMIN)
def add_trial_member(trial_id: str) -> Response:
    """Add an account to a trial (researchers act on the trials they are members of)."""
    trial_for(trial_id, Can.VIEW)
    form = MemberForm()
    if not form.validate():
        flash("Not added: give an e-mail address.")
    else:
        try:
            added = add_member(
                get_connection(), trial_id, form.email.data or "", current_user.actor
            )
        except store.RecordingError as refused:
            flash(f"Not added: {refused.message}")
        else:
            commit()
            flash("Added." if added else "Already a member.")
    return redirect(url_for("console.trial", trial_id=trial_id))
