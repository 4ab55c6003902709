"""Tests that read like what people do: staff set up a kiosk, a visitor uses it.

``Visitor`` walks the real kiosk pages through the Flask test client, from a fixed (fake) IP
address and user agent, so the privacy tests can check that neither is ever stored.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from flask import Flask
from markupsafe import escape
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.db import get_engine
from app.kiosk.render import visible_text
from experiments import store
from experiments.eventlog import assignments, events
from experiments.model import Trial
from experiments.store import kiosk_path, parse_trial, register_kiosk

EXAMPLE = Path("experiments/trials/tearoom-return-info.yaml")
VISITOR_IP = "203.0.113.7"
VISITOR_AGENT = "Mozilla/5.0 (X11; Linux x86_64) TeaRoomKiosk/9.9.9"


def run_trial(app: Flask, source: str, *, start: bool = True) -> Trial:
    """Load (and start) a trial file's text, as ``nudgelab trial load/start`` do."""
    trial = parse_trial(source)
    with get_engine(app).begin() as conn:
        store.load_trial(conn, trial, source)
        if start:
            store.start_trial(conn, trial.id)
    return trial


def add_kiosk(app: Flask, trial: Trial, location: str) -> str:
    """Register a kiosk, as ``nudgelab kiosk add`` does; the path of its welcome page."""
    with get_engine(app).begin() as conn:
        _, token = register_kiosk(conn, trial, location)
    return kiosk_path(trial.id, location, token)


class Visitor:
    """One person at a kiosk. Each ``Visitor`` is a fresh browser (its own cookie jar)."""

    def __init__(self, app: Flask, path: str) -> None:
        self.app = app
        self.path = path
        self.token = path.rstrip("/").rsplit("/", 1)[1]
        self.client = app.test_client()
        self.client.environ_base.update(REMOTE_ADDR=VISITOR_IP, HTTP_USER_AGENT=VISITOR_AGENT)
        self.page: TestResponse | None = None

    # -- what the visitor does ---------------------------------------------------------
    def arrives(self) -> TestResponse:
        self.page = self.client.get(self.path)
        return self.page

    def starts_in(self, language: str) -> TestResponse:
        """Tap a language on the welcome screen: a new visit starts and its page shows."""
        self.page = self.client.post(
            self.path + "start", data={"language": language}, follow_redirects=True
        )
        return self.page

    def switches_to(self, language: str) -> TestResponse:
        self.page = self.client.post(
            self.path + "language", data={"language": language}, follow_redirects=True
        )
        return self.page

    def taps(self, event: str, key: str | None = None) -> TestResponse:
        """Tap an outcome button the way the page's script does: through the events API."""
        body = {
            "visit_id": self.visit_id,
            "type": event,
            "idempotency_key": key or uuid.uuid4().hex,
            "language": self.language,
        }
        return self.post_events(body)

    def taps_without_script(self, event: str) -> TestResponse:
        """Tap an outcome button with JavaScript off: the form posts to the kiosk."""
        html = self.text
        match = re.search(
            rf'data-event="{event}">\s*<input[^>]*>\s*<input type="hidden" name="key" '
            r'value="([a-z0-9]+)"',
            html,
        )
        assert match, f"no {event} button on the page"
        self.page = self.client.post(
            self.path + "action", data={"event": event, "key": match[1]}, follow_redirects=True
        )
        return self.page

    def opts_out(self) -> TestResponse:
        self.page = self.client.post(self.path + "opt-out", follow_redirects=True)
        return self.page

    def finishes(self) -> TestResponse:
        self.page = self.client.post(
            self.path + "end", data={"reason": "finish"}, follow_redirects=True
        )
        return self.page

    def asks_why(self, **query: str) -> TestResponse:
        self.page = self.client.get(self.path + "why", query_string=query)
        return self.page

    def looks_again(self) -> TestResponse:
        self.page = self.client.get(self.path + "visit", follow_redirects=True)
        return self.page

    def walks_away(self, seconds: float) -> None:
        """Nobody touches the kiosk for ``seconds`` (the visit cookie's clock is rewound)."""
        with self.client.session_transaction() as session:
            session["seen"] = session["seen"] - seconds

    def post_events(self, body: Any, token: str | None = None) -> TestResponse:
        return self.client.post(
            "/api/v1/events",
            json=body,
            headers={"Authorization": f"Bearer {token or self.token}"},
        )

    # -- what can be seen ----------------------------------------------------------------
    @property
    def text(self) -> str:
        assert self.page is not None, "the visitor has not opened a page yet"
        return self.page.get_data(as_text=True)

    def sees(self, text: str) -> bool:
        """Whether ``text`` is on the page as a reader sees it (``<bdi>`` isolation removed)."""
        return str(escape(text)) in visible_text(self.text)

    @property
    def visit_id(self) -> str | None:
        with self.client.session_transaction() as session:
            return session.get("visit")

    @property
    def language(self) -> str | None:
        with self.client.session_transaction() as session:
            return session.get("language")

    # -- what the event log holds (not visible to the visitor) ----------------------------
    def arm_of(self, visit_id: str | None = None) -> str:
        with get_engine(self.app).connect() as conn:
            return conn.execute(
                select(assignments.c.arm).where(
                    assignments.c.visit_id == (visit_id or self.visit_id)
                )
            ).scalar_one()

    def logged(self, visit_id: str | None = None) -> list[str]:
        """The event types stored for the visit, in order."""
        with get_engine(self.app).connect() as conn:
            return list(
                conn.execute(
                    select(events.c.type)
                    .where(events.c.visit_id == (visit_id or self.visit_id))
                    .order_by(events.c.id)
                ).scalars()
            )
