"""A person at the console, through the Flask test client: signs in, reads the CSRF token of
each page's form and posts it back like a browser does."""

from __future__ import annotations

import io
import random
import re
import uuid
from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

from app.db import get_engine
from experiments import store
from experiments.model import Trial
from experiments.store import Actor
from experiments.store.users import add_user

PASSWORD = "correct horse battery staple"
SETUP = Actor("test-setup", "cli")
_TOKEN = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|'
    r'type="hidden" name="csrf_token" value="([^"]+)"|'
    r'name="csrf_token" value="([^"]+)"'
)


def add_account(app: Flask, email: str, role: str, password: str = PASSWORD) -> None:
    """An account whose password needs no change at the first sign-in."""
    with get_engine(app).begin() as conn:
        add_user(conn, email, role, password, SETUP, change_required=False)


def csrf_from(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "no CSRF token on the page"
    return next(group for group in match.groups() if group)


class Console:
    """One browser at the console (its own cookie jar)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()
        self.token: str | None = None

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        response = self.client.get(path, **kwargs)
        if response.mimetype == "text/html" and "csrf_token" in response.get_data(as_text=True):
            self.token = csrf_from(response.get_data(as_text=True))
        return response

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any
    ) -> TestResponse:
        """POST a form with the CSRF token of the last page (as a browser would)."""
        if csrf and self.token is None:
            self.get("/console/sign-in")
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.token
        return self.client.post(path, data=form, **kwargs)

    def signed_in(self, email: str, password: str = PASSWORD) -> Console:
        self.get("/console/sign-in")
        response = self.post("/console/sign-in", {"email": email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)
        self.get("/console/")
        return self

    def load(
        self,
        source: str,
        trial_id: str | None = None,
        reason: str | None = None,
        *,
        upload: bool = False,
    ) -> TestResponse:
        path = f"/console/trials/{trial_id}/load" if trial_id else "/console/load"
        self.get(path)
        data: dict[str, Any] = {}
        if upload:
            data["file"] = (io.BytesIO(source.encode()), "trial.yaml")
        else:
            data["source"] = source
        if reason is not None:
            data["reason"] = reason
        return self.post(path, data, content_type="multipart/form-data")

    def step(self, trial_id: str, step: str) -> TestResponse:
        self.get(f"/console/trials/{trial_id}")
        return self.post(f"/console/trials/{trial_id}/{step}")

    def add_kiosk(self, trial_id: str, location: str) -> str:
        """Add a kiosk; the URL path the page shows once."""
        self.get(f"/console/trials/{trial_id}/kiosks")
        page = self.post(f"/console/trials/{trial_id}/kiosks", {"location": location})
        assert page.status_code == 200, page.get_data(as_text=True)
        match = re.search(
            r'class="url">https?://[^/<]+(/kiosk/[^<]+)<', page.get_data(as_text=True)
        )
        assert match, "no kiosk URL on the page"
        return match[1]


def run_visits(
    app: Flask, trial: Trial, per_location: int, *, outcomes: dict[str, int], seed: int = 1
) -> dict[str, int]:
    """Start visits at every location, log an exposure and a finish for each, and give the
    first ``outcomes[arm]`` visits of each arm a ``contact_requested``. Returns visits per arm."""
    specs = [
        store.VisitSpec(location, "en")
        for location in trial.location_ids
        for _ in range(per_location)
    ]
    arms: dict[str, int] = {}
    with get_engine(app).begin() as conn:
        started = store.start_visits(conn, trial, specs, rng=random.Random(seed))
        events = []
        for visit in started:
            arms[visit.arm] = arms.get(visit.arm, 0) + 1
            events.append(store.EventSpec(visit.id, "exposure", uuid.uuid4().hex))
            if arms[visit.arm] <= outcomes.get(visit.arm, 0):
                events.append(store.EventSpec(visit.id, "contact_requested", uuid.uuid4().hex))
            events.append(store.EventSpec(visit.id, "finish", uuid.uuid4().hex))
        store.record_events(conn, trial, events)
    for arm, wanted in outcomes.items():
        assert arms.get(arm, 0) >= wanted, f"too few visits in {arm} for {wanted} outcomes"
    return arms
