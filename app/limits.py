"""Rate limits per client address: visit starts, API calls with bad tokens and console sign-ins.

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

Each limit is a fixed window of the :mod:`limits` library (the counting Flask-Limiter does,
with its keys), applied by a wrapper around its one view: only the three limited views pay for
counting. (Flask-Limiter's hooks ran for every request; on ``POST /api/v1/events`` they cost
about 0.1 ms of CPU per request, a fifth of the app's own time.)

The counters live in Redis when ``REDIS_URL`` is set (shared by all workers), else in each
worker's memory (each worker then counts on its own). Either way they are keyed by an HMAC of
the address under the secret key, never the address, and expire with their window; should
Redis fail, the worker counts in memory until Redis answers again, which it asks at most every
1, 2, 4 … 32 seconds; it logs a warning when it begins and when it ends (through the app's
logger, so they reach gunicorn's error log: Flask-Limiter's went to a logger without a
handler). A limited request is answered 429 with ``Retry-After``: a
:class:`flask_limiter.RateLimitExceeded`, which the app and the console's sign-in page answer.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_limiter import RateLimitExceeded
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.exceptions import TooManyRequests

from app.errors import too_many_requests

EXTENSION_KEY = "nudgelab.limiter"

#: The answers that count against ``BAD_TOKEN_LIMIT``.
BAD_TOKEN_STATUSES = frozenset({401, 403})
#: ``SIGN_IN_LIMIT`` when the configuration does not name it.
DEFAULT_SIGN_IN_LIMIT = "10/minute"
#: The first part of every counter's key (after the ``LIMITER/`` of :mod:`limits`).
KEY_PREFIX = "nudgelab"
#: Redis is asked whether it answers again after 2**n seconds, n = 0 … this, then from 0 again.
MAX_RECHECK_POWER = 5

#: ``g`` attributes: the limit a request reached (for :func:`retry_after`), and the limit a
#: bad-token answer of this request counts against.
_REACHED = "nudgelab_limit_reached"
_BAD_TOKENS = "nudgelab_bad_token_limit"


def client_key() -> str:
    """The counter key of the request's client: a keyed hash of its address (the address as
    the front server reports it, see :mod:`app.proxy`), never the address itself."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    address = (request.remote_addr or "").encode()
    return hmac.new(secret, address, hashlib.sha256).hexdigest()[:32]


class LimitReached(RateLimitExceeded):
    """429: the client's address reached ``item``."""

    def __init__(self, item: RateLimitItem) -> None:
        # Not RateLimitExceeded.__init__, which wants a limit object of Flask-Limiter's own.
        TooManyRequests.__init__(self, description=str(item))
        self.item = item


@dataclass(frozen=True)
class AddressLimit:
    """One setting's limits (``20/minute``, or several with ``;``) on one view, ``scope`` being
    its endpoint; the rates in the order they are counted (shortest window first)."""

    items: tuple[RateLimitItem, ...]
    scope: str

    @classmethod
    def parse(cls, setting: str, scope: str) -> AddressLimit:
        return cls(tuple(sorted(parse_many(setting))), scope)

    def keys(self) -> tuple[str, str, str]:
        """The identifiers of the request's counters (the same as Flask-Limiter's)."""
        return KEY_PREFIX, client_key(), self.scope


