"""Signing in and out of the console (Flask-Login), and changing one's password.

The session cookie holds the account id and a *session epoch*: a short keyed hash (HMAC under
the secret key) of the account's password hash and of its latest password, disable or enable
entry in the audit log. Every request reads the account again and compares the epoch, so a
password change (in the console, on the command line or by an admin), a disable and an enable
end every other session of the account at its next request; the session that changed its own
password gets the new epoch and goes on. Failed sign-ins are counted by
:func:`experiments.store.users.authenticate`, which locks an account for a while after too many;
every refusal shows the same words, so the page does not tell which addresses have accounts.
Sign-in attempts per client address are limited too (``SIGN_IN_LIMIT``, :mod:`app.limits`). A
one-time password must be replaced at the first sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from flask import Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask_limiter import RateLimitExceeded
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from app.console.blueprint import bp
from app.db import commit, get_connection
from app.limits import retry_after
from experiments.eventlog import audit_log, users
from experiments.store.audit import Actor
from experiments.store.users import (
    MIN_PASSWORD_LENGTH,
    SIGN_IN_REFUSED,
    AccountError,
    Role,
    User,
    authenticate,
    get_user,
    set_password,
)


class Account(UserMixin):
    """The signed-in account, for Flask-Login and the templates."""

    def __init__(self, user: User) -> None:
        self.account = user
        self.id = str(user.id)
        self.email = user.email
        self.role = user.role

    @property
    def actor(self) -> Actor:
        """Who the audit log names for this account's actions."""
        return Actor(self.email, "console")

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


login_manager = LoginManager()
login_manager.login_view = "console.sign_in"
login_manager.login_message = "Please sign in to use the console."
login_manager.session_protection = "strong"


#: Audit actions on an account that end its other sessions (besides a new password hash).
SESSION_ENDING = ("user.password", "user.disable", "user.enable")
#: The session key of the epoch.
EPOCH_KEY = "epoch"


def session_epoch(user: User) -> str | None:
    """The account's current session epoch (None if it is gone): an HMAC of its password hash
    and of the id of its latest entry among :data:`SESSION_ENDING`. The cookie is signed, not
    encrypted; without the secret key the value says nothing about the password hash."""
    conn = get_connection()
    stored = conn.execute(
        select(users.c.password_hash).where(users.c.id == user.id)
    ).scalar_one_or_none()
    if stored is None:
        return None
    latest = conn.execute(
        select(func.max(audit_log.c.id)).where(
            audit_log.c.target == user.email, audit_log.c.action.in_(SESSION_ENDING)
        )
    ).scalar_one_or_none()
    key = str(current_app.config["SECRET_KEY"]).encode()
    message = f"console-session\n{user.id}\n{stored}\n{latest}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


@login_manager.user_loader
def _load(user_id: str) -> Account | None:
    if not user_id.isdigit():
        return None
    user = get_user(get_connection(), int(user_id))
    epoch = session.get(EPOCH_KEY)
    if (
        user is None
        or not user.active
        or not isinstance(epoch, str)
        or not hmac.compare_digest(epoch, session_epoch(user) or "")
    ):
        # Forget the session for good, so that enabling the account again does not revive it.
        session.clear()
        return None
    return Account(user)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)


#: Pages a signed-in account with a one-time password may still open.
_BEFORE_NEW_PASSWORD = frozenset({"console.password", "console.sign_out", "console.sign_in"})


@bp.before_request
def _idle_timeout() -> None:
    """End a console session that has been idle for ``CONSOLE_IDLE_MINUTES``."""
    now = int(datetime.now(UTC).timestamp())
    seen = session.get("seen")
    limit = current_app.config["CONSOLE_IDLE_MINUTES"] * 60
    if current_user.is_authenticated and isinstance(seen, int) and now - seen > limit:
        logout_user()
        session.clear()
        flash("Your session ended after a time without use; please sign in again.")
    session["seen"] = now


@bp.before_request
def _new_password_first() -> Response | None:
    """After signing in with a one-time password, the password page comes first."""
    if (
        current_user.is_authenticated
        and current_user.account.password_change_required
        and request.endpoint not in _BEFORE_NEW_PASSWORD
    ):
        return redirect(url_for("console.password"))
    return None


class SignInForm(FlaskForm):
    email = EmailField("E-mail address", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField(
        "New password",
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=1000)],
    )
    repeat = PasswordField(
        "New password again", validators=[DataRequired(), EqualTo("new", "Not the same.")]
    )


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> str | Response:
    """The sign-in form; after too many failed attempts the account is locked for a while (the
    page does not say so: every refusal reads the same)."""
    if current_user.is_authenticated:
        return redirect(url_for("console.trials"))
    form = SignInForm()
    error = None
    status = 200
    if form.validate_on_submit():
        now = datetime.now(UTC)
        result = authenticate(
            get_connection(), form.email.data or "", form.password.data or "", now
        )
        commit()  # failed-attempt counters change either way
        if result.user is not None:
            session.clear()
            login_user(Account(result.user))
            session["seen"] = int(now.timestamp())
            session[EPOCH_KEY] = session_epoch(result.user)
            if result.user.password_change_required:
                return redirect(url_for("console.password"))
            return redirect(_next_page())
        # One text for every refusal (wrong password, unknown address, locked, disabled), so
        # the answer does not tell which addresses have accounts.
        error = result.message or SIGN_IN_REFUSED
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("console/sign_in.html", form=form, error=error), status


@bp.errorhandler(RateLimitExceeded)
def _too_many_sign_ins(_error: RateLimitExceeded) -> tuple[str, int, dict[str, str]]:
    """The sign-in page, 429 with ``Retry-After``: too many attempts from this address."""
    wait = retry_after()
    error = (
        "Too many sign-in attempts from this network address. Please wait "
        f"{wait} seconds and try again."
    )
    page = render_template("console/sign_in.html", form=SignInForm(), error=error)
    return page, 429, {"Retry-After": str(wait)}


def _next_page() -> str:
    """Where to go after signing in: a console page asked for, else the trial list."""
    target = request.args.get("next", "")
    if target.startswith("/console/") and not target.startswith("//"):
        return target
    return url_for("console.trials")


@bp.post("/sign-out")
@login_required
def sign_out() -> Response:
    logout_user()
    session.clear()
    flash("Signed out.")
    return redirect(url_for("console.sign_in"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password() -> str | Response:
    """Change one's own password (required after signing in with a one-time password)."""
    form = PasswordForm()
    error = None
    if form.validate_on_submit():
        check = authenticate(
            get_connection(), current_user.email, form.current.data or "", datetime.now(UTC)
        )
        if check.user is None:
            commit()
            error = "The current password is not right."
        else:
            try:
                set_password(
                    get_connection(), current_user.email, form.new.data or "", current_user.actor
                )
            except AccountError as refused:
                error = refused.message
            else:
                commit()
                # Other sessions of this account end at their next request; this one goes on.
                session[EPOCH_KEY] = session_epoch(current_user.account)
                flash("Your password is changed. Your other sessions have ended.")
                return redirect(url_for("console.trials"))
    required = current_user.account.password_change_required
    return render_template("console/password.html", form=form, error=error, required=required)
