"""A visitor's whole path through the kiosk, on SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

import json
import re
import uuid

import pytest
import yaml
from flask import Flask
from flask_babel import force_locale, gettext
from sqlalchemy import func, select

from app.db import get_engine
from app.kiosk.render import visible_text
from experiments.eventlog import assignments, events, visits
from experiments.model import Trial
from experiments.vocabulary import LANGUAGE_NAMES
from tests.app.visitor import Visitor, add_kiosk, run_trial
from tests.factories import PUBLIC_URL, trial_dict

METHODS = {
    "simple": {"randomization": {"method": "simple"}},
    "block": {"randomization": {"method": "block", "block_size": 6, "strata": ["location"]}},
    "hash": {"randomization": {"method": "hash"}},
}


def _exposure(app: Flask, visit_id: str, language: str):  # type: ignore[no-untyped-def]
    with get_engine(app).connect() as conn:
        return conn.execute(
            select(events).where(
                events.c.visit_id == visit_id,
                events.c.type == "exposure",
                events.c.language == language,
            )
        ).one()


@pytest.mark.parametrize("language", ["en", "ar"])
@pytest.mark.parametrize("factory_trial", list(METHODS.values()), ids=list(METHODS), indirect=True)
def test_whole_visit(app: Flask, factory_trial: Trial, visitor: Visitor, language: str) -> None:
    trial = factory_trial
    method = trial.randomization.method
    welcome = visitor.arrives()
    assert welcome.status_code == 200
    assert visitor.sees("English") and visitor.sees("العربية")
    assert visitor.sees("Why am I seeing this?") and visitor.sees("لماذا أرى هذا؟")

    page = visitor.starts_in(language)
    assert page.status_code == 200
    first_visit = visitor.visit_id
    arm = trial.arm(visitor.arm_of())
    other = "ar" if language == "en" else "en"
    assert f'<html lang="{language}" dir="{trial.direction(language)}">' in visitor.text
    assert visitor.sees(arm.material[language].title)
    for outcome in trial.outcomes:
        assert visitor.sees(outcome.label[language])  # type: ignore[index]
    for _, text in trial.disclosure_parts(language, PUBLIC_URL):
        assert visitor.sees(text)
    assert visitor.logged() == ["exposure"]
    exposure = _exposure(app, first_visit, language)  # type: ignore[arg-type]
    assert exposure.disclosure_version == trial.disclosure_version(language)
    assert exposure.material_version == trial.material_version(arm.id, language)
    with get_engine(app).connect() as conn:
        assignment = conn.execute(
            select(assignments).where(assignments.c.visit_id == first_visit)
        ).one()
    assert assignment.method == method and json.loads(assignment.inputs)

    key = uuid.uuid4().hex
    assert visitor.taps("contact_requested", key).json == {
        "results": [{"idempotency_key": key, "status": "stored"}]
    }
    visitor.switches_to(other)
    assert f'<html lang="{other}"' in visitor.text
    assert visitor.sees(arm.material[other].title)
    assert visitor.arm_of() == arm.id and visitor.visit_id == first_visit
    visitor.finishes()
    assert visitor.logged(first_visit) == [
        "exposure",
        "contact_requested",
        "language_switch",
        "exposure",
        "finish",
    ]
    assert visitor.visit_id is None  # the visit has ended; the end screen, then the welcome
    assert visitor.sees(arm.material[other].title) and visitor.arrives().status_code == 200
    assert visitor.sees("English")

    visitor.starts_in(language)  # the next visitor: a new visit, a new randomization
    assert visitor.visit_id not in (None, first_visit)
    with get_engine(app).connect() as conn:
        assert conn.execute(select(func.count()).select_from(assignments)).scalar_one() == 2


def test_language_switch_does_not_rerandomize(app: Flask, visitor: Visitor) -> None:
    visitor.arrives()
    visitor.starts_in("en")
    arm = visitor.arm_of()
    for language in ["ar", "en", "ar"]:
        visitor.switches_to(language)
    assert visitor.arm_of() == arm
    assert visitor.logged().count("language_switch") == 3
    assert visitor.logged().count("exposure") == 2  # one per language shown
    with get_engine(app).connect() as conn:
        assert conn.execute(select(func.count()).select_from(visits)).scalar_one() == 1


def test_opt_out_keeps_only_a_count(app: Flask, visitor: Visitor) -> None:
    visitor.arrives()
    visitor.starts_in("ar")
    visit = visitor.visit_id
    visitor.taps("contact_requested")
    page = visitor.opts_out()
    assert page.status_code == 200 and visitor.sees("لن تُستخدم زيارتك في الدراسة")
    assert visitor.taps("country_info_opened").json["results"][0]["status"] == "discarded"
    visitor.looks_again()
    assert visitor.sees("لن تُستخدم في الدراسة")  # the visit bar says so instead of the button
    visitor.finishes()
    assert visitor.logged(visit) == ["exposure", "opt_out"]
    with get_engine(app).connect() as conn:  # the visit itself stays, as a count
        assert conn.execute(select(func.count()).select_from(visits)).scalar_one() == 1


def _only_visit(app: Flask) -> str:
    with get_engine(app).connect() as conn:
        return conn.execute(select(visits.c.id)).scalar_one()


def test_outcome_without_javascript(visitor: Visitor) -> None:
    visitor.arrives()
    visitor.starts_in("en")
    hidden = '<p class="noted" id="noted-{0}" data-event="{0}" role="status" hidden>'
    shown = '<p class="noted" id="noted-{0}" data-event="{0}" role="status">'
    assert hidden.format("country_info_opened") in visitor.text
    visitor.taps_without_script("country_info_opened")
    assert visitor.page.status_code == 200  # type: ignore[union-attr]
    # The tapped outcome's own acknowledgement (what happens next), not the other one's.
    assert shown.format("country_info_opened") in visitor.text
    assert hidden.format("contact_requested") in visitor.text
    assert visitor.sees("A staff member can show you this information. (ar)") is False
    assert visitor.sees("A staff member can show you this information.")
    assert not visitor.sees("has been noted")
    visitor.page = visitor.client.post(visitor.path + "action", data={"event": "free_text"})
    assert visitor.page.status_code == 400
    assert visitor.logged() == ["exposure", "country_info_opened"]


def test_inactivity_returns_to_welcome_and_the_next_visitor_starts_afresh(
    app: Flask, visitor: Visitor
) -> None:
    visitor.arrives()
    visitor.starts_in("en")
    first = visitor.visit_id
    visitor.walks_away(60)
    visitor.looks_again()
    assert visitor.visit_id == first  # 60 s < 90 s: still the same visit
    assert 'data-inactivity="90"' in visitor.text
    visitor.walks_away(91)
    visitor.looks_again()
    assert visitor.visit_id is None and visitor.sees("English")  # the welcome screen
    assert visitor.logged(first)[-1] == "timeout"
    visitor.starts_in("en")
    assert visitor.visit_id not in (None, first)


def test_inactivity_time_is_configurable(make_app, factory_trial, kiosk_path_a) -> None:  # type: ignore[no-untyped-def]
    visitor = Visitor(make_app(INACTIVITY_SECONDS=5), kiosk_path_a)
    visitor.arrives()
    visitor.starts_in("en")
    assert 'data-inactivity="5"' in visitor.text
    visitor.walks_away(6)
    assert visitor.client.post(visitor.path + "alive").json == {"active": False}
    assert visitor.logged(_only_visit(visitor.app))[-1] == "timeout"


def test_script_keeps_a_reading_visitor(visitor: Visitor) -> None:
    visitor.arrives()
    visitor.starts_in("en")
    for _ in range(3):  # reading and scrolling for 3 x 60 s, the script reports each touch
        visitor.walks_away(60)
        assert visitor.client.post(visitor.path + "alive").json == {"active": True}
    visitor.looks_again()
    assert visitor.visit_id is not None and "timeout" not in visitor.logged()


def test_why_page_before_and_during_a_visit(factory_trial: Trial, visitor: Visitor) -> None:
    visitor.arrives()
    visitor.asks_why(lang="ar")
    assert '<html lang="ar" dir="rtl">' in visitor.text
    assert visitor.sees("لماذا أرى هذا؟") and not visitor.sees("رأيتَ النسخة")
    visitor.starts_in("en")
    seen = factory_trial.arm(visitor.arm_of())
    visitor.asks_why()
    number = factory_trial.arms.index(seen) + 1
    assert visitor.sees(f"You saw version {number} of 3: {seen.material['en'].title}")
    for arm in factory_trial.arms:  # what the other versions were (D10, docs/ethics.md#disclosure)
        assert visitor.sees(arm.material["en"].title)
    for _, text in factory_trial.disclosure_parts("en", PUBLIC_URL):
        assert visitor.sees(text)
    assert visitor.sees("your IP address, device details or fingerprints")
    assert visitor.sees("Open the public register") and visitor.sees("Finish")
    visitor.page = visitor.client.get(visitor.path + "register")
    assert visitor.page.status_code == 200 and visitor.sees(factory_trial.title)
    assert visitor.logged() == ["exposure"]  # the why page is not an exposure


def test_norm_arm_shows_the_locations_figure_with_source_and_date(
    app: Flask, factory_trial: Trial, kiosk_path_a: str
) -> None:
    for _ in range(6):  # one block of 6 holds every arm twice
        visitor = Visitor(app, kiosk_path_a)
        visitor.arrives()
        visitor.starts_in("en")
        if visitor.arm_of() == "norm":
            break
    assert visitor.arm_of() == "norm"
    assert '<strong class="figure-value">34</strong>' in visitor.text  # loc-a's value
    assert "{figure}" not in visitor.text
    assert visitor.sees("Return service annual figures") and visitor.sees("October 1, 2026")
    assert visitor.sees("of about 300 residents")


@pytest.mark.parametrize("language", ["nl", "en", "ar"])
def test_whole_visit_of_the_example_trial(app: Flask, example_trial: Trial, language: str) -> None:
    trial = example_trial
    visitor = Visitor(app, add_kiosk(app, trial, "azc-budel"))
    visitor.arrives()
    for code in trial.languages:
        assert visitor.sees(LANGUAGE_NAMES[code])  # each language named in itself
    visitor.starts_in(language)
    arm = trial.arm(visitor.arm_of())
    assert f'<html lang="{language}" dir="{trial.direction(language)}">' in visitor.text
    assert visitor.sees(arm.material[language].title)
    with app.test_request_context(), force_locale(language):
        buttons = [gettext("Finish"), gettext("Don't use my visit for the study"), gettext("Why?")]
    labels = [outcome.label[language] for outcome in trial.outcomes if outcome.label]
    for text in buttons + labels:
        assert visitor.sees(text)
    assert visitor.taps("contact_requested").status_code == 200
    visitor.asks_why()
    assert visitor.sees(arm.material[language].title) and visitor.page.status_code == 200  # type: ignore[union-attr]
    visitor.switches_to("en" if language != "en" else "ar")
    visitor.finishes()
    assert visitor.logged(_only_visit(app)) == [
        "exposure", "contact_requested", "language_switch", "exposure", "finish",
    ]  # fmt: skip


def test_a_page_loaded_twice_at_once_is_not_an_error(
    visitor: Visitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two loads racing to store the same exposure key: the loser is a duplicate, not a 503."""
    from sqlalchemy.exc import IntegrityError

    from experiments import store

    visitor.arrives()
    visitor.starts_in("en")

    def lost_the_race(*_args: object, **_options: object) -> None:
        raise IntegrityError("INSERT INTO events", {}, Exception("duplicate key"))

    monkeypatch.setattr(store, "record_event", lost_the_race)
    assert visitor.looks_again().status_code == 200
    assert visitor.logged() == ["exposure"]


