"""Interface languages: Flask-Babel set up, the locale of each request, language names.

Interface strings (buttons, headings) come from the catalogues in ``app/translations`` (the
``.po`` files are committed; ``make install`` compiles them to ``.mo``, and so does the app at
startup when a ``.mo`` is missing or older than its ``.po``, see :func:`compile_catalogues`).
Materials and the disclosure come from the trial file. The disclosure names the kiosk's buttons
("Finish", ...) in each trial language, so a trial language without a catalogue is never shown
with English buttons: the kiosk refuses to show that trial (:func:`missing_languages`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, current_app, g, request
from flask_babel import Babel, get_locale

from app.config import StartupError
from experiments.vocabulary import LANGUAGE_NAMES, text_direction

TRANSLATIONS = Path(__file__).with_name("translations")


def catalogue_languages(directory: Path = TRANSLATIONS) -> list[str]:
    """Languages with an interface catalogue (``<lang>/LC_MESSAGES/messages.po``)."""
    return sorted(path.parent.parent.name for path in directory.glob("*/LC_MESSAGES/messages.po"))


def select_locale() -> str:
    """The visit's language on kiosk pages; elsewhere ``?lang=``, the browser's, the default."""
    if getattr(g, "language", None):
        return g.language
    available = current_app.config["INTERFACE_LANGUAGES"]
    asked = request.args.get("lang", "")
    if asked in available:
        return asked
    best = request.accept_languages.best_match(available)
    return best or current_app.config["DEFAULT_LANGUAGE"]


def _catalogue(directory: Path, language: str, suffix: str) -> Path:
    return directory / language / "LC_MESSAGES" / f"messages.{suffix}"


def _pair(source: Path, target: Path, language: str) -> tuple[Path, Path]:
    return _catalogue(source, language, "po"), _catalogue(target, language, "mo")


def _stale(po: Path, mo: Path) -> bool:
    return not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK)


def _compile(po: Path, mo: Path) -> None:
    """Compile ``po`` to ``mo`` like ``pybabel compile``; written atomically, so workers that
    start at the same time never read half a file."""
    mo.parent.mkdir(parents=True, exist_ok=True)
    try:
        with po.open("rb") as source:
            catalogue = read_po(source)
    except Exception as error:  # babel raises several types for a broken file
        raise StartupError(f"cannot read the interface catalogue {po}: {error}") from None
    handle, temporary = tempfile.mkstemp(dir=mo.parent, suffix=".mo.tmp")
    try:
        with os.fdopen(handle, "wb") as compiled:
            write_mo(compiled, catalogue)
        os.replace(temporary, mo)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def compile_catalogues(source: Path, fallback: Path) -> Path:
    """Make sure every catalogue of ``source`` is compiled and current; return the directory
    that holds the ``.mo`` files.

    A ``.mo`` that is missing or older than its ``.po`` is compiled next to it when ``source``
    can be written (as ``make install`` does); otherwise every catalogue is compiled into
    ``fallback`` (the instance folder's ``translations``), which is returned instead.
    """
    languages = catalogue_languages(source)
    stale = [code for code in languages if _stale(*_pair(source, source, code))]
    if not stale:
        return source
    if all(_writable(_catalogue(source, code, "po").parent) for code in stale):
        for code in stale:
            _compile(*_pair(source, source, code))
        return source
    for code in languages:
        po, mo = _pair(source, fallback, code)
        if _stale(po, mo):
            _compile(po, mo)
    return fallback


def init_app(app: Flask) -> None:
    """Compile the catalogues if needed (``COMPILED_TRANSLATIONS_DIRECTORY``, default
    ``instance/translations``, when the package cannot be written), then set up Flask-Babel."""
    directories = str(app.config.get("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS)))
    first, *others = directories.split(";")
    fallback = app.config.get("COMPILED_TRANSLATIONS_DIRECTORY") or (
        Path(app.instance_path) / "translations"
    )
    compiled = compile_catalogues(Path(first), Path(fallback))
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join([str(compiled), *others])
    app.config.setdefault("INTERFACE_LANGUAGES", catalogue_languages(Path(first)))
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals.update(language_name=language_name, direction=text_direction)
    app.context_processor(_page_language)


def missing_languages(languages: Iterable[str]) -> list[str]:
    """Those of ``languages`` that have no interface catalogue (the kiosk cannot show them)."""
    available = set(current_app.config["INTERFACE_LANGUAGES"])
    return [code for code in languages if code not in available]


def _page_language() -> dict[str, str]:
    """The language of the page being rendered (its ``<html lang>``; ``dir`` follows)."""
    locale = get_locale()
    return {"page_language": str(locale) if locale else current_app.config["DEFAULT_LANGUAGE"]}


def language_name(code: str) -> str:
    """A language named in itself (``ar`` → ``العربية``); the code when unknown."""
    return LANGUAGE_NAMES.get(code, code)
