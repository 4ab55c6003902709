"""Which part of the app a request path belongs to."""

from __future__ import annotations

#: The kiosks' JSON API (:mod:`app.events`): token-authenticated, answered in JSON, no session.
API_PREFIX = "/api/"


def is_api_path(path: str) -> bool:
    """Whether a request path belongs to the kiosks' JSON API."""
    return path.startswith(API_PREFIX)
