"""The app's own limits: one visit start per kiosk and interval (decided in the database), and
per-address rate limits on visit starts and on API calls with bad kiosk tokens (429 with
Retry-After), in memory or in Redis."""

from __future__ import annotations

import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.db import get_engine
from app.limits import EXTENSION_KEY
from experiments.eventlog import visits
from tests.app.visitor import VISITOR_IP, Visitor
from tests.conftest import IN_CI

REDIS_URL = os.environ.get("NUDGELAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _visits(app: Flask) -> int:
    with get_engine(app).connect() as conn:
        return conn.execute(select(func.count()).select_from(visits)).scalar_one()


def _start(visitor: Visitor, language: str = "en"):  # type: ignore[no-untyped-def]
    return visitor.client.post(visitor.path + "start", data={"language": language})


# -- one visit per kiosk and interval ------------------------------------------------------


def test_100_starts_in_a_second_from_one_kiosk_create_one_visit(
    make_app: Callable[..., Flask], kiosk_path_a: str
) -> None:
    """A script (no cookies, 8 at a time) taps "start" 100 times as fast as it can: with the
    requests spread over two apps on the same database (two workers, each with its own memory
    and connections), the kiosk has one visit; every refused start is sent to that visit's
    page. The interval is 60 s (not the default 2 s) so that a slow, busy machine cannot let
    it run out during the test: the test checks the rule, not the machine's speed."""
    workers = [make_app(START_INTERVAL_SECONDS=60), make_app(START_INTERVAL_SECONDS=60)]

    def start(number: int) -> tuple[int, str, str | None]:
        visitor = Visitor(workers[number % 2], kiosk_path_a)
        response = _start(visitor)
        return response.status_code, response.headers.get("Location", ""), visitor.visit_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(start, range(100)))
    assert _visits(workers[0]) == 1
    with get_engine(workers[0]).connect() as conn:
        (only,) = conn.execute(select(visits.c.id)).scalars()
    assert {status for status, _, _ in answers} == {302}
    assert {location.rsplit("/", 1)[1] for _, location, _ in answers} == {"visit"}
    assert {visit_id for _, _, visit_id in answers} == {only}


def test_starts_in_a_row_make_at_most_one_visit_per_interval(
    make_app: Callable[..., Flask], kiosk_path_a: str
) -> None:
    """100 starts one after the other, 10 ms apart (about 1.5 s), with an interval of 0.25 s:
    no more visits than intervals begun, and more than one (the rule does not stop the kiosk
    for good)."""
    app = make_app(START_INTERVAL_SECONDS=0.25)
    began = time.monotonic()
    statuses = []
    for _ in range(100):
        statuses.append(_start(Visitor(app, kiosk_path_a)).status_code)
        time.sleep(0.01)
    elapsed = time.monotonic() - began
    assert set(statuses) == {302}
    created = _visits(app)
    assert 2 <= created <= int(elapsed / 0.25) + 1, (created, elapsed)


def test_a_double_tap_shows_the_visit_of_the_first_tap(
    make_app: Callable[..., Flask], kiosk_path_a: str
) -> None:
    app = make_app(START_INTERVAL_SECONDS=0.5)
    visitor = Visitor(app, kiosk_path_a)
    visitor.arrives()
    visitor.starts_in("en")
    first = visitor.visit_id
    arm = visitor.arm_of()
    again = visitor.starts_in("ar")  # the second tap, with the first one's cookie
    assert again.status_code == 200 and visitor.visit_id == first
    assert visitor.language == "en" and visitor.arm_of() == arm
    assert _visits(app) == 1
    time.sleep(0.6)  # the interval is over: the next visitor gets a new visit
    visitor.arrives()
    visitor.starts_in("en")
    assert visitor.visit_id != first and _visits(app) == 2


def test_a_refused_start_never_joins_a_visit_that_has_ended(
    make_app: Callable[..., Flask], kiosk_path_a: str
) -> None:
    """A visitor finishes (or opts out) within the interval and the next one taps "start": the
    start is still refused (one visit per interval), but the new visitor is sent to the welcome
    screen, not into the visit that has ended (before the fix they were given its cookie and
    saw its arm)."""
    app = make_app(START_INTERVAL_SECONDS=60)
    first = Visitor(app, kiosk_path_a)
    first.arrives()
    first.starts_in("en")
    ended = first.visit_id
    assert first.finishes().status_code in (200, 302)
    second = Visitor(app, kiosk_path_a)
    second.arrives()
    answer = _start(second)
    assert answer.status_code == 302 and answer.headers["Location"].endswith(kiosk_path_a)
    assert second.visit_id is None and second.visit_id != ended
    assert _visits(app) == 1


def test_the_interval_is_per_kiosk(make_app: Callable[..., Flask], factory_trial) -> None:  # type: ignore[no-untyped-def]
    from tests.app.visitor import add_kiosk

    app = make_app(START_INTERVAL_SECONDS=60)
    paths = [add_kiosk(app, factory_trial, location) for location in ("loc-a", "loc-b")]
    for path in paths:
        for _ in range(3):
            assert _start(Visitor(app, path)).status_code == 302
    assert _visits(app) == 2


# -- per-address limits (memory) -----------------------------------------------------------


def _other_address(visitor: Visitor, address: str = "198.51.100.23") -> Visitor:
    visitor.client.environ_base["REMOTE_ADDR"] = address
    return visitor