def _renamed(data: dict) -> dict:
    """The test trial with every arm renamed and retitled, and an outcome event renamed."""
    for arm in data["arms"]:
        arm["id"] += "_v2"
        for material in arm["material"].values():
            material["title"] += " (v2)"
    for hypothesis in data["analysis"]["hypotheses"]:
        hypothesis["arm"] += "_v2"
    data["outcomes"][1]["event"] = "country_info_shown"
    return data


def test_a_visit_keeps_its_trial_version_when_the_trial_is_reloaded(
    app: Flask, factory_trial: Trial, visitor: Visitor, kiosk_path_a: str
) -> None:
    """Reloading a running trial (its arms renamed) changes nothing for visits under way:
    each is shown, and its events checked, with the version it started with."""
    visitor.arrives()
    visitor.starts_in("en")
    arm = factory_trial.arm(visitor.arm_of())
    run_trial(app, yaml.safe_dump(_renamed(trial_dict())), start=False)  # still running

    assert visitor.looks_again().status_code == 200
    assert visitor.sees(arm.material["en"].title) and not visitor.sees("(v2)")
    assert visitor.asks_why().status_code == 200
    number = factory_trial.arms.index(arm) + 1
    assert visitor.sees(f"You saw version {number} of 3: {arm.material['en'].title}")
    assert visitor.taps("country_info_opened").status_code == 200  # declared in its version
    visitor.looks_again()
    assert visitor.taps_without_script("contact_requested").status_code == 200
    assert visitor.switches_to("ar").status_code == 200 and visitor.sees(arm.material["ar"].title)
    assert visitor.client.post(visitor.path + "alive").json == {"active": True}
    visit = visitor.visit_id
    visitor.finishes()
    assert visitor.logged(visit) == [
        "exposure", "country_info_opened", "contact_requested", "language_switch", "exposure",
        "finish",
    ]  # fmt: skip
    exposure = _exposure(app, visit, "ar")  # type: ignore[arg-type]
    assert exposure.material_version == factory_trial.material_version(arm.id, "ar")

    newcomer = Visitor(app, kiosk_path_a)  # the next visitor sees the new version
    newcomer.arrives()
    newcomer.starts_in("en")
    assert newcomer.arm_of().endswith("_v2") and newcomer.sees("(v2)")
    assert newcomer.taps("country_info_opened").status_code == 400  # no longer declared
    assert newcomer.taps("country_info_shown").status_code == 200


