"""The current visit of a kiosk, kept in the signed visit cookie, and its inactivity reset.

The cookie holds only what the kiosk needs between two taps: the random visit id, the kiosk
id, the language, the time of the last tap and whether the visitor opted out. It is a browser
session cookie (never persistent) and is cleared when the visit ends.

A visit is shown and logged with the trial version it started with (``visits.trial_version``,
:attr:`Visit.trial`), so reloading a running trial never changes a visit half-way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app, g, session
from sqlalchemy.exc import IntegrityError

from app.db import get_connection
from experiments import store
from experiments.model import Trial

#: The only keys the visit cookie may hold (``tests/app/test_privacy.py`` checks this).
COOKIE_KEYS = frozenset({"visit", "kiosk", "language", "seen", "opted_out"})


@dataclass
class Visit:
    id: str
    language: str
    seen: float
    opted_out: bool
    arm: str
    #: The trial version the visit started with (the version its arm belongs to).
    trial: Trial | None = None


def begin(visit_id: str, language: str) -> None:
    """Remember a newly started visit in the cookie."""
    session.clear()
    session.update(
        visit=visit_id, kiosk=g.kiosk.id, language=language, seen=time.time(), opted_out=False
    )
    g.pop("current_visit", None)


def end() -> None:
    session.clear()
    g.pop("current_visit", None)


def current() -> Visit | None:
    """The visit of this kiosk in the cookie, or None (none, another kiosk's, or unknown).

    Read once per request: later calls return the same object (until :func:`begin` or
    :func:`end`)."""
    if "current_visit" not in g:
        g.current_visit = _read_current()
    return g.current_visit


def _read_current() -> Visit | None:
    visit_id = session.get("visit")
    if not visit_id or session.get("kiosk") != g.kiosk.id:
        return None
    conn = get_connection()
    row = store.assigned_visit(conn, g.trial.id, visit_id)
    if row is None:
        session.clear()
        return None
    trial = store.trial_at_version(conn, g.trial.id, row.trial_version)
    return Visit(
        visit_id,
        str(session.get("language", trial.languages[0])),
        float(session.get("seen", 0)),
        bool(session.get("opted_out")),
        row.arm,
        trial,
    )


def expired(visit: Visit, now: float | None = None) -> bool:
    limit = current_app.config["INACTIVITY_SECONDS"]
    return (now or time.time()) - visit.seen > limit


def record_end(visit: Visit, reason: str, at: float | None = None) -> None:
    """Log ``finish`` or ``timeout`` once per visit (a second tap is a duplicate) and commit."""
    occurred = datetime.fromtimestamp(at, UTC) if at else None
    spec = store.EventSpec(
        visit.id, reason, f"{reason[0]}-{visit.id}", visit.language, occurred_at=occurred
    )
    log(spec, visit.trial)


def log(spec: store.EventSpec, trial: Trial | None = None) -> store.EventStatus:
    """Store one server-side event of the visit (of ``trial``'s version, by default the
    request's) and commit it.

    The same key written twice at the same moment (e.g. a page loaded twice at once) is
    stored once and the second answer is ``duplicate`` (the insert skips a key that exists);
    should the database refuse a row with an integrity error instead, that too is a
    duplicate, not an error.
    """
    conn = get_connection()
    try:
        outcome = store.record_event(conn, trial or g.trial, spec, commit=True)
    except IntegrityError:
        conn.rollback()
        return "duplicate"
    return outcome


def touch(visit: Visit) -> None:
    session["seen"] = time.time()
    visit.seen = session["seen"]


def timed_out_visit() -> bool:
    """End the cookie's visit if it was inactive too long; True when that happened."""
    visit = current()
    if visit is None or not expired(visit):
        return False
    record_end(visit, "timeout", visit.seen + current_app.config["INACTIVITY_SECONDS"])
    end()
    return True
