"""The per-address counters of :mod:`app.limits` on their own: their keys, several rates in one
setting, and a storage that fails and comes back (tests/app/test_limits.py checks the limits
through the app, with Redis when it is there)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from limits.storage import MemoryStorage

from app.limits import (
    EXTENSION_KEY,
    AddressLimit,
    Counters,
    LimitReached,
    client_key,
    init_app,
    retry_after,
)


class FlakyStorage(MemoryStorage):
    """Memory storage that raises like an unreachable Redis while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.checks = 0

    def _fail(self) -> None:
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    def incr(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._fail()
        return super().incr(*args, **kwargs)

    def get(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._fail()
        return super().get(*args, **kwargs)

    def check(self) -> bool:
        self.checks += 1
        return not self.down


@pytest.fixture
def flask_app() -> Iterator[Flask]:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "counter-test-secret"
    with app.test_request_context(environ_base={"REMOTE_ADDR": "203.0.113.7"}):
        yield app


def test_the_keys_are_the_ones_flask_limiter_used(flask_app: Flask) -> None:
    """A counter's key is ``LIMITER/nudgelab/<hash of the address>/<endpoint>/<rate>``, as
    before, so counters kept in Redis carry over an upgrade; the address is not in it."""
    storage = MemoryStorage()
    counters = Counters(storage, flask_app.logger)
    limit = AddressLimit.parse("10/minute", "api.post_events")
    counters.hit(limit)
    counters.hit(limit)
    key = f"LIMITER/nudgelab/{client_key()}/api.post_events/10/1/minute"
    assert list(storage.storage) == [key]
    assert storage.get(key) == 2
    assert "203.0.113.7" not in key


def test_several_rates_are_counted_shortest_window_first(flask_app: Flask) -> None:
    counters = Counters(MemoryStorage(), flask_app.logger)
    limit = AddressLimit.parse("5/minute;2/second", "kiosk.start")
    assert [item.get_expiry() for item in limit.items] == [1, 60]
    counters.hit(limit)
    counters.hit(limit)
    with pytest.raises(LimitReached) as reached:
        counters.hit(limit)
    assert reached.value.code == 429 and reached.value.item.get_expiry() == 1
    assert retry_after() == 1


def test_a_check_counts_nothing_until_added(flask_app: Flask) -> None:
    counters = Counters(MemoryStorage(), flask_app.logger)
    limit = AddressLimit.parse("2/minute", "api.post_events")
    for _ in range(5):
        keys = counters.check(limit)
    counters.add(limit, keys)
    counters.add(limit, counters.check(limit))
    with pytest.raises(LimitReached):
        counters.check(limit)
    assert 1 <= retry_after() <= 60


def test_a_failing_storage_is_replaced_by_memory_until_it_answers_again(
    flask_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """The first failure is logged once (without the address in the error) and the counting
    goes on in memory; the storage is asked again after a second, and counts again once it
    answers."""
    storage = FlakyStorage()
    counters = Counters(storage, flask_app.logger)
    limit = AddressLimit.parse("3/minute", "api.post_events")
    storage.down = True
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            counters.add(limit, counters.check(limit))
        with pytest.raises(LimitReached):
            counters.check(limit)
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "counting in memory" in warnings[0].getMessage()
    assert "127.0.0.1" not in caplog.text
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert storage.checks == 0  # not asked again within the first second
    storage.down = False
    time.sleep(1.1)
    with caplog.at_level(logging.INFO):
        counters.check(limit)  # the storage answers: its own, empty, counter again
    assert storage.checks == 1
    assert "reachable again" in caplog.records[-1].getMessage()
    counters.add(limit, counters.check(limit))
    assert list(storage.storage.values()) == [1]


def test_init_app_limits_only_the_three_views() -> None:
    """The counting wraps the limited views; no hook runs for the other requests."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="counter-test-secret",
        REDIS_URL=None,
        START_LIMIT=None,
        BAD_TOKEN_LIMIT="2/minute",
        SIGN_IN_LIMIT=None,
    )

    @app.post("/api/v1/events", endpoint="api.post_events")
    def post_events():  # type: ignore[no-untyped-def]
        return {"error": "no token"}, 401

    @app.get("/other")
    def other():  # type: ignore[no-untyped-def]
        return {"error": "no token"}, 401

    init_app(app)
    assert not app.before_request_funcs
    client = app.test_client()
    assert [client.get("/other").status_code for _ in range(4)] == [401] * 4
    statuses = [client.post("/api/v1/events").status_code for _ in range(4)]
    assert statuses == [401, 401, 429, 429]
    assert isinstance(app.extensions[EXTENSION_KEY], Counters)
