"""Admin pages: accounts (add, disable, enable) and the audit log."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, SelectField
from wtforms.validators import DataRequired, Length

from app.console.access import roles
from app.console.blueprint import bp
from app.db import commit, get_connection
from experiments.store.audit import read_audit
from experiments.store.users import (
    AccountError,
    Role,
    add_user,
    disable_user,
    enable_user,
    list_users,
    new_password,
)

#: Audit entries shown on one page (newest last).
AUDIT_PAGE = 500


class AddUserForm(FlaskForm):
    email = EmailField("E-mail address", validators=[DataRequired(), Length(max=320)])
    role = SelectField("Role", choices=[role.value for role in Role])


class StepForm(FlaskForm):
    """An account button: only the CSRF token."""


@bp.route("/users", methods=["GET", "POST"])
@roles(Role.ADMIN)
def users() -> str:
    """Every account; add one (its one-time password is shown once)."""
    conn = get_connection()
    form = AddUserForm()
    created = None
    error = None
    if form.validate_on_submit():
        password = new_password()
        try:
            user = add_user(
                conn, form.email.data or "", form.role.data, password, current_user.actor
            )
        except AccountError as refused:
            error = refused.message
        else:
            commit()
            created = (user, password)
    elif request.method == "POST":
        error = "Give an e-mail address and a role."
    return render_template(
        "console/users.html",
        users=list_users(conn),
        form=form,
        step_form=StepForm(),
        created=created,
        error=error,
    )


@bp.post("/users/<int:user_id>/<any(disable, enable):change>")
@roles(Role.ADMIN)
def change_user(user_id: int, change: str) -> Response:
    """Disable an account (its session ends at its next request) or enable it again."""
    conn = get_connection()
    match = [user for user in list_users(conn) if user.id == user_id]
    if not match:
        flash("No such account.")
        return redirect(url_for("console.users"))
    user = match[0]
    if user.email == current_user.email and change == "disable":
        flash("You cannot disable your own account.")
        return redirect(url_for("console.users"))
    act = disable_user if change == "disable" else enable_user
    act(conn, user.email, current_user.actor)
    commit()
    flash(f"{user.email} is {'disabled' if change == 'disable' else 'enabled'}.")
    return redirect(url_for("console.users"))


@bp.get("/audit")
@roles(Role.ADMIN)
def audit() -> str:
    """The audit log, newest last; ``?trial=ID`` for one trial."""
    trial_id = request.args.get("trial") or None
    entries = read_audit(get_connection(), trial_id, limit=AUDIT_PAGE)
    return render_template("console/audit.html", entries=entries, trial_id=trial_id)
