"""The interface catalogues: complete for every string in the code, placeholders intact, compiled
at startup when needed, and never replaced by English buttons."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask_babel import force_locale, gettext
from sqlalchemy import func, select

from app import StartupError, create_app, i18n
from app.db import get_engine
from app.i18n import TRANSLATIONS, catalogue_languages
from experiments.eventlog import visits
from tests.app.visitor import EXAMPLE, Visitor, add_kiosk, run_trial
from tests.factories import PUBLIC_URL, trial_yaml

METHOD_MAP = [("**.py", "python"), ("**/templates/**.html", "jinja2")]


def _strings_in_code() -> set[str]:
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    found = extract_from_dir(str(TRANSLATIONS.parent), METHOD_MAP, keywords=keywords)
    return {message for _file, _line, message, _comments, _context in found}


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)s", text))


def test_the_kiosk_speaks_dutch_english_and_arabic() -> None:
    assert {"nl", "en", "ar"} <= set(catalogue_languages())


@pytest.mark.parametrize("language", catalogue_languages())
def test_every_interface_string_is_translated(language: str) -> None:
    path = TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalogue = read_po(source)
    translated = {message.id: message for message in catalogue if message.id}
    in_code = _strings_in_code()
    missing, stale = in_code - set(translated), set(translated) - in_code
    assert not missing, f"{language}: run pybabel extract/update (app/babel.cfg): {missing}"
    assert not stale, f"{language}: strings no longer used: {stale}"
    for msgid, message in translated.items():
        assert message.string, f"{language}: {msgid!r} is not translated"
        assert not message.fuzzy, f"{language}: {msgid!r} is marked fuzzy"
        assert _placeholders(message.string) == _placeholders(msgid), (language, msgid)


# -- catalogues compiled at startup ---------------------------------------------------------


def _uncompiled_copy(target: Path, languages: list[str] | None = None) -> Path:
    """The committed ``.po`` files only (as on a fresh clone without ``make install``)."""
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        if languages is None or po.parent.parent.name in languages:
            (target / po.relative_to(TRANSLATIONS)).parent.mkdir(parents=True)
            shutil.copy(po, target / po.relative_to(TRANSLATIONS))
    return target


def _arabic(msgid: str) -> str:
    with (TRANSLATIONS / "ar" / "LC_MESSAGES" / "messages.po").open("rb") as source:
        return str(read_po(source)[msgid].string)


BUTTONS = ["Finish", "Don't use my visit for the study", "Why?"]


def _arabic_visit_shows_the_buttons_its_disclosure_names(app: Flask) -> None:
    """D5: the Arabic disclosure names the buttons, in Arabic; they must be on screen."""
    trial = run_trial(app, EXAMPLE.read_text(encoding="utf-8"))
    visitor = Visitor(app, add_kiosk(app, trial, "azc-budel"))
    visitor.arrives()
    assert visitor.starts_in("ar").status_code == 200
    finish = re.search(r'<button class="finish"[^>]*>([^<]*)</button>', visitor.text)
    assert finish and finish[1] == _arabic("Finish")
    for msgid in BUTTONS:
        assert visitor.sees(_arabic(msgid)) and _arabic(msgid) in trial.disclosure_text("ar")
    for _, text in trial.disclosure_parts("ar", PUBLIC_URL):
        assert visitor.sees(text)


def test_missing_catalogues_are_compiled_at_startup(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    source = _uncompiled_copy(tmp_path / "translations")
    app = make_app(BABEL_TRANSLATION_DIRECTORIES=str(source))
    assert app.config["BABEL_TRANSLATION_DIRECTORIES"] == str(source)
    for language in ["nl", "en", "ar"]:
        assert (source / language / "LC_MESSAGES" / "messages.mo").exists()
    _arabic_visit_shows_the_buttons_its_disclosure_names(app)


def test_a_stale_catalogue_is_recompiled(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    source = _uncompiled_copy(tmp_path / "translations")
    folder = source / "ar" / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as po:
        old = read_po(po)
    old["Finish"].string = "an old translation"
    with (folder / "messages.mo").open("wb") as mo:
        write_mo(mo, old)
    an_hour_ago = time.time() - 3600
    os.utime(folder / "messages.mo", (an_hour_ago, an_hour_ago))
    app = make_app(BABEL_TRANSLATION_DIRECTORIES=str(source))
    with app.test_request_context(), force_locale("ar"):
        assert gettext("Finish") == _arabic("Finish")


def test_a_read_only_package_compiles_into_the_instance_folder(
    make_app: Callable[..., Flask], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _uncompiled_copy(tmp_path / "package")
    monkeypatch.setattr(i18n, "_writable", lambda _directory: False)
    instance = tmp_path / "instance" / "translations"
    app = make_app(
        BABEL_TRANSLATION_DIRECTORIES=str(source), COMPILED_TRANSLATIONS_DIRECTORY=str(instance)
    )
    assert app.config["BABEL_TRANSLATION_DIRECTORIES"] == str(instance)
    assert not list(source.glob("*/LC_MESSAGES/messages.mo"))
    assert (instance / "ar" / "LC_MESSAGES" / "messages.mo").exists()
    _arabic_visit_shows_the_buttons_its_disclosure_names(app)


def test_a_broken_catalogue_stops_startup(tmp_path: Path) -> None:
    source = _uncompiled_copy(tmp_path / "translations", ["ar"])
    (source / "ar" / "LC_MESSAGES" / "messages.po").write_bytes(b'msgid "x"\nmsgstr \xff"')
    with pytest.raises(StartupError, match=r"cannot read the interface catalogue .*ar"):
        create_app(
            {
                "DATABASE_URL": f"sqlite:///{tmp_path / 'never-opened.db'}",
                "SECRET_KEY": "x",
                "BABEL_TRANSLATION_DIRECTORIES": str(source),
            }
        )


def test_a_trial_language_without_catalogue_is_refused_not_shown_in_english(
    make_app: Callable[..., Flask], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = _uncompiled_copy(tmp_path / "translations", ["en", "nl"])
    app = make_app(BABEL_TRANSLATION_DIRECTORIES=str(source))
    trial = run_trial(app, trial_yaml())  # en and ar
    visitor = Visitor(app, add_kiosk(app, trial, "loc-a"))
    page = visitor.arrives()
    assert page.status_code == 503
    assert visitor.sees("This kiosk is not set up for every language of the study.")
    assert visitor.client.post(visitor.path + "start", data={"language": "en"}).status_code == 503
    assert "uses ar, which the kiosk has no interface catalogue for" in caplog.text
    with get_engine(app).connect() as conn:
        assert conn.execute(select(func.count()).select_from(visits)).scalar_one() == 0
