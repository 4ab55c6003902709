"""The kiosk: how a trial is shown on Tea Room kiosks and logged.

``create_app(config=None)`` builds config → database → Babel → blueprints → error handlers.
Importing this package never connects to anything.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, current_app, request

from app.config import StartupError, default_database_url, from_environment, resolve
from app.logs import scrub_logger

if TYPE_CHECKING:
    from app.console.results import ResultSources

__all__ = ["StartupError", "configured_database_url", "create_app"]

#: Only this app's own files: no CDN, no web fonts, nothing from outside the kiosk.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)


#: Sent with secure cookies (served over HTTPS): browsers then use HTTPS only, for a year.
HSTS = "max-age=31536000"


#: The headers every answer carries unless its view set them itself.
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)


def security_headers(secure: bool) -> Callable[[Response], Response]:
    """The after-request hook that adds :data:`SECURITY_HEADERS` (and HSTS when ``secure``) to
    every answer, each unless the view set that header itself. The set is built once per app:
    one pass over the answer's headers per request, not a lookup per header."""
    headers = SECURITY_HEADERS + ((("Strict-Transport-Security", HSTS),) if secure else ())
    names = frozenset(name.lower() for name, _ in headers)

    def add_security_headers(response: Response) -> Response:
        present = names.intersection([name.lower() for name, _ in response.headers])
        if not present:
            response.headers.extend(headers)
            return response
        for name, value in headers:
            if name.lower() not in present:
                response.headers.add(name, value)
        return response

    return add_security_headers


def _public_redirect(response: Response) -> Response:
    """A redirect to this server (e.g. Werkzeug's to a URL with its trailing slash, which it
    builds from the request's ``Host``) goes to ``PUBLIC_URL``, or stays relative without it:
    a client's ``Host`` header never chooses where a redirect leads."""
    location = response.headers.get("Location")
    if location is None or not 300 <= response.status_code < 400:
        return response
    target = urlsplit(location)
    if target.netloc and target.netloc == request.host:
        public = current_app.config["PUBLIC_URL"]
        base = urlsplit(public)._replace(path="", query="", fragment="") if public else None
        relative = target._replace(scheme="", netloc="")
        response.headers["Location"] = (
            urlunsplit(relative) if base is None else (urlunsplit(base) + urlunsplit(relative))
        )
    return response


def configured_database_url() -> str:
    """The database the app would use (``NUDGELAB_DATABASE_URL``, ``DATABASE_URL`` or the
    instance SQLite file), without building the app; for the command line."""
    instance = Path(Flask(__name__, instance_relative_config=True).instance_path)
    url = from_environment(os.environ).get("DATABASE_URL")
    if url:
        return str(url)
    instance.mkdir(parents=True, exist_ok=True)
    return default_database_url(instance)


def create_app(
    config: Mapping[str, Any] | None = None, *, results: ResultSources | None = None
) -> Flask:
    """Build the kiosk app; ``config`` overrides defaults and ``NUDGELAB_*`` (tests use it).

    ``results``: how the research console computes reports and exports (the composition root,
    :mod:`nudgelab.results`, passes them; without them those console pages are unavailable).

    Raises :class:`StartupError` for an unknown ``NUDGELAB_*`` variable or a bad value.
    """
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(resolve(Path(app.instance_path), os.environ, config))
    app.config.update(
        SESSION_COOKIE_NAME="nudgelab_visit",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=app.config["SECURE_COOKIES"],
        SESSION_REFRESH_EACH_REQUEST=False,
        JSON_SORT_KEYS=False,
    )
    # The request log of Werkzeug's development server names the client's IP address: keep it
    # to errors only, and remove addresses from what is left and from the app's own log.
    # (gunicorn's access log is off and its error log scrubbed, see app/server.py.)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    scrub_logger(logging.getLogger("werkzeug"))
    scrub_logger(app.logger)

    from app import console, db, errors, events, i18n, kiosk, limits, proxy, register

    db.init_app(app)
    i18n.init_app(app)
    app.register_blueprint(kiosk.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(register.bp)
    app.register_blueprint(kiosk.media.register_bp)  # the register's pictures and narrations
    console.init_app(app, results)
    errors.init_app(app)
    limits.init_app(app)
    app.after_request(security_headers(app.config["SECURE_COOKIES"]))
    app.after_request(_public_redirect)
    proxy.init_app(app)  # X-Forwarded-* from the front server only
    return app
