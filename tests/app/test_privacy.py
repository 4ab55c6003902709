"""No personal data: the schema, the stored rows, the cookie, the logs, and no outside assets.

The allow list below is written out on purpose (not imported from ``experiments.eventlog``):
docs/ethics.md#what-the-kiosk-stores is the source, and a new column must be added here by hand.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import inspect, select

from app.db import get_engine
from app.kiosk.visit import COOKIE_KEYS
from experiments.eventlog import metadata
from experiments.model import Trial
from tests.app.visitor import VISITOR_AGENT, VISITOR_IP, Visitor

ALLOWED: dict[str, set[str]] = {
    # the trial and its lifecycle (no people)
    "trials": {
        "id", "title", "status", "current_version", "locked_version", "locked_at",
        "started_at", "stopped_at", "results_url", "allocation_secret", "created_at",
    },
    "trial_versions": {"trial_id", "version", "source", "loaded_at"},
    # a kiosk: where it stands, the hash of its token, its state and last contact
    "kiosks": {
        "id", "trial_id", "location", "token_hash", "active", "created_at", "revoked_at",
        "last_seen_at",
    },
    # visit: random id, trial and version, location, kiosk, language, start time
    "visits": {
        "id", "trial_id", "trial_version", "location", "kiosk_id", "language", "started_at",
        "arm", "signature",  # kept by the database from the assignment and the events
    },
    # assignment: arm, method and its inputs, time
    "assignments": {"visit_id", "trial_id", "arm", "method", "inputs", "assigned_at"},
    # events: declared type, material and disclosure versions, idempotency key, times
    "events": {
        "id", "visit_id", "trial_id", "type", "idempotency_key", "language",
        "material_version", "disclosure_version", "occurred_at", "recorded_at",
    },
    "allocation_counters": {"trial_id", "stratum", "next_index"},
    "result_looks": {"id", "trial_id", "looked_at", "data_hash", "kind"},
    "trial_pauses": {"id", "trial_id", "paused_at", "resumed_at"},
    # The console's tables hold STAFF, never visitors: an amendment's author and reason, the
    # accounts, their trials and the audit log. None of them is joined to visits or events, and
    # no column of a visit table may hold anything like them (the rule above stays strict).
    "trial_amendments": {
        "id", "trial_id", "version", "previous_version", "amended_at", "changes", "reason",
        "actor", "interface",
    },
    "users": {
        "id", "email", "role", "password_hash", "password_change_required", "active",
        "failed_attempts", "locked_until", "created_at",
    },
    "trial_members": {"trial_id", "user_id", "added_at"},
    "audit_log": {"id", "at", "actor", "interface", "action", "trial_id", "target", "detail"},
}  # fmt: skip

#: Tables that may hold staff (never visitor) data; nothing of a visit may reach them.
STAFF_TABLES = frozenset({"trial_amendments", "users", "trial_members", "audit_log"})


def test_schema_holds_only_allowed_columns(app: Flask) -> None:
    with get_engine(app).connect() as conn:
        inspector = inspect(conn)
        tables = set(inspector.get_table_names()) - {"alembic_version"}
        assert tables == set(ALLOWED)
        for table in tables:
            columns = {column["name"] for column in inspector.get_columns(table)}
            assert columns <= ALLOWED[table], f"{table}: {columns - ALLOWED[table]} not allowed"


def test_no_staff_table_refers_to_a_visit(app: Flask) -> None:
    """Staff data and visit data stay apart: no foreign key from a staff table reaches the
    visits, assignments or events."""
    with get_engine(app).connect() as conn:
        inspector = inspect(conn)
        for table in STAFF_TABLES:
            referred = {fk["referred_table"] for fk in inspector.get_foreign_keys(table)}
            assert not referred & {"visits", "assignments", "events"}, table
            assert not {"visit_id", "kiosk_id"} & {c["name"] for c in inspector.get_columns(table)}


def _full_visit(visitor: Visitor) -> None:
    visitor.arrives()
    visitor.starts_in("en")
    visitor.taps("contact_requested")
    visitor.switches_to("ar")
    visitor.asks_why()
    visitor.looks_again()
    visitor.taps_without_script("country_info_opened")
    visitor.finishes()


def test_stored_rows_after_a_visit_hold_no_ip_agent_or_free_text(
    app: Flask, factory_trial: Trial, visitor: Visitor
) -> None:
    _full_visit(visitor)
    values: list[str] = []
    with get_engine(app).connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                values += [str(value) for value in row.values() if value is not None]
        event_rows = conn.execute(select(metadata.tables["events"])).mappings().all()
    assert values
    for value in values:
        assert VISITOR_IP not in value
        assert "TeaRoomKiosk" not in value and VISITOR_AGENT not in value
    assert visitor.token not in " ".join(values)  # only the token's hash is stored
    declared = {"exposure", "language_switch", "finish", *factory_trial.outcome_events}
    for row in event_rows:  # every text column is a code, a hash, a key or a time
        assert row["type"] in declared
        assert row["language"] in factory_trial.languages
        assert re.fullmatch(
            r"[0-9a-fx-]{16,64}|[a-z]-[0-9a-f-]{36}(-[a-z]{2,3})?", row["idempotency_key"]
        )
        for column in ("material_version", "disclosure_version"):
            assert row[column] is None or re.fullmatch(r"[0-9a-f]{16}", row[column])


def test_the_only_cookie_is_the_visit_and_it_ends_with_the_visit(visitor: Visitor) -> None:
    visitor.arrives()
    response = visitor.client.post(visitor.path + "start", data={"language": "en"})
    cookies = response.headers.getlist("Set-Cookie")
    assert len(cookies) == 1 and cookies[0].startswith("nudgelab_visit=")
    assert "HttpOnly" in cookies[0] and "SameSite=Strict" in cookies[0]
    assert "Expires" not in cookies[0] and "Max-Age" not in cookies[0]  # ends with the browser
    with visitor.client.session_transaction() as session:
        assert set(session) <= COOKIE_KEYS
    visitor.finishes()
    assert visitor.visit_id is None
    cookie = visitor.client.get_cookie("nudgelab_visit")
    assert cookie is None or cookie.value == ""


def test_nothing_logs_the_visitors_address(
    visitor: Visitor, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        _full_visit(visitor)
        visitor.post_events({"broken": True})
    for record in caplog.records:
        assert VISITOR_IP not in record.getMessage()
        assert "TeaRoomKiosk" not in record.getMessage()
    assert logging.getLogger("werkzeug").getEffectiveLevel() >= logging.ERROR


OUTSIDE_ASSET = re.compile(
    r"<(script|link|img|iframe|source|video|audio|embed|object)\b[^>]*"
    r"\b(src|href|data)\s*=\s*[\"']?\s*(https?:)?//",
    re.I,
)


def test_no_page_loads_anything_from_outside(
    app: Flask, factory_trial: Trial, visitor: Visitor
) -> None:
    visitor.arrives()
    pages = [visitor.page, visitor.starts_in("ar"), visitor.asks_why(), visitor.opts_out()]
    pages += [visitor.client.get(visitor.path + "register"), visitor.client.get("/register")]
    pages += [visitor.client.get(f"/register/{factory_trial.id}"), visitor.client.get("/nope")]
    for page in pages:
        html = page.get_data(as_text=True)  # type: ignore[union-attr]
        assert not OUTSIDE_ASSET.search(html), OUTSIDE_ASSET.search(html)
        assert "@import" not in html
        policy = page.headers["Content-Security-Policy"]  # type: ignore[union-attr]
        assert "default-src 'self'" in policy and "http" not in policy
        assert page.headers["Referrer-Policy"] == "no-referrer"  # type: ignore[union-attr]
    static = Path(app.static_folder or "")
    for asset in static.iterdir():
        text = asset.read_text(encoding="utf-8")
        assert not re.search(r"(url\(|@import|fetch\(|src\s*=)\s*[\"']?(https?:)?//", text)
        assert "http://" not in text and "https://" not in text, asset.name
