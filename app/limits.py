"""Rate limits per client address (Flask-Limiter): visit starts, API calls with bad tokens and
console sign-ins.

Three limits, each a setting (``docs/limits.md``):

* ``START_LIMIT``: ``POST …/start`` per address (all kiosks behind one address together);
* ``BAD_TOKEN_LIMIT``: API calls answered 401 or 403 (no, unknown or switched-off kiosk token)
  per address. Only such answers count; once the limit is reached, every API call from that
  address is answered 429 until the window is over (the kiosk's queue retries a 429);
* ``SIGN_IN_LIMIT``: ``POST /console/sign-in`` per address, whichever accounts they name (the
  lockout of :func:`experiments.store.users.authenticate` counts per account; this limit stops
  one address from trying many accounts). The console answers it with its own page
  (:mod:`app.console.auth`).

The limit on one kiosk's visits (``START_INTERVAL_SECONDS``) is not here: it is decided in the
database (:func:`experiments.store.recent_kiosk_visit`), so it holds across workers without
Redis.

The counters live in Redis when ``REDIS_URL`` is set (shared by all workers), else in each
worker's memory (each worker then counts on its own). Either way they are keyed by an HMAC of
the address under the secret key, never the address, and expire with their window; should
Redis fail, the workers count in memory until it is back. A limited request is answered 429
with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RateLimitExceeded

from app.errors import too_many_requests
from app.logs import scrub_logger

EXTENSION_KEY = "nudgelab.limiter"

#: The answers that count against ``BAD_TOKEN_LIMIT``.
BAD_TOKEN_STATUSES = frozenset({401, 403})
#: ``SIGN_IN_LIMIT`` when the configuration does not name it.
DEFAULT_SIGN_IN_LIMIT = "10/minute"


def client_key() -> str:
    """The counter key of the request's client: a keyed hash of its address (the address as
    the front server reports it, see :mod:`app.proxy`), never the address itself."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    address = (request.remote_addr or "").encode()
    return hmac.new(secret, address, hashlib.sha256).hexdigest()[:32]


def _bad_token(response: Response) -> bool:
    return response.status_code in BAD_TOKEN_STATUSES


def _limit_view(app: Flask, endpoint: str, decorate: Callable[[Callable], Callable]) -> None:
    app.view_functions[endpoint] = decorate(app.view_functions[endpoint])


def retry_after() -> int:
    """Seconds until the window of the limit this request reached is over (at least 1)."""
    limiter: Limiter = current_app.extensions[EXTENSION_KEY]
    current = limiter.current_limit
    if current is None:
        return 60
    wait = math.ceil(current.reset_at - time.time())
    return max(1, min(wait, current.limit.get_expiry()))


def _rate_limited(_error: RateLimitExceeded) -> Response:
    return too_many_requests(retry_after())


def init_app(app: Flask) -> None:
    """Apply the configured limits to the app's views (after its blueprints are registered)."""
    limiter = Limiter(
        client_key,
        app=app,
        storage_uri=app.config["REDIS_URL"] or "memory://",
        storage_options={"socket_connect_timeout": 1, "socket_timeout": 1},
        strategy="fixed-window",
        key_prefix="nudgelab",
        headers_enabled=False,
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    app.extensions[EXTENSION_KEY] = limiter
    if app.config["START_LIMIT"]:
        _limit_view(app, "kiosk.start", limiter.limit(app.config["START_LIMIT"]))
    if app.config["BAD_TOKEN_LIMIT"]:
        limit = limiter.limit(app.config["BAD_TOKEN_LIMIT"], deduct_when=_bad_token)
        _limit_view(app, "api.post_events", limit)
    sign_in_limit = app.config.get("SIGN_IN_LIMIT", DEFAULT_SIGN_IN_LIMIT)
    if sign_in_limit and "console.sign_in" in app.view_functions:
        # Only POSTs count: showing the form costs nothing.
        _limit_view(app, "console.sign_in", limiter.limit(sign_in_limit, methods=["POST"]))
    app.register_error_handler(RateLimitExceeded, _rate_limited)
    # Its messages name counter keys (hashes, not addresses); keep them to warnings and scrubbed.
    log = logging.getLogger("flask-limiter")
    log.setLevel(logging.WARNING)
    scrub_logger(log)
