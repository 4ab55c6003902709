"""Kiosks as the console's core runs them: a paused trial shows the control arm's plain
information and stores nothing; a kiosk switched off, revoked or given a new token is refused
from the very next request; the command line's `kiosk revoke` and `kiosk list` agree."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner
from flask import Flask
from sqlalchemy import func, select

from app.db import get_engine
from experiments import store
from experiments.eventlog import events, visits
from experiments.model import Trial
from nudgelab.cli import main
from tests.app.visitor import Visitor


def counts(app: Flask) -> tuple[int, int]:
    with get_engine(app).connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(visits)).scalar_one(),
            conn.execute(select(func.count()).select_from(events)).scalar_one(),
        )


def step(app: Flask, function, *args) -> None:  # type: ignore[no-untyped-def]
    with get_engine(app).begin() as conn:
        function(conn, *args)


def _outcome(visitor: Visitor) -> dict[str, str]:
    return {
        "visit_id": visitor.visit_id,
        "type": "contact_requested",
        "idempotency_key": uuid.uuid4().hex,
        "language": "en",
    }


@pytest.mark.parametrize("language", ["en", "ar"])
def test_a_paused_trial_shows_the_control_information_and_stores_nothing(
    app: Flask, factory_trial: Trial, visitor: Visitor, language: str
) -> None:
    step(app, store.pause_trial, factory_trial.id)
    assert visitor.arrives().status_code == 200
    before = counts(app)
    page = visitor.starts_in(language)
    assert page.status_code == 200 and page.request.path.endswith("/information")
    control = factory_trial.control_arm.material[language]
    assert visitor.sees(control.title)
    for _, text in factory_trial.disclosure_parts(language, app.config["PUBLIC_URL"]):
        assert visitor.sees(text)  # the whole disclosure
    for arm in factory_trial.arms:
        if not arm.control:
            assert not visitor.sees(arm.material[language].title)
    assert 'action="' + visitor.path + 'action"' not in visitor.text  # no outcome buttons
    assert "data-visit=" not in visitor.text  # no visit for the script to log to
    with visitor.client.session_transaction() as session:
        assert "visit" not in session
    visitor.looks_again()  # no visit: back to the welcome screen, nothing logged
    assert counts(app) == before == (0, 0)
    step(app, store.resume_trial, factory_trial.id)
    assert visitor.starts_in(language).request.path.endswith("/visit")
    assert counts(app)[0] == 1  # randomized again


def test_the_information_page_is_only_for_a_paused_trial(visitor: Visitor) -> None:
    response = visitor.client.get(visitor.path + "information")
    assert response.status_code == 302 and response.headers["Location"].endswith(visitor.path)


def test_a_visit_in_progress_when_the_trial_pauses_can_still_opt_out(
    app: Flask, factory_trial: Trial, started: Visitor
) -> None:
    """An opt-out is always honoured: the visit was randomized before the pause."""
    step(app, store.pause_trial, factory_trial.id)
    assert started.opts_out().status_code == 200
    with get_engine(app).connect() as conn:
        kinds = conn.execute(select(events.c.type).where(events.c.visit_id == started.visit_id))
        assert "opt_out" in set(kinds.scalars())


def test_a_visit_in_progress_when_the_trial_pauses_logs_nothing_more_but_its_opt_out(
    app: Flask, factory_trial: Trial, started: Visitor
) -> None:
    """The pause stops the trial's data at once: an outcome tapped without the script (the
    kiosk's own form), the language switch, the finish are not stored; the opt-out is, and it
    deletes the outcomes logged before the pause (reproduced before B1: all of them stored)."""
    assert started.taps("contact_requested").get_json()["results"][0]["status"] == "stored"
    before = _outcomes_of(app, started.visit_id)
    step(app, store.pause_trial, factory_trial.id)
    started.looks_again()
    started.taps_without_script("country_info_opened")
    started.switches_to("ar")
    assert _outcomes_of(app, started.visit_id) == before
    started.opts_out()
    after = _outcomes_of(app, started.visit_id)
    assert "opt_out" in after and "contact_requested" not in after
    assert set(after) - set(before) == {"opt_out"}


@pytest.fixture
def started(visitor: Visitor) -> Visitor:
    visitor.arrives()
    visitor.starts_in("en")
    return visitor


def _outcomes_of(app: Flask, visit_id: str | None) -> list[str]:
    with get_engine(app).connect() as conn:
        rows = conn.execute(select(events.c.type).where(events.c.visit_id == visit_id))
        return sorted(rows.scalars())


@pytest.mark.parametrize("step_name", ["pause", "close"])
def test_the_api_stores_no_outcome_of_a_paused_or_closed_trial_and_acknowledges_it(
    app: Flask, factory_trial: Trial, started: Visitor, step_name: str
) -> None:
    """Answered 200 ``discarded`` (kiosk.js drops an acknowledged event, so the kiosk does not
    resend it for ever), and nothing is written; an opt-out is still honoured."""
    before = _outcomes_of(app, started.visit_id)
    assert "contact_requested" not in before
    step(app, {"pause": store.pause_trial, "close": store.close_trial}[step_name], factory_trial.id)
    event = _outcome(started)
    answer = started.post_events({"events": [event]})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["results"] == [
        {"idempotency_key": event["idempotency_key"], "status": "discarded"}
    ]
    assert _outcomes_of(app, started.visit_id) == before  # nothing stored
    if step_name == "pause":
        step(app, store.resume_trial, factory_trial.id)
        again = started.post_events({"events": [_outcome(started)]})
        assert again.get_json()["results"][0]["status"] == "stored"
        assert "contact_requested" in _outcomes_of(app, started.visit_id)


@pytest.mark.parametrize("change", ["pause", "close", "off", "revoke"])
def test_a_change_that_lands_while_a_start_is_handled_is_seen_by_it(
    app: Flask,
    factory_trial: Trial,
    visitor: Visitor,
    change: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The kiosk and its trial are read at the start of the request, found switched on and
    running; then another process pauses or closes the trial or switches the kiosk off or
    revokes it, before the start writes anything. The start must see it: no visit (before the
    fix it randomized a visitor into a paused or closed trial)."""
    visitor.arrives()
    real = store.find_kiosk

    def then_change(conn, token):  # type: ignore[no-untyped-def]
        found = real(conn, token)
        with get_engine(app).begin() as other:
            if change in ("pause", "close"):
                getattr(store, f"{change}_trial")(other, factory_trial.id)
            elif change == "off":
                store.switch_kiosk(other, found.id, False)
            else:
                store.revoke_kiosk(other, found.id)
        return found

    monkeypatch.setattr(store, "find_kiosk", then_change)
    response = visitor.client.post(visitor.path + "start", data={"language": "en"})
    if change == "pause":
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/information?lang=en")
    else:
        assert response.status_code == 403
    assert counts(app) == (0, 0)


