"""The public register: every trial that is or was running, in full, without login."""

from __future__ import annotations

from flask import Flask
from markupsafe import escape
from sqlalchemy import update

from app.db import get_engine
from app.kiosk.render import plain_paragraphs, visible_text
from experiments import store
from experiments.eventlog import trials
from experiments.model import Trial, localized
from tests.app.visitor import EXAMPLE, run_trial
from tests.factories import PUBLIC_URL, trial_yaml


def _sees(html: str, text: str) -> bool:
    return str(escape(text)) in visible_text(html)


def test_register_shows_the_whole_example_trial(app: Flask, example_trial: Trial) -> None:
    client = app.test_client()
    index = client.get("/register")
    assert index.status_code == 200 and _sees(index.get_data(as_text=True), example_trial.title)
    page = client.get(f"/register/{example_trial.id}?lang=en")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    trial = example_trial
    for text in [trial.contact, trial.privacy.contact]:
        assert _sees(html, text)
    registered = [trial.purpose, trial.privacy.statement]
    registered += [outcome.description for outcome in trial.outcomes]
    registered += [hypothesis.statement for hypothesis in trial.analysis.hypotheses]
    for language in trial.languages:
        assert _sees(html, localized(trial.organisation, language))
        for value in registered:  # the pre-registration in every language of the trial
            assert isinstance(value, dict) and _sees(html, value[language])
    assert _sees(html, f"{PUBLIC_URL}/register")
    # The researchers' notes are in the public register (and never on a kiosk page).
    notes = {claim.note for arm in trial.arms for claim in arm.claims if claim.note}
    assert notes and all(_sees(html, note) for note in notes)
    assert _sees(html, "January 4, 2027") and _sees(html, "March 28, 2027")  # the schedule
    for arm in trial.arms:
        assert _sees(html, f"{arm.element}: ")
        for language in trial.languages:
            assert _sees(html, arm.material[language].title)
            for paragraph in plain_paragraphs(arm.material[language].body):
                assert _sees(html, paragraph)
            for claim in arm.claims:
                assert _sees(html, claim.text[language])
    assert _sees(html, "Nudge strength: weak") and _sees(html, "Nudge strength: none")
    for language in trial.languages:
        for _, text in trial.disclosure_parts(language, PUBLIC_URL):
            assert _sees(html, text)
        assert f'lang="{language}" dir="{trial.direction(language)}"' in html
    assert _sees(html, "The results will be linked here once the trial is closed.")
    source = client.get(f"/register/{trial.id}/trial.yaml")
    assert source.get_data(as_text=True) == EXAMPLE.read_text(encoding="utf-8")


def test_results_link_once_closed_and_stopped_trials_stay_listed(
    app: Flask, example_trial: Trial
) -> None:
    client = app.test_client()
    with get_engine(app).begin() as conn:
        store.stop_trial(conn, example_trial.id)
    assert _sees(client.get("/register").get_data(as_text=True), example_trial.title)
    with get_engine(app).begin() as conn:
        conn.execute(
            update(trials)
            .where(trials.c.id == example_trial.id)
            .values(status="closed", results_url="/reports/tearoom-return-info.html")
        )
    html = client.get(f"/register/{example_trial.id}").get_data(as_text=True)
    assert '<a href="/reports/tearoom-return-info.html">Read the results</a>' in html


def test_a_trial_that_never_ran_is_not_in_the_register(app: Flask) -> None:
    trial = run_trial(app, trial_yaml(), start=False)
    client = app.test_client()
    assert not _sees(client.get("/register").get_data(as_text=True), trial.title)
    response = client.get(f"/register/{trial.id}")
    assert response.status_code == 404 and "Page not found" in response.get_data(as_text=True)
    assert client.get("/register/no-such-trial/trial.yaml").status_code == 404


def test_register_in_arabic_needs_no_login(app: Flask, example_trial: Trial) -> None:
    page = app.test_client().get(f"/register/{example_trial.id}?lang=ar")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and '<html lang="ar" dir="rtl">' in html
    assert "السجل العام" in html and "Set-Cookie" not in page.headers
