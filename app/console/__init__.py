"""The research console: a blueprint under ``/console`` for researchers, evaluators and admins.

``init_app`` gives the console its own session cookie (:mod:`app.console.session`), signs
accounts in with Flask-Login (:mod:`app.console.auth`), checks a CSRF token on every POST
under ``/console`` (Flask-WTF) and registers the pages. What each role may open is decided by
:mod:`app.console.access`. Reports and exports come from the composition root
(:mod:`app.console.results`); the console itself never imports ``analysis``.
"""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from app.console import (
    admin,
    auth,
    kiosks,
    loading,
    monitoring,
    reports,
    results,
    session,
    trials,
)
from app.console.blueprint import bp
from app.console.results import ResultSources

__all__ = ["ResultSources", "init_app"]

csrf = CSRFProtect()


def init_app(app: Flask, sources: ResultSources | None = None) -> None:
    """Register the console on ``app``, with ``sources`` for its reports and exports."""
    # Only console forms carry a token: the kiosk's forms and the events API (a bearer token,
    # no cookie) are not checked here; bp.before_request checks every console POST.
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the session
    session.init_app(app)
    csrf.init_app(app)
    auth.init_app(app)
    results.init_app(app, sources)
    app.register_blueprint(bp)


#: The modules whose routes make up the console (imported for their routes).
PAGES = (admin, auth, kiosks, loading, monitoring, reports, trials)
