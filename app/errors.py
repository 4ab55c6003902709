"""Errors, translated once at the boundary: one JSON shape for the API, one HTML page otherwise.

The API always answers ``{"error": {"message": ..., "field": ...}}``; a visitor or operator
always sees a page that says what happened and what to do, never a traceback. On a kiosk URL
that page is never a dead end: it links to the kiosk's start screen and returns there by itself
after the inactivity time, in the visit's language. A database that cannot be reached (the
connection refused or lost, the server restarting, SQLite's file locked or gone:
:func:`is_outage`) is a 503 (the kiosk's event queue retries), logged once when the outage
begins and once when it ends, per worker; any other database error (a bad statement, bad data)
or surprise is a 500 with its traceback in the log. A path with a NUL or another control
character is a 404 before any view runs.
"""

from __future__ import annotations

import re
import threading
import time
from urllib.parse import quote

from flask import Flask, Response, current_app, g, jsonify, render_template, request, session
from flask_babel import gettext as _
from flask_babel.speaklater import LazyString
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound

from app.paths import is_api_path


class ApiError(Exception):
    """An API request the server refuses; ``field`` names the offending input."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def json_error(status: int, message: str, field: str | None = None) -> Response:
    response = jsonify({"error": {"message": message, "field": field}})
    response.status_code = status
    return response


def _wants_json() -> bool:
    return is_api_path(request.path)


#: ``/kiosk/<trial>/<location>/<token>/``: the start screen of the kiosk a page belongs to.
KIOSK_URL = re.compile(r"^/kiosk/([^/]+)/([^/]+)/([^/]+)/")


def _kiosk_start() -> str | None:
    """The start screen of the kiosk whose page this is, or None outside kiosk pages."""
    match = KIOSK_URL.match(request.path)
    if match is None:
        return None
    return (
        request.script_root
        + "/kiosk/"
        + "".join(quote(part, safe="") + "/" for part in match.groups())
    )


def _visit_language() -> None:
    """On a kiosk page, speak the visit's language (from its cookie) unless a view chose one."""
    if _kiosk_start() and not getattr(g, "language", None):
        language = session.get("language")
        if language in current_app.config["INTERFACE_LANGUAGES"]:
            g.language = language


def _page(status: int, title: str, message: str | LazyString) -> tuple[str, int]:
    start = _kiosk_start()
    if start is None:
        return render_template("errors/error.html", title=title, message=message), status
    html = render_template(
        "errors/kiosk_error.html",
        title=title,
        message=message,
        start_url=start,
        return_seconds=current_app.config["INACTIVITY_SECONDS"],
    )
    return html, status


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if _wants_json():
        messages = {
            404: "no such endpoint; see /api/v1/openapi.json",
            405: f"method {request.method} is not allowed here; see /api/v1/openapi.json",
            413: "request body too large",
            415: "send the body as JSON (Content-Type: application/json)",
        }
        response = json_error(status, messages.get(status, error.description or error.name))
    else:
        _visit_language()
        titles = {
            403: _("This page is not available here"),
            404: _("Page not found"),
            413: _("The request was too large"),
            503: _("This page is not available here"),
        }
        messages = {
            404: _("Please go back to the start screen."),
            413: _("Please go back to the start screen."),
        }
        description = getattr(error, "nudgelab_message", None) or messages.get(status, error.name)
        response = current_app.make_response(
            _page(status, titles.get(status, error.name), description)
        )
    # The exception's own headers, e.g. ``Allow`` on a 405.
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


class OutageLog:
    """Logs a database outage once when it begins and once when it ends (per worker), not
    once per refused request."""

    def __init__(self) -> None:
        self._since: float | None = None
        self._lock = threading.Lock()

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def begins(self, error: Exception) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        reason = getattr(error, "orig", None) or error
        current_app.logger.error(
            "database unreachable, answering 503 until it is back: %s: %s",
            reason.__class__.__name__,
            str(reason).strip().splitlines()[0] if str(reason).strip() else "",
        )

    def ends(self) -> None:
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            current_app.logger.warning(
                "database reachable again after %.1f s", time.monotonic() - since
            )


OUTAGE_KEY = "nudgelab.outage"


def _outage_over(response: Response) -> Response:
    """A request that used the database and did not fail ends a logged outage."""
    outage: OutageLog = current_app.extensions[OUTAGE_KEY]
    if outage.ongoing and "db" in g and response.status_code < 500:
        outage.ends()
    return response


#: What drivers say when the database cannot be reached, is restarting or (SQLite) its file
#: cannot be opened or stays locked.
_OUTAGE_WORDS = re.compile(
    r"connect|server closed|terminating|shutting down|starting up|unable to open database"
    r"|database is locked|disk i/o",
    re.IGNORECASE,
)


def is_outage(error: DBAPIError) -> bool:
    """Whether a database error means "cannot be reached now" rather than a fault of the
    request or the code (a bad statement, bad data: those are 500s)."""
    if isinstance(error, InterfaceError) or error.connection_invalidated:
        return True
    return isinstance(error, OperationalError) and bool(_OUTAGE_WORDS.search(str(error.orig)))


def _database_error(error: DBAPIError) -> Response | tuple[str, int]:
    return _database_down(error) if is_outage(error) else _unexpected(error)


def _database_down(error: Exception) -> Response | tuple[str, int]:
    current_app.extensions[OUTAGE_KEY].begins(error)
    message = "the database cannot be reached; retry later"
    if _wants_json():
        response = json_error(503, message)
        response.headers["Retry-After"] = "5"
        return response
    _visit_language()
    return _page(
        503,
        _("The kiosk is busy"),
        _("Please wait a moment and tap the start screen again, or ask a staff member."),
    )


def too_many_requests(retry_after: int) -> Response:
    """429 with ``Retry-After``: JSON on the API, the "kiosk is busy" page elsewhere."""
    if _wants_json():
        response = json_error(429, f"too many requests from this address; retry in {retry_after} s")
    else:
        _visit_language()
        response = current_app.make_response(
            _page(
                429,
                _("The kiosk is busy"),
                _("Please wait a moment and tap the start screen again, or ask a staff member."),
            )
        )
    response.headers["Retry-After"] = str(retry_after)
    return response


#: Control characters (C0, DEL, C1), lone surrogates and U+FFFD (what undecodable bytes
#: become): no URL of this app contains one.
_INVALID_PATH = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffd]")


def _refuse_invalid_path() -> None:
    if _INVALID_PATH.search(request.path):
        raise NotFound()


def _unexpected(error: Exception) -> Response | tuple[str, int]:
    from flask import current_app

    current_app.logger.exception("unexpected error on %s %s", request.method, request.endpoint)
    if _wants_json():
        return json_error(500, "internal error; the event was not stored, retry later")
    _visit_language()
    return _page(
        500,
        _("Something went wrong"),
        _("Please ask a staff member for help, or go back to the start screen."),
    )


def _api_error(error: ApiError) -> Response:
    response = json_error(error.status, error.message, error.field)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="nudgelab kiosk"'
    return response


def init_app(app: Flask) -> None:
    app.extensions[OUTAGE_KEY] = OutageLog()
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_invalid_path)
    app.after_request(_outage_over)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(InternalServerError, _unexpected)
    app.register_error_handler(Exception, _unexpected)


def refuse(status: int, message: str | LazyString) -> HTTPException:
    """An HTTP error whose page shows ``message`` (a translated sentence; a lazy one is
    translated when the page is rendered, in the visit's language)."""
    from werkzeug.exceptions import default_exceptions

    error = default_exceptions[status]()
    error.nudgelab_message = message  # type: ignore[attr-defined]
    return error
