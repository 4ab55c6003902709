"""``POST /api/v1/events``: idempotent, all-or-nothing, one error shape, never a 500."""

from __future__ import annotations

import io
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.db import get_engine
from experiments.eventlog import events
from experiments.model import Trial
from tests.app.visitor import Visitor, add_kiosk
from tests.factories import race_outcome_with_opt_out


def _count(app: Flask) -> int:
    with get_engine(app).connect() as conn:
        return conn.execute(select(func.count()).select_from(events)).scalar_one()


def _error(response) -> dict:  # type: ignore[no-untyped-def]
    """The body of an error response, checked against the one error shape."""
    assert response.is_json, response.get_data(as_text=True)
    body = response.json
    assert set(body) == {"error"} and set(body["error"]) == {"message", "field"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


@pytest.fixture
def started(visitor: Visitor) -> Visitor:
    visitor.arrives()
    visitor.starts_in("en")
    return visitor


def _event(visitor: Visitor, type_: str = "contact_requested", **extra: object) -> dict:
    return {
        "visit_id": visitor.visit_id,
        "type": type_,
        "idempotency_key": uuid.uuid4().hex,
        **extra,
    }


def test_a_retried_event_is_stored_once(app: Flask, started: Visitor) -> None:
    event = _event(started, occurred_at=datetime.now(UTC).isoformat(), language="ar")
    before = _count(app)
    for _ in range(3):  # e.g. the connection dropped before the answer arrived
        response = started.post_events(event)
        assert response.status_code == 200
    assert response.json["results"][0]["status"] == "duplicate"
    assert _count(app) == before + 1
    batch = {"events": [event, _event(started, "country_info_opened")]}
    statuses = [r["status"] for r in started.post_events(batch).json["results"]]
    assert statuses == ["duplicate", "stored"]
    assert _count(app) == before + 2


@pytest.mark.parametrize("second_type", ["contact_requested", "country_info_opened"])
def test_a_key_used_twice_in_one_batch_is_400_and_nothing_is_written(
    app: Flask, started: Visitor, second_type: str
) -> None:
    """The same event twice, or two events sharing a key: the second would be lost as a
    "duplicate" of the first, so the whole batch is refused and the event named."""
    before = _count(app)
    first = _event(started)
    batch = {"events": [first, _event(started), {**first, "type": second_type}]}
    response = started.post_events(batch)
    assert response.status_code == 400
    assert _error(response)["field"] == "events.2.idempotency_key"
    assert _count(app) == before
    single = started.post_events(first)  # the key itself is fine
    assert single.json["results"][0]["status"] == "stored"


def test_an_undeclared_event_is_refused_and_nothing_is_written(
    app: Flask, started: Visitor
) -> None:
    before = _count(app)
    batch = {"events": [_event(started), _event(started, "clicked_ad")]}
    response = started.post_events(batch)
    assert response.status_code == 400
    error = _error(response)
    assert error["field"] == "events.1.type" and "not declared" in error["message"]
    assert _count(app) == before  # the valid first event was not written either


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ([1, 2], 400, None),
        ("just a string", 400, None),
        ({}, 400, "visit_id"),
        ({"events": []}, 400, "events"),
        ({"events": "many"}, 400, "events"),
        ({"visit_id": 5, "type": "finish", "idempotency_key": "a" * 20}, 400, "visit_id"),
        ({"visit_id": "v", "type": ["finish"], "idempotency_key": "a" * 20}, 400, "type"),
        ({"visit_id": "v", "type": "finish", "idempotency_key": "short"}, 400, "idempotency_key"),
        ({"visit_id": "v", "type": "finish", "idempotency_key": "a" * 20, "ip": "1"}, 400, "ip"),
        (
            {"visit_id": "v", "type": "finish", "idempotency_key": "a" * 20, "note": None},
            400,
            "note",
        ),
        ({"visit_id": "v\x00", "type": "finish", "idempotency_key": "a" * 20}, 400, "visit_id"),
        (
            {"visit_id": "unknown", "type": "contact_requested", "idempotency_key": "a" * 20},
            400,
            "visit_id",
        ),
    ],
)
def test_wrong_shapes_and_types_are_400(
    app: Flask, started: Visitor, body: object, status: int, field: str | None
) -> None:
    response = started.post_events(body)
    assert response.status_code == status
    assert _error(response)["field"] == field
    assert _count(app) == 1  # only the exposure of the started visit


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2027-01-04T10:15:00"}, "occurred_at"),  # no time zone
        ({"occurred_at": 1735980000}, "occurred_at"),
        ({"language": "xx"}, "language"),
        ({"type": "exposure"}, "type"),  # only the server logs exposures
        ({"type": "language_switch"}, "type"),
        ({"type": "finish"}, "type"),  # the kiosk's pages post these to the server
        ({"type": "timeout"}, "type"),
        ({"type": "opt_out"}, "type"),
    ],
)
def test_invalid_values_are_400(app: Flask, started: Visitor, change: dict, field: str) -> None:
    response = started.post_events(_event(started, **change))
    assert response.status_code == 400 and _error(response)["field"] == field
    assert _count(app) == 1


