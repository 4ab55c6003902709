"""The interface catalogues: complete for every string in the code, placeholders intact."""

from __future__ import annotations

import re

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from app.i18n import TRANSLATIONS, catalogue_languages

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
