"""Errors, translated once at the boundary: one JSON shape for the API, one HTML page otherwise.

The API always answers ``{"error": {"message": ..., "field": ...}}``; a visitor or operator
always sees a page that says what happened and what to do, never a traceback. On a kiosk URL
that page is never a dead end: it links to the kiosk's start screen and returns there by itself
after the inactivity time, in the visit's language. A database that
cannot be reached is a 503 (the kiosk's event queue retries), any other surprise a 500.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from flask import Flask, Response, current_app, g, jsonify, render_template, request, session
from flask_babel import gettext as _
from flask_babel.speaklater import LazyString
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, InternalServerError


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
    return request.path.startswith("/api/")


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


def _http_error(error: HTTPException) -> Response | tuple[str, int]:
    status = error.code or 500
    if _wants_json():
        messages = {
            404: "no such endpoint; see /api/v1/openapi.json",
            405: f"method {request.method} is not allowed here; see /api/v1/openapi.json",
            413: "request body too large",
            415: "send the body as JSON (Content-Type: application/json)",
        }
        return json_error(status, messages.get(status, error.description or error.name))
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
    return _page(status, titles.get(status, error.name), description)


def _database_down(error: Exception) -> Response | tuple[str, int]:
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
    return json_error(error.status, error.message, error.field)


def init_app(app: Flask) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OperationalError, _database_down)
    app.register_error_handler(DBAPIError, _database_down)
    app.register_error_handler(InternalServerError, _unexpected)
    app.register_error_handler(Exception, _unexpected)


def refuse(status: int, message: str | LazyString) -> HTTPException:
    """An HTTP error whose page shows ``message`` (a translated sentence; a lazy one is
    translated when the page is rendered, in the visit's language)."""
    from werkzeug.exceptions import default_exceptions

    error = default_exceptions[status]()
    error.nudgelab_message = message  # type: ignore[attr-defined]
    return error