def _stored_time(app: Flask, key: str) -> datetime:
    with get_engine(app).connect() as conn:
        moment = conn.execute(
            select(events.c.occurred_at).where(events.c.idempotency_key == key)
        ).scalar_one()
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment  # SQLite: no offset


def test_occurred_at_is_stored_in_utc_and_must_lie_within_the_visit(
    app: Flask, started: Visitor
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    karachi = now.astimezone(timezone(timedelta(hours=5)))
    event = _event(started, occurred_at=karachi.isoformat())  # e.g. ...T09:24:00+05:00
    assert event["occurred_at"].endswith("+05:00")
    assert started.post_events(event).status_code == 200
    assert _stored_time(app, event["idempotency_key"]) == now  # the same moment, in UTC
    zulu = _event(started, occurred_at=now.isoformat().replace("+00:00", "Z"))
    assert started.post_events(zulu).status_code == 200
    assert _stored_time(app, zulu["idempotency_key"]) == now

    before = _count(app)
    for moment in [
        "0001-01-01T00:00:00+05:00",  # before year 1 in UTC
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-05:00",  # after year 9999 in UTC
        "2999-01-01T00:00:00Z",
        (now - timedelta(minutes=10)).isoformat(),  # before the visit started
        (now + timedelta(minutes=10)).isoformat(),  # in the future
    ]:
        response = started.post_events(_event(started, occurred_at=moment))
        assert response.status_code == 400, moment
        assert _error(response)["field"] == "occurred_at", moment
        batch = {"events": [_event(started), _event(started, occurred_at=moment)]}
        response = started.post_events(batch)
        assert response.status_code == 400 and _error(response)["field"] == "events.1.occurred_at"
    late_clock = (now - timedelta(minutes=2)).isoformat()  # a little slack for kiosk clocks
    assert started.post_events(_event(started, occurred_at=late_clock)).status_code == 200
    assert _count(app) == before + 1


def test_malformed_json_huge_bodies_and_deep_nesting_never_500(
    app: Flask, started: Visitor
) -> None:
    headers = {"Authorization": f"Bearer {started.token}", "Content-Type": "application/json"}
    post = started.client.post
    cases = {
        "truncated": (b'{"visit_id": "', 400),
        "not utf-8": (b'{"visit_id": "\xff\xfe"}', 400),
        "deep nesting": (b"[" * 50_000 + b"]" * 50_000, 413),
        "nested within the limit": (b"[" * 30_000 + b"]" * 30_000, 400),
        "huge": (json.dumps({"events": [_event(started)] * 5000}).encode(), 413),
        "empty": (b"", 400),
    }
    for name, (data, status) in cases.items():
        response = post("/api/v1/events", data=data, headers=headers)
        assert response.status_code == status, name
        _error(response)
    too_many = {"events": [_event(started) for _ in range(101)]}
    response = started.post_events(too_many)
    assert response.status_code == 400 and _error(response)["field"] == "events"
    form = post(
        "/api/v1/events", data={"a": "b"}, headers={"Authorization": headers["Authorization"]}
    )
    assert form.status_code == 415 and _error(form)
    assert _count(app) == 1


def test_kiosk_token_is_required_and_limits_the_visits(
    app: Flask, factory_trial: Trial, started: Visitor
) -> None:
    event = _event(started)
    no_token = started.client.post("/api/v1/events", json=event)
    assert no_token.status_code == 401 and _error(no_token)["field"] == "Authorization"
    wrong = started.post_events(event, token="not-a-kiosk")
    assert wrong.status_code == 403 and _error(wrong)["field"] == "Authorization"
    other_kiosk = add_kiosk(app, factory_trial, "loc-b").rstrip("/").rsplit("/", 1)[1]
    response = started.post_events(event, token=other_kiosk)  # not this kiosk's visit
    assert response.status_code == 400 and _error(response)["field"] == "visit_id"
    assert _count(app) == 1


def test_a_key_reused_for_another_event_is_409(app: Flask, started: Visitor) -> None:
    event = _event(started)
    started.post_events(event)
    response = started.post_events({**event, "type": "country_info_opened"})
    assert response.status_code == 409 and _error(response)["field"] == "idempotency_key"
    batch = {"events": [_event(started), {**event, "type": "country_info_opened"}]}
    response = started.post_events(batch)
    assert response.status_code == 409
    assert _error(response)["field"] == "events.1.idempotency_key"
    assert _count(app) == 2  # the exposure and the first event, nothing of the refused batches


def test_server_only_events_are_refused_and_the_pages_still_log_them(
    app: Flask, started: Visitor
) -> None:
    """A client cannot end a visit or opt it out through the API (with keys of its choosing,
    a visit could end several times); the kiosk's own pages still do, once each (the opt-out
    page: see the race test below)."""
    for type_ in ("finish", "timeout", "opt_out"):
        batch = {"events": [_event(started), _event(started, type_)]}
        response = started.post_events(batch)
        assert response.status_code == 400 and _error(response)["field"] == "events.1.type"
    assert started.logged() == ["exposure"]
    visit_id = started.visit_id
    started.finishes()
    started.finishes()  # a second tap stores nothing more
    assert started.logged(visit_id) == ["exposure", "finish"]


def test_an_opt_out_and_an_outcome_posted_at_once_never_leave_the_outcome(
    app: Flask, kiosk_path_a: str
) -> None:
    """The API against the kiosk's opt-out page: for 20 visits, an outcome (API) and the
    opt-out (page) are posted at the same moment from two threads. Either the outcome is stored
    first and deleted by the opt-out, or it is discarded. The kiosk is known before each race
    (an event of a visit that stays in), so the outcome is first tried by the known kiosk's one
    INSERT (experiments.store.known_kiosks), and by the full path if that stores nothing."""
    visitors = {}
    for _ in range(21):
        visitor = Visitor(app, kiosk_path_a)
        visitor.arrives()
        visitor.starts_in("en")
        visitors[visitor.visit_id] = visitor
    staying = visitors.pop(visitor.visit_id)
    statuses: list[int] = []

    def send(visit_id: str, kind: str, barrier: threading.Barrier) -> None:
        visitor = visitors[visit_id]
        if kind == "opt_out":
            barrier.wait(timeout=10)
            statuses.append(visitor.client.post(visitor.path + "opt-out").status_code)
            return
        client = app.test_client()
        body = {"visit_id": visit_id, "type": kind, "idempotency_key": uuid.uuid4().hex}
        headers = {"Authorization": f"Bearer {visitor.token}"}
        assert staying.post_events(_event(staying)).status_code == 200  # the kiosk is known
        barrier.wait(timeout=10)
        statuses.append(client.post("/api/v1/events", json=body, headers=headers).status_code)

    race_outcome_with_opt_out(list(visitors), send)
    assert statuses == [200] * 40
    with get_engine(app).connect() as conn:
        kept = conn.execute(
            select(events.c.visit_id, events.c.type).where(
                events.c.visit_id.in_(list(visitors)), events.c.type != "exposure"
            )
        ).all()
    assert sorted(type_ for _, type_ in kept) == ["opt_out"] * 20


def test_events_of_a_stopped_trial_are_still_accepted(
    app: Flask, factory_trial: Trial, started: Visitor
) -> None:
    """A queue that was offline when the trial stopped can still deliver."""
    from experiments import store

    with get_engine(app).begin() as conn:
        store.stop_trial(conn, factory_trial.id)
    assert started.post_events(_event(started)).status_code == 200


def test_every_api_error_has_the_one_shape(started: Visitor) -> None:
    for response in [
        started.client.get("/api/v1/nothing"),
        started.client.get("/api/v1/events"),
        started.client.put("/api/v1/events", json={}),
        started.post_events({"events": [{}]}),
    ]:
        assert 400 <= response.status_code < 500
        _error(response)


def test_database_outage_is_503_and_retryable(
    app: Flask, started: Visitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from experiments import store

    def down(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    event = _event(started)
    monkeypatch.setattr(store, "record_events", down)
    response = started.post_events(event)
    assert response.status_code == 503 and response.headers["Retry-After"]
    _error(response)
    monkeypatch.undo()
    assert started.post_events(event).json["results"][0]["status"] == "stored"


def test_an_oversized_chunked_body_is_413_not_malformed_json(app: Flask, started: Visitor) -> None:
    """Without Content-Length (chunked), the server reads up to the limit and stops: that is
    "too large", not "not valid JSON" (gunicorn sets wsgi.input_terminated for such bodies)."""

    def chunked(body: bytes):  # type: ignore[no-untyped-def]
        return started.client.post(
            "/api/v1/events",
            input_stream=io.BytesIO(body),
            headers={
                "Authorization": f"Bearer {started.token}",
                "Content-Type": "application/json",
                "Transfer-Encoding": "chunked",
            },
            environ_overrides={"wsgi.input_terminated": True},
        )

    huge = chunked(json.dumps({"events": [_event(started)] * 5000}).encode())
    assert huge.status_code == 413 and "too large" in _error(huge)["message"]
    small = chunked(json.dumps(_event(started)).encode())
    assert small.status_code == 200, small.json
    assert _count(app) == 2
