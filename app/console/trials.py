"""Trials in the console: the list, a trial's page, its lifecycle steps and its members.

``draft → running ⇄ paused → closed``; every step writes an audit entry naming the account.
Loading files is :mod:`app.console.loading`.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import DataRequired, Length

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
    """Start, pause, resume or close the trial."""
    trial_for(trial_id, Can.ACT)
    try:
        record = STEPS[step](get_connection(), trial_id, actor=current_user.actor)
    except store.TransitionRefused as refused:
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
