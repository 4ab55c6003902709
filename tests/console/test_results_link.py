"""Closed: the public register links the report. The console's close form takes the results'
address, and a closed trial's researchers publish or change it later; the register shows it."""

from __future__ import annotations

import html

from flask import Flask

from app.db import get_engine
from experiments import store
from tests.console.helpers import Console
from tests.factories import trial_yaml

TRIAL = "test-trial"


def _register(app: Flask) -> str:
    page = app.test_client().get(f"/register/{TRIAL}")
    assert page.status_code == 200
    return html.unescape(page.get_data(as_text=True))


def _record(app: Flask) -> store.TrialRecord:
    with get_engine(app).connect() as conn:
        return store.require_trial(conn, TRIAL)


def _close(owner: Console, url: str) -> str:
    owner.get(f"/console/trials/{TRIAL}")
    response = owner.post(f"/console/trials/{TRIAL}/close", {"results_url": url})
    assert response.status_code == 302
    return owner.get(f"/console/trials/{TRIAL}").get_data(as_text=True)


def _publish(console: Console, url: str):  # type: ignore[no-untyped-def]
    console.get(f"/console/trials/{TRIAL}")
    return console.post(f"/console/trials/{TRIAL}/results-url", {"results_url": url})


def test_closing_with_the_results_address_links_it_on_the_register(
    console_app: Flask, owner: Console
) -> None:
    assert owner.load(trial_yaml()).status_code == 302
    assert owner.step(TRIAL, "start").status_code == 302
    # A refused address closes nothing.
    page = _close(owner, "javascript:alert(1)")
    assert "Not done: the results address must start with https://" in html.unescape(page)
    assert _record(console_app).status == "running"
    url = "https://example.org/results/test-trial.html"
    page = _close(owner, url)
    record = _record(console_app)
    assert record.status == "closed" and record.results_url == url
    assert f'href="{url}"' in page
    assert f'href="{url}"' in _register(console_app)
    with get_engine(console_app).connect() as conn:
        entries = [(e.action, e.actor) for e in store.read_audit(conn, TRIAL)]
    assert ("trial.close", "owner@example.org") in entries
    assert ("trial.publish", "owner@example.org") in entries


def test_a_closed_trial_gets_its_results_link_later(
    console_app: Flask, owner: Console, evaluator: Console, admin: Console
) -> None:
    assert owner.load(trial_yaml()).status_code == 302
    assert owner.step(TRIAL, "start").status_code == 302
    # While it runs there is nothing to link.
    refused = _publish(owner, "https://example.org/early.html")
    assert refused.status_code == 302 and _record(console_app).results_url is None
    page = _close(owner, "")
    assert _record(console_app).status == "closed"
    assert "not published yet" in page and "Publish results link" in page
    assert "example.org/early" not in _register(console_app)
    # Published, then changed to a path on this site: the register follows.
    first = "https://example.org/results/v1.html"
    assert _publish(owner, first).status_code == 302
    assert f'href="{first}"' in _register(console_app)
    second = "/reports/test-trial.html"
    assert _publish(owner, second).status_code == 302
    register = _register(console_app)
    assert f'href="{second}"' in register and first not in register
    # A bad address changes nothing; evaluators and admins cannot publish.
    assert _publish(owner, "http://elsewhere.example/x").status_code == 302
    assert _record(console_app).results_url == second
    assert _publish(evaluator, first).status_code == 403
    assert _publish(admin, first).status_code == 403
    assert _record(console_app).results_url == second
