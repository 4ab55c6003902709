"""The console's blueprint: every page lives under ``/console``, every POST carries a CSRF
token, and no page is cached."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from flask_wtf.csrf import generate_csrf

bp = Blueprint("console", __name__, url_prefix="/console")

#: Console endpoints that take bodies larger than ``NUDGELAB_MAX_CONTENT_LENGTH`` (uploads of
#: trial files with their media), and their limits in bytes.
LARGE_BODIES: dict[str, int] = {}


@bp.before_request
def _check_csrf() -> None:
    """Refuse (400) a console POST without the form's CSRF token (or X-CSRFToken header)."""
    if request.method == "POST":
        limit = LARGE_BODIES.get(request.endpoint or "")
        if limit is not None:
            request.max_content_length = limit
        current_app.extensions["csrf"].protect()


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    # Over HTTPS Flask-WTF also checks that a POST's Referer is this site; the app's default
    # (no-referrer) would make every console form fail there, so send it to this origin only.
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@bp.app_template_global()
def csrf_token() -> str:
    """The CSRF token for a console form's hidden field."""
    return generate_csrf()
