"""Two session cookies: the kiosk's visit cookie and the console's sign-in cookie.

Flask has one session per app; :class:`SplitSessions` gives requests under ``/console`` their
own cookie (``nudgelab_console``, path ``/console``, signed with a salt of its own), and every
other request the kiosk's visit cookie (``nudgelab_visit``), except the kiosks' JSON API under
``/api/``, which is authenticated by its token alone and gets no session at all (no cookie read,
signed or set on the hot path of event ingest). So a visit cookie never signs
anyone in, a console cookie is never sent to a kiosk page, and neither can be swapped for the
other. Both are HttpOnly and SameSite=Strict, and Secure when ``NUDGELAB_SECURE_COOKIES`` is on.
"""

from __future__ import annotations

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin

from app.paths import is_api_path

CONSOLE_PREFIX = "/console"
CONSOLE_COOKIE = "nudgelab_console"


class _ConsoleCookie(SecureCookieSessionInterface):
    """The console's cookie: own name, path and signing salt."""

    salt = "nudgelab-console-session"

    def get_cookie_name(self, app: Flask) -> str:
        return CONSOLE_COOKIE

    def get_cookie_path(self, app: Flask) -> str:
        return (app.config.get("APPLICATION_ROOT") or "/").rstrip("/") + CONSOLE_PREFIX


def is_console_path(path: str) -> bool:
    """Whether a request path belongs to the console."""
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


class SplitSessions(SecureCookieSessionInterface):
    """The visit cookie everywhere but under ``/console``, where the console's cookie is used,
    and ``/api/``, where there is no session."""

    def __init__(self) -> None:
        self.console = _ConsoleCookie()

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if is_api_path(request.path):
            return self.make_null_session(app)  # Flask saves no null session
        if is_console_path(request.path):
            return self.console.open_session(app, request)
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if is_console_path(request.path):
            self.console.save_session(app, session, response)
        else:
            super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    """Use :class:`SplitSessions` for ``app``."""
    app.session_interface = SplitSessions()
