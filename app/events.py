"""The idempotent JSON event API: ``POST /api/v1/events`` (one event or a batch).

A kiosk page queues each event with a client-generated idempotency key and retries until the
server acknowledges it, so a dropped connection or a database restart loses nothing and a
retry is stored once. Bad input is a 4xx with ``{"error": {"message", "field"}}`` and nothing
is written; a database that cannot be reached is a 503 (retry later). A key used twice in one
request, and the event types only the server logs (:data:`SERVER_ONLY`), are 400. The OpenAPI
document (:mod:`app.openapi`) describes exactly this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, field_validator
from sqlalchemy import Connection, text

from app import openapi
from app.db import commit, get_connection
from app.errors import ApiError
from experiments import store
from experiments.model import Trial

bp = Blueprint("api", __name__, url_prefix="/api/v1")

#: Event types only the server logs (:data:`app.openapi.SERVER_ONLY`): when it renders a page
#: or switches the language, and the end of a visit and an opt-out, which the kiosk's own pages
#: post to it (with keys it makes from the visit, so each is stored once per visit).
SERVER_ONLY = openapi.SERVER_ONLY

#: How far a kiosk's clock may be off: ``occurred_at`` may be this much before the visit's start
#: (as the server saw it) and this much after the server's "now", no more.
CLOCK_SLACK = timedelta(minutes=5)


class EventIn(BaseModel):
    """One event as a kiosk sends it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    visit_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,36}$")]
    type: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    idempotency_key: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16,64}$")]
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")] | None = None
    occurred_at: Annotated[str, StringConstraints(max_length=40)] | None = None

    @field_validator("occurred_at")
    @classmethod
    def _aware_timestamp(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time, e.g. 2027-01-04T10:15:00Z") from None
        if moment.tzinfo is None:
            raise ValueError("must include a time zone, e.g. 2027-01-04T10:15:00Z")
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range") from None
        return value

    @property
    def moment(self) -> datetime | None:
        """``occurred_at`` in UTC (stored so: SQLite keeps no offset)."""
        if self.occurred_at is None:
            return None
        return datetime.fromisoformat(self.occurred_at).astimezone(UTC)


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    events: list[EventIn]


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _parse_body() -> tuple[list[EventIn], str]:
    """The request's events and the field prefix of each (``events.<i>.`` for a batch)."""
    if not request.is_json:
        raise ApiError(415, "send the body as JSON (Content-Type: application/json)")
    body = request.get_data(cache=False)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(body) >= limit:
        # A body without Content-Length (chunked) is read up to the limit and cut off there:
        # too large, not malformed.
        raise ApiError(413, "request body too large")
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise ApiError(400, f"the body is not valid JSON: {error.__class__.__name__}") from None
    if not isinstance(data, dict):
        raise ApiError(400, 'send one event object, or {"events": [event, ...]}')
    batch = "events" in data
    try:
        parsed = BatchIn.model_validate(data).events if batch else [EventIn.model_validate(data)]
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        raise ApiError(400, first["msg"], _field(tuple(first["loc"])) or None) from None
    limit = current_app.config["MAX_EVENTS_PER_REQUEST"]
    if batch and not 1 <= len(parsed) <= limit:
        raise ApiError(400, f"a batch holds 1 to {limit} events", "events")
    return parsed, "events." if batch else ""


def _check_events(parsed: list[EventIn], prefix: str) -> None:
    """The rules that need no database: no server-only type, each key once in the request."""
    seen: set[str] = set()
    for index, event in enumerate(parsed):
        at = f"{prefix}{index}." if prefix else ""
        if event.type in SERVER_ONLY:
            raise ApiError(400, f"{event.type!r} is logged by the kiosk server itself", at + "type")
        if event.idempotency_key in seen:
            raise ApiError(
                400,
                "this idempotency_key is used twice in the batch; generate a new key per event",
                at + "idempotency_key",
            )
        seen.add(event.idempotency_key)


def _token() -> str:
    """The kiosk token of the request (401 without one)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, "send the kiosk token as 'Authorization: Bearer <token>'", "Authorization"
        )
    return token.strip()


def _check_kiosk(token: str) -> None:
    """403 unless the token is a switched-on kiosk's (asked only when a request fails)."""
    kiosk = store.find_kiosk(get_connection(), token)
    if kiosk is None or not kiosk.active:
        raise ApiError(403, "this kiosk token is not valid or switched off", "Authorization")


def _check_time(moment: datetime | None, visit_started: datetime, field: str) -> None:
    """Refuse a time before the visit started or in the future (beyond :data:`CLOCK_SLACK`)."""
    if moment is None:
        return
    if moment < visit_started - CLOCK_SLACK:
        raise ApiError(
            400,
            f"is before the visit started ({visit_started.isoformat(timespec='seconds')}); "
            "check the kiosk's clock, or leave occurred_at out",
            field,
        )
    if moment > datetime.now(UTC) + CLOCK_SLACK:
        raise ApiError(
            400, "is in the future; check the kiosk's clock, or leave occurred_at out", field
        )


@dataclass
class _Group:
    """The events of one trial version, with their places in the request."""

    trial: Trial
    allowed: frozenset[str]
    indices: list[int] = field(default_factory=list)
    specs: list[store.EventSpec] = field(default_factory=list)


def _groups(parsed: list[EventIn], prefix: str, own: dict[str, store.EventVisit]) -> list[_Group]:
    """Check every event before anything is written, each against the trial version its visit
    started with; group them by that version."""
    conn = get_connection()
    groups: dict[tuple[str, str], _Group] = {}
    for index, event in enumerate(parsed):
        at = f"{prefix}{index}." if prefix else ""
        if event.visit_id not in own:
            raise ApiError(400, "unknown visit for this kiosk", at + "visit_id")
        visit = own[event.visit_id]
        moment = event.moment
        _check_time(moment, visit.started_at, at + "occurred_at")
        version = (visit.trial_id, visit.trial_version)
        if version not in groups:
            trial = store.trial_at_version(conn, *version)
            groups[version] = _Group(trial, store.allowed_events(trial) - SERVER_ONLY)
        group = groups[version]
        undeclared = _undeclared(event, group.trial, group.allowed, at)
        if undeclared is not None:
            raise undeclared
        group.indices.append(index)
        group.specs.append(_spec(event, moment))
    return list(groups.values())


def _undeclared(event: EventIn, trial: Trial, allowed: frozenset[str], at: str) -> ApiError | None:
    """The 400 for an event whose type (not in ``allowed``) or language ``trial`` does not
    declare, else None (``at``: the field prefix of the event)."""
    if event.type not in allowed:
        return ApiError(
            400,
            f"event {event.type!r} is not declared by trial {trial.id!r}; "
            f"allowed: {', '.join(sorted(allowed))}",
            at + "type",
        )
    if event.language is not None and event.language not in trial.languages:
        return ApiError(400, f"{event.language!r} is not a language of the trial", at + "language")
    return None


def _spec(event: EventIn, moment: datetime | None) -> store.EventSpec:
    """``event`` as the store takes it, at ``moment`` (its time in UTC)."""
    return store.EventSpec(
        event.visit_id, event.type, event.idempotency_key, event.language, occurred_at=moment
    )


def _key_conflict(at: str) -> ApiError:
    return ApiError(
        409,
        "this idempotency_key was already used for a different event; generate a new key per event",
        at + "idempotency_key",
    )


def _conflicting(parsed: list[EventIn], prefix: str) -> ApiError:
    """The 409 for the first event whose key is stored for a different event."""
    stored = store.stored_events(get_connection(), [event.idempotency_key for event in parsed])
    for index, event in enumerate(parsed):
        earlier = stored.get(event.idempotency_key)
        if earlier is not None and earlier != (event.visit_id, event.type):
            return _key_conflict(f"{prefix}{index}." if prefix else "")
    return _key_conflict(prefix)  # not found again: name no event


@bp.post("/events")
def post_events():  # type: ignore[no-untyped-def]
    """Store one event or a batch, idempotently; answer what happened to each.

    Once a request with a token has been stored, the process knows that token's kiosk and its
    visits' trial version (:class:`experiments.store.KnownKiosk`): the next requests are one
    INSERT that checks all of it again as it writes, committed with it
    (:mod:`experiments.store.known_kiosks`). If that INSERT stores nothing (a retry, another
    trial version, a kiosk switched off, an opt-out ...), or the kiosk is not known, the full
    path answers: one query that checks the kiosk and reads and locks the visits
    (:func:`experiments.store.lock_kiosk_visits`), one INSERT per trial version and the commit
    (a single event's INSERT commits with it). The kiosk alone is looked up only for a request
    that fails, so that an unknown or switched-off token is answered 403 before anything about
    its body.
    """
    token = _token()
    try:
        parsed, prefix = _parse_body()
        _check_events(parsed, prefix)
    except ApiError:
        _check_kiosk(token)
        raise
    conn = get_connection()
    if _record_for_known_kiosk(conn, token, parsed):
        return _answer(parsed, ["stored"] * len(parsed))
    visit_ids = [event.visit_id for event in parsed]
    found = store.lock_kiosk_visits(conn, token, visit_ids, opt_out=False)  # opt_out: server-only
    own = found.visits
    if len(own) < len(set(visit_ids)):
        _check_kiosk(token)
    groups = _groups(parsed, prefix, own)
    outcomes: list[store.EventStatus] = ["stored"] * len(parsed)
    try:
        for group in groups:
            stored = store.record_events(
                conn, group.trial, group.specs, visits_locked=True, commit=len(groups) == 1
            )
            for index, outcome in zip(group.indices, stored, strict=True):
                outcomes[index] = outcome
    except store.IdempotencyConflict:
        error = _conflicting(parsed, prefix)
        conn.rollback()
        raise error from None
    except store.RecordingError as error:
        conn.rollback()
        raise ApiError(400, error.message, error.field) from None
    commit()
    known = store.KnownKiosk.from_found(token, found)
    if known is not None:
        _known_kiosks()[known.token_hash] = known
    return _answer(parsed, outcomes)


def _answer(parsed: list[EventIn], outcomes: list[store.EventStatus]):  # type: ignore[no-untyped-def]
    results = [
        {"idempotency_key": event.idempotency_key, "status": outcome}
        for event, outcome in zip(parsed, outcomes, strict=True)
    ]
    return jsonify({"results": results})


#: Kiosks a process remembers (one per token the full path accepted); past this many it
#: forgets them all and learns again.
KNOWN_KIOSKS_KEPT = 1024


def _known_kiosks() -> dict[str, store.KnownKiosk]:
    """This app's known kiosks by token hash (see :mod:`experiments.store.known_kiosks`)."""
    known: dict[str, store.KnownKiosk] = current_app.extensions.setdefault(
        "nudgelab.known_kiosks", {}
    )
    if len(known) > KNOWN_KIOSKS_KEPT:
        known.clear()
    return known


def _record_for_known_kiosk(conn: Connection, token: str, parsed: list[EventIn]) -> bool:
    """Store the request's events in one checked INSERT if the kiosk of this token is known and
    every event is one the full path would store now; whether they were (if not, nothing was
    written and the kiosk is forgotten until the full path succeeds again)."""
    known_kiosks = _known_kiosks()
    token_hash = store.token_hash(token)
    known = known_kiosks.get(token_hash)
    now = datetime.now(UTC)
    if known is None or not known.usable(now):
        return False
    try:
        trial = store.trial_at_version(conn, known.trial_id, known.trial_version)
    except store.StoredTrialError:  # no longer stored: the full path finds out what is
        trial = None
    if trial is not None:
        specs = _specs_for(trial, parsed, now)
        if specs and store.record_for_known_kiosk(conn, known, trial, specs, slack=CLOCK_SLACK):
            return True
    known_kiosks.pop(token_hash, None)
    return False


def _specs_for(trial: Trial, parsed: list[EventIn], now: datetime) -> list[store.EventSpec]:
    """The events as specs of ``trial``, or none if any of them needs the full path's checks
    (a type or language the trial does not declare, a time too far in the future)."""
    allowed = store.allowed_events(trial) - SERVER_ONLY
    specs = []
    for event in parsed:
        moment = event.moment
        if _undeclared(event, trial, allowed, "") or (moment and moment > now + CLOCK_SLACK):
            return []
        specs.append(_spec(event, moment))
    return specs


@bp.get("/health")
def health():  # type: ignore[no-untyped-def]
    """Whether the app can reach its database (for monitoring a kiosk)."""
    get_connection().execute(text("SELECT 1"))
    return jsonify({"status": "ok"})


@bp.get("/openapi.json")
def openapi_document():  # type: ignore[no-untyped-def]
    """The OpenAPI 3.1 description of this API."""
    slack = int(CLOCK_SLACK.total_seconds() // 60)
    return jsonify(openapi.document(current_app.config["MAX_EVENTS_PER_REQUEST"], slack))