def test_after_finish_the_visitor_sees_which_version_it_was_and_the_others(
    factory_trial: Trial, visitor: Visitor
) -> None:
    """D10: the "why" page after the visit, in the visit's language; then the start."""
    visitor.arrives()
    visitor.starts_in("en")
    visitor.switches_to("ar")
    seen = factory_trial.arm(visitor.arm_of())
    end = visitor.finishes()
    assert end.status_code == 200 and end.headers["Cache-Control"] == "no-store"
    assert '<html lang="ar" dir="rtl">' in visitor.text and visitor.sees("شكرًا لزيارتك")
    number = factory_trial.arms.index(seen) + 1
    assert re.search(rf"رأيتَ النسخة {number} من 3: ?{re.escape(seen.material['ar'].title)}",
                     visible_text(visitor.text))  # fmt: skip
    for arm in factory_trial.arms:  # what the other versions were
        assert visitor.sees(arm.material["ar"].title)
    assert re.search(
        rf'<meta http-equiv="refresh" content="90;url={re.escape(visitor.path)}">', visitor.text
    )
    assert f'href="{visitor.path}"' in visitor.text  # "Back to the start", one tap away
    assert "data-visit=" not in visitor.text and visitor.visit_id is None
    logged = visitor.logged(_only_visit(visitor.app))
    assert logged == ["exposure", "language_switch", "exposure", "finish"]
    again = visitor.client.post(visitor.path + "end", data={"reason": "finish"})
    assert again.status_code == 302  # no visit any more: straight to the welcome screen


def test_the_welcome_screen_opened_mid_visit_ends_the_visit_as_a_timeout(
    app: Flask, visitor: Visitor
) -> None:
    visitor.arrives()
    visitor.starts_in("en")
    first = visitor.visit_id
    visitor.arrives()  # e.g. the browser's back button, or an error page's way back
    assert visitor.visit_id is None and visitor.sees("English")
    assert visitor.logged(first) == ["exposure", "timeout"]
    visitor.arrives()
    assert visitor.logged(first) == ["exposure", "timeout"]  # logged once
