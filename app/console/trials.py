"""Trials in the console: the list, a trial's page, loading a file, and the lifecycle steps.

``draft → running ⇄ paused → closed``. Loading a file runs the same check as ``nudgelab
check``; a refused file shows the check's messages. A new version of a started trial that
changes arms, materials, outcomes or the analysis plan needs a reason and is recorded as an
amendment. Every step writes an audit entry naming the account (:mod:`experiments.lifecycle`).
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.console.access import Can, allowed, roles, trial_for
from app.console.blueprint import bp
from app.db import commit, get_connection, get_engine
from experiments import lifecycle, store
from experiments.check import check_text
from experiments.store.amendments import read_amendments
from experiments.store.users import Role, add_member, members, trials_for

#: The largest trial file the console accepts (the example is about 30 kB).
MAX_TRIAL_BYTES = 512 * 1024


class LoadForm(FlaskForm):
    file = FileField("Trial file (YAML)")
    source = TextAreaField("…or paste the trial file", validators=[Optional()])
    reason = TextAreaField(
        "Reason for the change (needed once the trial has started and the change touches "
        "arms, materials, outcomes or the analysis plan)",
        validators=[Optional(), Length(max=2000)],
    )


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


def _source(form: LoadForm) -> tuple[str, str] | None:
    """The uploaded or pasted trial file's text and a name for messages; None if neither."""
    upload = form.file.data
    if upload is not None and getattr(upload, "filename", ""):
        raw = upload.read(MAX_TRIAL_BYTES + 1)
        if len(raw) > MAX_TRIAL_BYTES:
            abort(413)
        try:
            return raw.decode("utf-8"), upload.filename
        except UnicodeDecodeError:
            return None
    text = (form.source.data or "").strip()
    return (text + "\n", "pasted trial file") if text else None


@bp.route("/load", methods=["GET", "POST"])
@roles(Role.RESEARCHER)
def load_new() -> str | Response:
    """Load a new trial (as a draft), by upload or paste."""
    return _load(None)


@bp.route("/trials/<trial_id>/load", methods=["GET", "POST"])
@roles(Role.RESEARCHER)
def load_version(trial_id: str) -> str | Response:
    """Load a new version of a trial this researcher works on."""
    trial_for(trial_id, Can.ACT)
    return _load(trial_id)


def _load(trial_id: str | None) -> str | Response:
    form = LoadForm()
    problems: list[str] = []
    error = None
    needs_reason: tuple[str, ...] = ()
    if form.validate_on_submit():
        found = _source(form)
        if found is None:
            error = "Choose a UTF-8 trial file, or paste its text."
        else:
            source, origin = found
            outcome = _try_load(source, origin, trial_id, (form.reason.data or "").strip())
            if isinstance(outcome, Response):
                return outcome
            error, problems, needs_reason = outcome
    elif request.method == "POST":
        error = "The form was not complete; see below."
    status = 422 if error else 200
    return (
        render_template(
            "console/load.html",
            form=form,
            trial_id=trial_id,
            error=error,
            problems=problems,
            needs_reason=needs_reason,
        ),
        status,
    )


def _try_load(
    source: str, origin: str, trial_id: str | None, reason: str
) -> Response | tuple[str, list[str], tuple[str, ...]]:
    """Load the text; a redirect to the trial's page, or (error, problems, parts changed)."""
    conn = get_connection()
    checked = check_text(source, origin)
    if checked.trial is not None:
        loaded_id = checked.trial.id
        if trial_id is not None and loaded_id != trial_id:
            return (f"This file is trial {loaded_id!r}, not {trial_id!r}.", [], ())
        existing = store.read_trial(conn, loaded_id)
        if existing is not None and not allowed(existing, Can.ACT):
            return (
                f"A trial {loaded_id!r} exists already and you are not a member of it; ask an "
                "admin to add you, or give your trial another id.",
                [],
                (),
            )
    conn.rollback()  # the load below runs in its own transaction
    try:
        loaded = lifecycle.load_trial_text(
            get_engine(),
            source,
            origin,
            interface_languages=current_app.config["INTERFACE_LANGUAGES"],
            actor=current_user.actor,
            reason=reason or None,
        )
    except lifecycle.ReasonRequired as missing:
        changed = tuple(getattr(missing, "changes", ()) or ("arms, materials, outcomes or plan",))
        return (str(missing), [str(p) for p in missing.problems], changed)
    except lifecycle.TrialRefused as refused:
        return (str(refused), [str(p) for p in refused.problems], ())
    conn = get_connection()
    if store.read_trial(conn, loaded.trial.id) is not None:
        add_member(conn, loaded.trial.id, current_user.email, current_user.actor)
        commit()
    for warning in (*map(str, loaded.problems), *loaded.warnings):
        flash(f"warning: {warning}")
    flash(
        f"{'Loaded' if loaded.new else 'Unchanged:'} {loaded.trial.id}, version "
        f"{loaded.version[:12]}."
    )
    return redirect(url_for("console.trial", trial_id=loaded.trial.id))


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
