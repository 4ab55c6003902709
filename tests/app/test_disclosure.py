"""The disclosure is on every variant page, identical on every arm, and cannot be left out."""

from __future__ import annotations

import functools

import pytest
from flask import Flask, g
from flask_babel import force_locale, gettext
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import ChoiceLoader, DictLoader
from sqlalchemy import select

from app import create_app
from app.db import get_engine
from app.kiosk import render
from app.kiosk.visit import Visit
from experiments.eventlog import events
from experiments.model import DISCLOSURE_ELEMENTS, Trial
from tests.app.visitor import Visitor, add_kiosk
from tests.factories import PUBLIC_URL, make_trial


def test_every_arm_in_every_language_of_the_example(app: Flask, example_trial: Trial) -> None:
    """All 5 arms x nl/en/ar: full disclosure, byte-identical block, its version recorded."""
    path = add_kiosk(app, example_trial, "gezinslocatie-gilze")
    for language in example_trial.languages:
        blocks: dict[str, str] = {}
        for _ in range(20):  # blocks of 10 per location: every arm twice per block
            visitor = Visitor(app, path)
            visitor.arrives()
            assert visitor.starts_in(language).status_code == 200
            arm = visitor.arm_of()
            block = render.disclosure_block(visitor.text)
            for _element, text in example_trial.disclosure_parts(language, PUBLIC_URL):
                assert visitor.sees(text)
            blocks.setdefault(arm, block)
            assert block == blocks[arm]
            if len(blocks) == len(example_trial.arms):
                break
        assert set(blocks) == {arm.id for arm in example_trial.arms}, language
        assert len(set(blocks.values())) == 1, f"the disclosure differs between arms ({language})"
    with get_engine(app).connect() as conn:
        shown = conn.execute(
            select(events.c.language, events.c.disclosure_version).where(
                events.c.type == "exposure"
            )
        ).all()
    assert shown and all(
        version == example_trial.disclosure_version(language) for language, version in shown
    )


def test_disclosure_names_the_kiosks_own_buttons(app: Flask, example_trial: Trial) -> None:
    """The disclosure tells visitors which buttons to tap; those buttons must exist."""
    with app.test_request_context():
        for language in example_trial.languages:
            text = example_trial.disclosure_text(language)
            with force_locale(language):
                labels = [gettext("Don't use my visit for the study"), gettext("Finish")]
                labels.append(gettext("Why?"))
            for label in labels:
                assert label in text, f"{language}: the disclosure does not name {label!r}"


BROKEN = {
    "no disclosure": '{% extends "kiosk/layout.html" %}{% block main %}'
    "<h1>{{ material.title }}</h1>{% endblock %}",
    "hidden disclosure": '{% extends "kiosk/layout.html" %}{% block main %}'
    '<aside class="disclosure" id="disclosure" hidden>'
    "{% for e, t in disclosure %}<p>{{ t }}</p>{% endfor %}</aside>{% endblock %}",
    "one element missing": '{% extends "kiosk/layout.html" %}{% block main %}'
    '<aside class="disclosure" id="disclosure">'
    "{% for e, t in disclosure[:-1] %}<p>{{ t }}</p>{% endfor %}</aside>{% endblock %}",
    "two disclosures": '{% extends "kiosk/layout.html" %}{% block main %}'
    '{% include "kiosk/_disclosure.html" %}{% include "kiosk/_disclosure.html" %}'
    "{% endblock %}",
}


@pytest.mark.parametrize("template", list(BROKEN.values()), ids=list(BROKEN))
def test_a_variant_page_without_the_disclosure_is_refused(
    app: Flask, visitor: Visitor, monkeypatch: pytest.MonkeyPatch, template: str
) -> None:
    app.jinja_env.loader = ChoiceLoader(
        [DictLoader({"test/broken.html": template}), app.jinja_env.loader]  # type: ignore[list-item]
    )
    monkeypatch.setattr(render, "VARIANT_TEMPLATE", "test/broken.html")
    visitor.arrives()
    page = visitor.starts_in("en")
    assert page.status_code == 500
    assert visitor.sees("Something went wrong") and "Traceback" not in visitor.text
    assert visitor.logged() == []  # assigned, but no exposure was counted
    assert visitor.arm_of()  # the assignment itself was recorded before anything was shown


TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="{}"), min_size=1
).filter(lambda text: text.strip() != "")


@functools.lru_cache
def _render_app(translations: str, path: str) -> Flask:
    """One app for all examples (it never connects: rendering needs no database)."""
    return create_app(
        {
            "DATABASE_URL": f"sqlite:///{path}",
            "SECRET_KEY": "x",
            "BABEL_TRANSLATION_DIRECTORIES": translations,
        }
    )


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(TEXT, min_size=8, max_size=8), organisation=TEXT)
def test_any_disclosure_text_survives_rendering(
    translations: str, tmp_path_factory: pytest.TempPathFactory, texts: list[str], organisation: str
) -> None:
    """Property: whatever the disclosure says (markup characters, quotes, any script), every
    arm's page renders it completely and identically, so the guard never has to refuse."""
    disclosure = dict(zip(DISCLOSURE_ELEMENTS, texts, strict=True))
    disclosure["who"] = "{organisation}: " + disclosure["who"]
    trial = make_trial(organisation=organisation, disclosure={"en": disclosure, "ar": disclosure})
    app = _render_app(translations, str(tmp_path_factory.getbasetemp() / "never-opened.db"))
    blocks = set()
    with app.test_request_context():
        g.token, g.url_trial, g.url_location = "token", trial.id, "loc-a"
        for language in trial.languages:
            for arm in trial.arms:
                visit = Visit("visit", language, 0.0, False, arm.id)
                html = render.render_variant(
                    trial, arm, language, "loc-a", visit=visit, noted=None,
                    fallback_key="0" * 32, inactivity_seconds=90, retry_max_seconds=60,
                )  # fmt: skip
                blocks.add((language, render.disclosure_block(html)))
    assert len(blocks) == len(trial.languages)  # identical on every arm
