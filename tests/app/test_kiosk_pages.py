"""Which kiosk may show what, and kiosk error pages that always lead back to the start."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest
from flask import Flask
from markupsafe import escape
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from app.db import get_engine
from experiments import store
from experiments.eventlog import kiosks, visits
from experiments.model import Trial, localized
from tests.app.visitor import Visitor, add_kiosk

# -- a kiosk serves only its own trial and location, and only while switched on ------------


def _under(path: str, *, trial: str | None = None, location: str | None = None) -> str:
    """The kiosk URL ``path`` with another trial id or location, the same token."""
    _, kiosk, trial_id, location_id, token, _ = path.split("/")
    return f"/{kiosk}/{trial or trial_id}/{location or location_id}/{token}/"


@pytest.mark.parametrize(
    "where",
    [{"location": "loc-b"}, {"trial": "another-trial"}],
    ids=["another location", "another trial"],
)
def test_a_token_under_another_kiosks_url_is_refused(
    app: Flask, factory_trial: Trial, kiosk_path_a: str, where: dict[str, str]
) -> None:
    add_kiosk(app, factory_trial, "loc-b")  # loc-b has a kiosk of its own, with its own token
    visitor = Visitor(app, _under(kiosk_path_a, **where))
    for response in [
        visitor.arrives(),
        visitor.client.post(visitor.path + "start", data={"language": "en"}),
        visitor.client.get(visitor.path + "visit"),
        visitor.client.get(visitor.path + "why"),
    ]:
        assert response.status_code == 403
    assert visitor.sees("This kiosk link belongs to another study or location.")
    assert visitor.visit_id is None
    with get_engine(app).connect() as conn:
        assert conn.execute(select(func.count()).select_from(visits)).scalar_one() == 0
    assert Visitor(app, kiosk_path_a).arrives().status_code == 200  # at its own URL it works


def test_a_switched_off_kiosk_is_refused_on_its_pages_and_the_api(
    app: Flask, visitor: Visitor
) -> None:
    visitor.arrives()
    visitor.starts_in("en")
    visit = visitor.visit_id
    with get_engine(app).begin() as conn:
        conn.execute(update(kiosks).values(active=False))
    assert visitor.looks_again().status_code == 403
    assert visitor.sees("This kiosk has been switched off.")
    assert visitor.arrives().status_code == 403
    refused = visitor.taps("contact_requested")
    assert refused.status_code == 403 and refused.json["error"]["field"] == "Authorization"
    assert visitor.logged(visit) == ["exposure"]


def test_an_unknown_token_is_not_found(app: Flask, kiosk_path_a: str) -> None:
    visitor = Visitor(app, kiosk_path_a.replace(kiosk_path_a.split("/")[-2], "x" * 32))
    assert visitor.arrives().status_code == 404
    assert visitor.sees("This kiosk link is not valid.")


# -- error pages on a kiosk: a way back, and back by themselves ------------------------------


def _way_back(visitor: Visitor, seconds: int = 90) -> None:
    """The page links to the kiosk's start screen and returns there after ``seconds``."""
    start = re.escape(visitor.path)
    assert re.search(rf'<a class="button start" href="{start}">', visitor.text), visitor.text
    assert re.search(rf'<meta http-equiv="refresh" content="{seconds};url={start}">', visitor.text)


def test_a_trial_closed_mid_visit_leads_back_to_the_start_in_the_visits_language(
    app: Flask, factory_trial: Trial, visitor: Visitor
) -> None:
    visitor.arrives()
    visitor.starts_in("ar")
    with get_engine(app).begin() as conn:
        store.close_trial(conn, factory_trial.id)
    assert visitor.looks_again().status_code == 403
    _way_back(visitor)
    assert '<html lang="ar" dir="rtl">' in visitor.text
    assert visitor.sees("العودة إلى البداية")  # "Back to the start"
    assert visitor.sees("هذه الدراسة غير جارية حاليًا")  # "This study is not running"
    assert visitor.client.get(visitor.path).status_code == 403  # closed is for good