@pytest.mark.parametrize("action", ["off", "revoke"])
def test_a_kiosk_switched_off_or_revoked_is_refused_at_the_next_request(
    app: Flask, started: Visitor, action: str
) -> None:
    with get_engine(app).connect() as conn:
        (kiosk,) = store.list_kiosks(conn)
    if action == "off":
        step(app, store.switch_kiosk, kiosk.id, False)
    else:
        step(app, store.revoke_kiosk, kiosk.id)
    assert started.looks_again().status_code == 403
    assert started.arrives().status_code == 403
    assert started.post_events(_outcome(started)).status_code == 403
    if action == "off":
        step(app, store.switch_kiosk, kiosk.id, True)
        assert started.arrives().status_code == 200


def test_a_replaced_token_is_dead_and_the_new_one_works(app: Flask, started: Visitor) -> None:
    with get_engine(app).begin() as conn:
        (kiosk,) = store.list_kiosks(conn)
        _, token = store.replace_token(conn, kiosk.id)
    assert started.arrives().status_code == 404  # no such kiosk any more
    assert started.post_events(_outcome(started)).status_code == 403
    fresh = Visitor(app, store.kiosk_path(kiosk.trial_id, kiosk.location, token))
    assert fresh.arrives().status_code == 200


def test_kiosk_revoke_on_the_command_line_answers_403_at_once(
    app: Flask, db_url: str, started: Visitor
) -> None:
    runner = CliRunner(env={"NUDGELAB_ACTOR": "ops"})
    with get_engine(app).connect() as conn:
        (kiosk,) = store.list_kiosks(conn)
    assert started.looks_again().status_code == 200
    revoked = runner.invoke(main, ["kiosk", "revoke", kiosk.id, "--db", db_url])
    assert revoked.exit_code == 0, revoked.output
    assert started.looks_again().status_code == 403  # the very next page
    assert started.post_events(_outcome(started)).status_code == 403  # and the API
    listed = runner.invoke(main, ["kiosk", "list", "--db", db_url]).output
    assert f"{kiosk.id}  {kiosk.trial_id}  loc-a  revoked" in listed
    with get_engine(app).connect() as conn:
        (entry,) = [e for e in store.read_audit(conn) if e.action == "kiosk.revoke"]
    assert (entry.actor, entry.interface, entry.target) == ("ops", "cli", kiosk.id)


def test_a_closed_trial_stops_its_kiosks(
    app: Flask, factory_trial: Trial, started: Visitor
) -> None:
    step(app, store.close_trial, factory_trial.id)
    assert started.arrives().status_code == 403
    assert started.client.post(started.path + "start", data={"language": "en"}).status_code == 403


def test_kiosk_pages_note_the_last_contact(app: Flask, visitor: Visitor) -> None:
    with get_engine(app).connect() as conn:
        assert store.list_kiosks(conn)[0].last_seen_at is None
    visitor.arrives()
    with get_engine(app).connect() as conn:
        seen = store.list_kiosks(conn)[0].last_seen_at
    assert seen is not None and (store.utcnow() - seen).total_seconds() < 60


def test_the_register_shows_a_pause_and_the_amendments(app: Flask, factory_trial: Trial) -> None:
    client = app.test_client()
    actor = store.Actor("researcher@example.org", "console")
    with get_engine(app).begin() as conn:
        before = store.require_trial(conn, factory_trial.id).current_version
        store.record_amendment(
            conn, factory_trial.id, "b" * 64, before, ("materials",), "a clearer ending", actor
        )
        store.pause_trial(conn, factory_trial.id)
    page = client.get(f"/register/{factory_trial.id}?lang=en").get_data(as_text=True)
    assert "Amendments after the start" in page
    assert "Version bbbbbbbbbbbb" in page and "Changed: materials." in page
    assert "Reason: a clearer ending" in page
    assert "researcher@example.org" not in page  # the author stays in the audit log
    assert "paused at the moment" in page
    assert "(paused," in client.get("/register").get_data(as_text=True)
