"""An interim look needs a typed reason and is recorded, counted and audited; kiosks switched
off, revoked or given a new token in the console are refused from the next request."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import func, select

from app.db import get_engine
from experiments import store
from experiments.eventlog import result_looks
from tests.app.visitor import Visitor
from tests.console.helpers import Console, run_visits
from tests.factories import trial_yaml

TRIAL = "test-trial"


def _looks(app: Flask) -> int:
    with get_engine(app).connect() as conn:
        return conn.execute(select(func.count()).select_from(result_looks)).scalar_one()


def _running(app: Flask, owner: Console) -> str:
    assert owner.load(trial_yaml()).status_code == 302
    assert owner.step(TRIAL, "start").status_code == 302
    path = owner.add_kiosk(TRIAL, "loc-a")
    run_visits(app, store.parse_trial(trial_yaml()), 30, outcomes={"gain": 4})
    return path


def test_an_unplanned_look_needs_a_reason_and_is_counted(
    console_app: Flask, owner: Console
) -> None:
    _running(console_app, owner)
    page = owner.get(f"/console/trials/{TRIAL}/look")
    assert page.status_code == 200 and "no</strong> interim looks" in page.get_data(as_text=True)
    short = owner.post(f"/console/trials/{TRIAL}/look", {"reason": "curious"})
    assert short.status_code == 422 and "needs a reason" in short.get_data(as_text=True)
    assert _looks(console_app) == 0
    reason = "The data protection officer asked whether any arm shows harm."
    report = owner.post(f"/console/trials/{TRIAL}/look", {"reason": reason})
    assert report.status_code == 200 and report.mimetype == "text/html"
    html = report.get_data(as_text=True)
    assert "Unplanned look at a running trial" in html
    warnings = html[html.index("Warnings") :]
    assert reason in warnings and "asked for by a researcher" in warnings  # quoted
    assert "owner@example.org" not in html  # the report names no account
    assert "sandbox" in report.headers["Content-Security-Policy"]
    assert "script-src" not in report.headers["Content-Security-Policy"]  # default-src 'none'
    assert _looks(console_app) == 1
    with get_engine(console_app).connect() as conn:
        entries = [e for e in store.read_audit(conn, TRIAL) if e.action == "trial.look"]
    assert len(entries) == 1 and entries[0].actor == "owner@example.org"
    assert entries[0].detail is not None and reason in entries[0].detail
    # Monitoring is not a look.
    owner.get(f"/console/trials/{TRIAL}/monitoring")
    owner.get(f"/console/trials/{TRIAL}/monitoring.json")
    assert _looks(console_app) == 1
    # After close, the report still quotes the earlier look's reason in its Warnings.
    assert owner.step(TRIAL, "close").status_code == 302
    final = owner.get(f"/console/trials/{TRIAL}/report").get_data(as_text=True)
    assert reason in final[final.index("Warnings") :]
    assert _looks(console_app) == 2


def test_console_kiosk_changes_take_effect_at_the_next_request(
    console_app: Flask, owner: Console
) -> None:
    path = _running(console_app, owner)
    visitor = Visitor(console_app, path)
    assert visitor.arrives().status_code == 200
    with get_engine(console_app).connect() as conn:
        kiosk_id = store.list_kiosks(conn, TRIAL)[0].id
    owner.get(f"/console/trials/{TRIAL}/kiosks")
    assert owner.post(f"/console/kiosks/{kiosk_id}/off").status_code == 302
    assert visitor.arrives().status_code == 403
    assert owner.post(f"/console/kiosks/{kiosk_id}/on").status_code == 302
    assert visitor.arrives().status_code == 200
    # A new token: the old URL is dead at once, the new one (shown once) works.
    page = owner.post(f"/console/kiosks/{kiosk_id}/replace")
    new_path = re.search(r'class="url">https?://[^/<]+(/kiosk/[^<]+)<', page.get_data(as_text=True))
    assert new_path and new_path[1] != path
    assert 'src="data:image/svg+xml' in page.get_data(as_text=True)  # the QR code, inline
    assert visitor.arrives().status_code == 404  # the old token is no kiosk's any more
    assert visitor.post_events({"events": []}).status_code == 403
    fresh = Visitor(console_app, new_path[1])
    assert fresh.arrives().status_code == 200
    # Revoked for good: refused at once, listed as revoked, cannot be switched on again.
    owner.get(f"/console/trials/{TRIAL}/kiosks")
    assert owner.post(f"/console/kiosks/{kiosk_id}/revoke").status_code == 302
    assert fresh.arrives().status_code == 403
    assert fresh.post_events({"events": []}).status_code == 403
    listing = owner.get(f"/console/trials/{TRIAL}/kiosks").get_data(as_text=True)
    assert re.search(rf"<code>{kiosk_id}</code></td>\s*<td><span class=\"badge revoked\">", listing)
    owner.post(f"/console/kiosks/{kiosk_id}/on")
    with get_engine(console_app).connect() as conn:
        assert store.require_kiosk(conn, kiosk_id).state == "revoked"


def _silent_with(app: Flask, owner: Console, hours: str) -> tuple[bool, str, str]:
    """Under ``OPENING_HOURS=hours``: the kiosk's silent flag in the JSON, the monitoring page
    and the kiosks page."""
    app.config["OPENING_HOURS"] = hours  # read at every request, as from the environment
    (kiosk,) = owner.get(f"/console/trials/{TRIAL}/monitoring.json").get_json()["kiosks"]
    monitoring = owner.get(f"/console/trials/{TRIAL}/monitoring").get_data(as_text=True)
    listing = owner.get(f"/console/trials/{TRIAL}/kiosks").get_data(as_text=True)
    return kiosk["silent"], monitoring, listing


def test_the_silent_flag_counts_only_the_configured_opening_hours(
    console_app: Flask, owner: Console
) -> None:
    """A kiosk added three hours ago and never heard since; silent after 120 minutes."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from experiments.eventlog import kiosks

    assert console_app.config["SILENT_KIOSK_MINUTES"] == 120
    assert owner.load(trial_yaml()).status_code == 302
    assert owner.step(TRIAL, "start").status_code == 302
    owner.add_kiosk(TRIAL, "loc-a")
    now = datetime.now(UTC)
    with get_engine(console_app).begin() as conn:
        conn.execute(update(kiosks).values(created_at=now - timedelta(hours=3), last_seen_at=None))
    always = "daily 00:00-00:00 UTC"
    silent, monitoring, listing = _silent_with(console_app, owner, always)
    assert silent is True
    assert "silent over 120 min of opening hours" in monitoring and always in monitoring
    assert 'class="badge silent"' in listing
    # Open only in the hour after the next one: the three hours since the kiosk was added
    # hold no opening time (the last window ended 22 hours ago), so it is not silent.
    later = f"daily {now + timedelta(hours=1):%H:%M}-{now + timedelta(hours=2):%H:%M} UTC"
    silent, monitoring, listing = _silent_with(console_app, owner, later)
    assert silent is False
    assert "silent over" not in monitoring and 'class="badge silent"' not in listing