class Counters:
    """The per-address counters of one app: fixed windows in Redis or in memory, and in memory
    while Redis fails. Every call that finds Redis failing is answered from memory; an error
    there too is logged and the request let through (a limit must not stop the kiosk)."""

    def __init__(self, storage: Storage, logger: logging.Logger) -> None:
        self.storage = storage
        self._windows = FixedWindowRateLimiter(self.storage)
        self._memory = FixedWindowRateLimiter(MemoryStorage())
        self._logger = logger
        self._lock = threading.Lock()
        self._failing = False
        self._rechecks = 0
        self._rechecked_at = 0.0

    def _counter(self) -> FixedWindowRateLimiter:
        if self._failing and self._recheck_due() and self.storage.check():
            with self._lock:
                self._failing, self._rechecks = False, 0
            self._logger.warning("rate-limit storage reachable again: counting there")
        return self._memory if self._failing else self._windows

    def _recheck_due(self) -> bool:
        with self._lock:
            if self._rechecks > MAX_RECHECK_POWER:
                self._rechecks = 0
            now = time.monotonic()
            if now - self._rechecked_at <= 2**self._rechecks:
                return False
            self._rechecked_at, self._rechecks = now, self._rechecks + 1
            return True

    def _count(self, method: str, item: RateLimitItem, keys: tuple[str, str, str]) -> bool:
        """The counter's ``hit`` or ``test`` of ``item``; in memory when the storage fails."""
        counter = self._counter()
        try:
            return bool(getattr(counter, method)(item, *keys))
        except Exception as error:  # whatever the storage raises
            if counter is self._windows:
                self._storage_failed(error)
                try:
                    return bool(getattr(self._memory, method)(item, *keys))
                except Exception:  # logged below
                    pass
            self._logger.exception("rate limit not counted; the request is let through")
            return True

    def _storage_failed(self, error: Exception) -> None:
        with self._lock:
            if self._failing:
                return
            self._failing, self._rechecks, self._rechecked_at = True, 0, time.monotonic()
        self._logger.warning(
            "rate-limit storage unreachable (%s): counting in memory until it is back",
            error.__class__.__name__,
        )

    def hit(self, limit: AddressLimit) -> None:
        """Count the request against each of ``limit``'s rates; :class:`LimitReached` at the
        first one it exceeds."""
        keys = limit.keys()
        for item in limit.items:
            if not self._count("hit", item, keys):
                raise self._reached(item, keys)

    def check(self, limit: AddressLimit) -> tuple[str, str, str]:
        """:class:`LimitReached` when one of ``limit``'s rates is used up; the keys counted."""
        keys = limit.keys()
        for item in limit.items:
            if not self._count("test", item, keys):
                raise self._reached(item, keys)
        return keys

    def add(self, limit: AddressLimit, keys: tuple[str, str, str]) -> None:
        """Count a request (checked with :meth:`check`) against every rate of ``limit``."""
        for item in limit.items:
            self._count("hit", item, keys)

    def reset_at(self, item: RateLimitItem, keys: tuple[str, str, str]) -> int | None:
        """When the window of ``item``'s counter ends (a Unix time), or None if unknown."""
        try:
            return int(self._counter().get_window_stats(item, *keys).reset_time + 1)
        except Exception:  # the storage failing again: the window is not known
            return None

    def _reached(self, item: RateLimitItem, keys: tuple[str, str, str]) -> LimitReached:
        setattr(g, _REACHED, (self, item, keys))
        return LimitReached(item)


def retry_after() -> int:
    """Seconds until the window of the limit this request reached is over (at least 1)."""
    reached = g.get(_REACHED)
    if reached is None:
        return 60
    counters, item, keys = reached
    reset = counters.reset_at(item, keys)
    if reset is None:
        return item.get_expiry()
    return max(1, min(math.ceil(reset - time.time()), item.get_expiry()))


def _rate_limited(_error: RateLimitExceeded) -> Response:
    return too_many_requests(retry_after())


View = Callable[..., Any]


def _counting_requests(
    view: View, counters: Counters, limit: AddressLimit, methods: frozenset[str] | None = None
) -> View:
    """``view``, each request (of ``methods``) counted against ``limit`` before it runs."""

    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        if methods is None or request.method in methods:
            counters.hit(limit)
        return view(*args, **kwargs)

    return limited


def _counting_bad_tokens(view: View, counters: Counters, limit: AddressLimit) -> View:
    """``view``, refused while ``limit`` is used up; its 401 and 403 answers count against it
    (by :func:`_count_bad_tokens`)."""

    @wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        setattr(g, _BAD_TOKENS, (limit, counters.check(limit)))
        return view(*args, **kwargs)

    return limited


def _count_bad_tokens(response: Response) -> Response:
    counted = g.pop(_BAD_TOKENS, None)
    if counted is not None and response.status_code in BAD_TOKEN_STATUSES:
        limit, keys = counted
        current_app.extensions[EXTENSION_KEY].add(limit, keys)
    return response


def init_app(app: Flask) -> None:
    """Apply the configured limits to the app's views (after its blueprints are registered)."""
    storage = storage_from_string(
        app.config["REDIS_URL"] or "memory://", socket_connect_timeout=1, socket_timeout=1
    )
    counters = Counters(storage, app.logger)
    app.extensions[EXTENSION_KEY] = counters
    views = app.view_functions
    if app.config["START_LIMIT"]:
        limit = AddressLimit.parse(app.config["START_LIMIT"], "kiosk.start")
        views["kiosk.start"] = _counting_requests(views["kiosk.start"], counters, limit)
    if app.config["BAD_TOKEN_LIMIT"]:
        limit = AddressLimit.parse(app.config["BAD_TOKEN_LIMIT"], "api.post_events")
        views["api.post_events"] = _counting_bad_tokens(views["api.post_events"], counters, limit)
        app.after_request(_count_bad_tokens)
    sign_in_limit = app.config.get("SIGN_IN_LIMIT", DEFAULT_SIGN_IN_LIMIT)
    if sign_in_limit and "console.sign_in" in views:
        # Only POSTs count: showing the form costs nothing.
        limit = AddressLimit.parse(sign_in_limit, "console.sign_in")
        views["console.sign_in"] = _counting_requests(
            views["console.sign_in"], counters, limit, frozenset({"POST"})
        )
    app.register_error_handler(RateLimitExceeded, _rate_limited)
