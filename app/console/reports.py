"""Results in the console: the report and the export after close, and an interim look.

Outcome results per arm appear only here, and only (a) once the trial is closed, for its
researchers and for evaluators, or (b) at an interim look by one of its researchers while it
runs: a look the plan pre-registered (``analysis.interim``) or an unplanned one with a typed
reason. Every report and export is computed by ``analysis`` through the composition root
(:mod:`app.console.results`), counts as one recorded look, and writes an audit entry; an
unplanned look's reason is in that entry.
"""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Length, Optional

from app.console.access import Can, roles, trial_for
from app.console.blueprint import bp
from app.console.results import LOOK_ACTION, result_sources
from app.db import commit, get_connection, get_engine
from experiments import store
from experiments.store.audit import audit
from experiments.store.users import Role

#: The report page is the analysis' own HTML with an embedded style sheet and figures: it may
#: use inline styles and data: images, and nothing else (no script, no request anywhere).
REPORT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'; sandbox"
)
#: The shortest reason accepted for an unplanned look.
MIN_REASON = 20


class LookForm(FlaskForm):
    reason = TextAreaField(
        "Why look at the results now?", validators=[Optional(), Length(max=2000)]
    )


def _sources():  # type: ignore[no-untyped-def]
    sources = result_sources()
    if sources is None:
        abort(503, "Reports are not available on this server: start it with `nudgelab serve`.")
    return sources


def _report_response(trial_id: str, html: str, download: bool) -> Response:
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = REPORT_POLICY
    if download:
        response.headers["Content-Disposition"] = f'attachment; filename="{trial_id}-report.html"'
    return response


@bp.get("/trials/<trial_id>/report")
@roles(Role.RESEARCHER, Role.EVALUATOR)
def report(trial_id: str) -> Response:
    """The closed trial's report (HTML; ``?download=1`` as a file). Counts as a look."""
    trial_for(trial_id, Can.RESULTS)
    sources = _sources()
    get_connection().rollback()
    html = sources.report(get_engine(), trial_id, None)
    audit(get_connection(), current_user.actor, "trial.report", trial_id=trial_id)
    commit()
    return _report_response(trial_id, html, bool(request.args.get("download")))


@bp.get("/trials/<trial_id>/export")
@roles(Role.RESEARCHER, Role.EVALUATOR)
def export(trial_id: str) -> Response:
    """The closed trial's export files in a zip. Counts as a look."""
    trial_for(trial_id, Can.RESULTS)
    sources = _sources()
    get_connection().rollback()
    name, data = sources.export(get_engine(), trial_id)
    audit(get_connection(), current_user.actor, "trial.export", trial_id=trial_id)
    commit()
    response = Response(data, mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@bp.route("/trials/<trial_id>/look", methods=["GET", "POST"])
@roles(Role.RESEARCHER)
def look(trial_id: str) -> str | Response:
    """An interim look at a running or paused trial: pre-registered, or with a typed reason."""
    record = trial_for(trial_id, Can.ACT)
    if record.status == "closed":
        return redirect(url_for("console.report", trial_id=trial_id))
    if not record.registered:
        flash("A draft trial has no results to look at.")
        return redirect(url_for("console.trial", trial_id=trial_id))
    conn = get_connection()
    planned = store.current_trial(conn, record).analysis.interim is not None
    form = LookForm()
    error = None
    if form.validate_on_submit():
        reason = (form.reason.data or "").strip()
        if not planned and len(reason) < MIN_REASON:
            error = (
                f"An unplanned look needs a reason of at least {MIN_REASON} characters: it is "
                "recorded, counted and shown in the report's Warnings."
            )
        else:
            sources = _sources()
            conn.rollback()
            kind = "planned interim look" if planned else "unplanned interim look"
            detail = f"{kind}; reason: {reason}" if reason else kind
            # The report names no account: reports travel further than the team.
            asked = f"{detail} (asked for by a {current_user.role.value})"
            html = sources.report(get_engine(), trial_id, asked)
            audit(
                get_connection(), current_user.actor, LOOK_ACTION, trial_id=trial_id, detail=detail
            )
            commit()
            return _report_response(trial_id, html, False)
    elif request.method == "POST":
        error = "The reason is too long."
    status = 422 if error else 200
    return (
        render_template(
            "console/look.html",
            record=record,
            form=form,
            planned=planned,
            error=error,
            min_reason=MIN_REASON,
        ),
        status,
    )