def test_database_outage_on_a_kiosk_page_leads_back_to_the_start(
    make_app: Callable[..., Flask], kiosk_path_a: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    visitor = Visitor(make_app(INACTIVITY_SECONDS=30), kiosk_path_a)

    def down(*_args: object) -> None:
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(store, "find_kiosk", down)
    assert visitor.arrives().status_code == 503
    assert visitor.sees("The kiosk is busy")
    _way_back(visitor, 30)


def test_other_kiosk_errors_lead_back_to_the_start(visitor: Visitor) -> None:
    visitor.page = visitor.client.get(visitor.path + "no-such-page")
    assert visitor.page.status_code == 404
    _way_back(visitor)
    visitor.page = visitor.client.post(visitor.path + "start", data={"language": "xx"})
    assert visitor.page.status_code == 400
    _way_back(visitor)


def test_error_pages_outside_kiosks_do_not_redirect(app: Flask) -> None:
    for path in ["/nope", "/register/no-such-trial", "/kiosk/too/short"]:
        html = app.test_client().get(path).get_data(as_text=True)
        assert "http-equiv" not in html and "/kiosk/" not in html, path


def test_the_offline_screen_and_its_worker_come_from_the_kiosk_itself(
    example_trial: Trial, app: Flask
) -> None:
    """The service worker is served under the kiosk's path (its scope is that kiosk), the
    connection-lost screen exists in every language, and the ping answers without a visit."""
    path = add_kiosk(app, example_trial, "azc-budel")
    client = app.test_client()
    worker = client.get(path + "sw.js")
    assert worker.status_code == 200 and worker.mimetype == "text/javascript"
    source = worker.get_data(as_text=True)
    assert "http://" not in source and "https://" not in source and "importScripts" not in source
    for language, title in [
        ("nl", "Verbinding verbroken"),
        ("en", "Connection lost"),
        ("ar", "انقطع الاتصال"),
    ]:
        page = client.get(path + f"offline?lang={language}")
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and f"<h1>{title}</h1>" in html
        assert f'<html lang="{language}"' in html and "data-visit" not in html
    assert client.get(path + "ping").status_code == 204
    assert (
        client.get(path.replace(path.rstrip("/").rsplit("/", 1)[1], "x" * 20) + "ping").status_code
        == 404
    )


def test_no_kiosk_page_shows_a_researchers_note_or_a_bare_register_path(
    example_trial: Trial, app: Flask
) -> None:
    """Notes on claims and figures are for the register and the report, never a kiosk page."""
    notes = [claim.note for arm in example_trial.arms for claim in arm.claims if claim.note]
    notes += [figure.note for figure in example_trial.figures.values() if figure.note]
    assert notes
    path = add_kiosk(app, example_trial, "azc-budel")
    for language in example_trial.languages:
        visitor = Visitor(app, path)
        visitor.arrives()
        pages = [visitor.starts_in(language)]
        pages += [visitor.asks_why(), visitor.client.get(path + "register")]
        pages.append(visitor.finishes())
        for page in pages:
            text = html.unescape(re.sub(r"<[^>]+>", " ", page.get_data(as_text=True)))
            text = " ".join(text.split())
            for note in notes:
                assert " ".join(note.split()) not in text
            assert not re.search(r"(?<![\w/.:-])/register\b", text), language
    public = app.test_client().get(f"/register/{example_trial.id}").get_data(as_text=True)
    shown = " ".join(public.split())
    assert all(str(escape(" ".join(note.split()))) in shown for note in notes)


def test_the_kiosk_register_page_reads_in_the_visits_language_only(
    example_trial: Trial, app: Flask
) -> None:
    """Purpose, privacy statement, outcome descriptions and hypotheses are given per language in
    the example; inside a visit the register shows the visit's language and no other's."""
    trial = example_trial

    def register_texts(language: str) -> list[str]:
        values = [trial.purpose, trial.privacy.statement]
        values += [outcome.description for outcome in trial.outcomes]
        values += [hypothesis.statement for hypothesis in trial.analysis.hypotheses]
        assert all(isinstance(value, dict) for value in values)  # the example gives every one
        return [" ".join(localized(value, language).split()) for value in values]

    path = add_kiosk(app, trial, "azc-budel")
    for language in trial.languages:
        visitor = Visitor(app, path)
        visitor.arrives()
        visitor.starts_in(language)
        page = visitor.client.get(path + "register").get_data(as_text=True)
        text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
        for own in register_texts(language):
            assert own in text, (language, own[:60])
        for other in trial.languages:
            if other != language:
                for foreign in register_texts(other):
                    assert foreign not in text, (language, foreign[:60])
        for own in register_texts(language)[:1]:
            assert f'lang="{language}" dir="{trial.direction(language)}">{escape(own)[:40]}' in (
                " ".join(page.split())
            )
