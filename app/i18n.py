"""Interface languages: Flask-Babel set up, the locale of each request, language names.

Interface strings (buttons, headings) come from the catalogues in ``app/translations`` (the
``.po`` files are committed, ``make install`` compiles them to ``.mo``). Materials and the
disclosure come from the trial file. A trial language without a catalogue still works: its
interface strings fall back to English.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, g, request
from flask_babel import Babel, get_locale

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


def init_app(app: Flask) -> None:
    directories = app.config.get("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = directories
    first = Path(directories.split(";")[0])
    app.config.setdefault("INTERFACE_LANGUAGES", catalogue_languages(first))
    for language in app.config["INTERFACE_LANGUAGES"]:
        if not (first / language / "LC_MESSAGES" / "messages.mo").exists():
            app.logger.warning(
                "interface catalogue %s is not compiled; run `make install` "
                "(pybabel compile -d app/translations); English is shown instead",
                language,
            )
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals.update(language_name=language_name, direction=text_direction)
    app.context_processor(_page_language)


def _page_language() -> dict[str, str]:
    """The language of the page being rendered (its ``<html lang>``; ``dir`` follows)."""
    locale = get_locale()
    return {"page_language": str(locale) if locale else current_app.config["DEFAULT_LANGUAGE"]}


def language_name(code: str) -> str:
    """A language named in itself (``ar`` → ``العربية``); the code when unknown."""
    return LANGUAGE_NAMES.get(code, code)