def test_starts_per_address_are_limited_with_429_and_retry_after(
    make_app: Callable[..., Flask], kiosk_path_a: str
) -> None:
    app = make_app(START_LIMIT="5/minute")
    statuses = [_start(Visitor(app, kiosk_path_a)).status_code for _ in range(5)]
    assert statuses == [302] * 5
    visitor = Visitor(app, kiosk_path_a)
    refused = _start(visitor)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    visitor.page = refused
    assert visitor.sees("The kiosk is busy")
    assert _visits(app) == 5
    assert _start(_other_address(Visitor(app, kiosk_path_a))).status_code == 302
    assert _visits(app) == 6


def _bad_token_call(visitor: Visitor):  # type: ignore[no-untyped-def]
    event = {"visit_id": "v", "type": "contact_requested", "idempotency_key": "a" * 32}
    return visitor.post_events(event, token="not-a-kiosk")


def _good_call(visitor: Visitor):  # type: ignore[no-untyped-def]
    event = {
        "visit_id": visitor.visit_id,
        "type": "contact_requested",
        "idempotency_key": uuid.uuid4().hex,
    }
    return visitor.post_events(event)


def test_bad_tokens_are_limited_per_address_and_good_calls_do_not_count(
    make_app: Callable[..., Flask], kiosk_path_a: str
) -> None:
    app = make_app(BAD_TOKEN_LIMIT="10/minute")
    visitor = Visitor(app, kiosk_path_a)
    visitor.arrives()
    visitor.starts_in("en")
    assert {_good_call(visitor).status_code for _ in range(30)} == {200}
    answers = [_bad_token_call(visitor) for _ in range(30)]
    assert [answer.status_code for answer in answers] == [403] * 10 + [429] * 20
    limited = answers[-1]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json["error"]["field"] is None and "retry in" in limited.json["error"]["message"]
    no_token = visitor.client.post("/api/v1/events", json={})
    assert no_token.status_code == 429
    # Every API call from that address waits (the kiosk's queue retries a 429) ...
    assert _good_call(visitor).status_code == 429
    # ... other addresses do not.
    assert _good_call(_other_address(visitor)).status_code == 200


def test_no_token_counts_as_a_bad_token(make_app: Callable[..., Flask], kiosk_path_a: str) -> None:
    app = make_app(BAD_TOKEN_LIMIT="3/minute")
    client = Visitor(app, kiosk_path_a).client
    statuses = [client.post("/api/v1/events", json={}).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


def test_limits_can_be_turned_off(make_app: Callable[..., Flask], kiosk_path_a: str) -> None:
    app = make_app(START_LIMIT=None, BAD_TOKEN_LIMIT=None)
    visitor = Visitor(app, kiosk_path_a)
    assert {_bad_token_call(visitor).status_code for _ in range(50)} == {403}
    assert {_start(Visitor(app, kiosk_path_a)).status_code for _ in range(50)} == {302}


def test_no_address_reaches_the_logs_or_the_counters(
    make_app: Callable[..., Flask], kiosk_path_a: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(BAD_TOKEN_LIMIT="2/minute")
    visitor = Visitor(app, kiosk_path_a)
    with caplog.at_level(logging.DEBUG):
        for _ in range(5):
            _bad_token_call(visitor)
    assert VISITOR_IP not in caplog.text
    storage = app.extensions[EXTENSION_KEY].storage
    keys = " ".join(str(key) for key in getattr(storage, "storage", {}))
    assert keys and VISITOR_IP not in keys


# -- Redis: counters shared by all workers ----------------------------------------------------


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis (``NUDGELAB_TEST_REDIS_URL``, database 15); skipped when unreachable on
    a developer machine, a failure with ``CI=true``."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        if IN_CI:
            pytest.fail(f"Redis at {REDIS_URL} is unreachable (CI=true): {error}")
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {error}")
    yield REDIS_URL
    client.close()


def test_redis_counts_for_all_workers_and_keeps_no_address(
    make_app: Callable[..., Flask], kiosk_path_a: str, redis_url: str
) -> None:
    import redis

    settings = {"REDIS_URL": redis_url, "BAD_TOKEN_LIMIT": "10/minute"}
    secret = secrets.token_hex(32)  # the counters' keys are new for this test
    workers = [make_app(SECRET_KEY=secret, **settings) for _ in range(2)]
    visitors = [Visitor(worker, kiosk_path_a) for worker in workers]
    statuses = [_bad_token_call(visitors[number % 2]).status_code for number in range(14)]
    assert statuses == [403] * 10 + [429] * 4
    client = redis.Redis.from_url(redis_url)
    keys = [key.decode() for key in client.scan_iter("*nudgelab*")]
    mine = [key for key in keys if client.get(key) == b"10"]
    assert mine, keys
    assert all(VISITOR_IP not in key for key in keys)
    assert all(0 < client.ttl(key) <= 60 for key in mine)  # gone with the window
    client.delete(*mine)
    client.close()


def test_a_redis_outage_leaves_the_kiosk_answering(
    make_app: Callable[..., Flask], kiosk_path_a: str
) -> None:
    """Redis at a closed port: the workers count in memory instead (and say so in the log)."""
    app = make_app(
        REDIS_URL="redis://127.0.0.1:1/0", BAD_TOKEN_LIMIT="3/minute", START_LIMIT="50/minute"
    )
    visitor = Visitor(app, kiosk_path_a)
    visitor.arrives()
    assert visitor.starts_in("en").status_code == 200
    assert _good_call(visitor).status_code == 200
    statuses = [_bad_token_call(visitor).status_code for _ in range(5)]
    assert statuses == [403, 403, 403, 429, 429]
