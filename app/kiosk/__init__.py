"""The kiosk blueprint: welcome → randomized visit → variant page → outcome, opt-out, finish.

Every kiosk URL starts with ``/kiosk/<trial>/<location>/<token>/``. The token (only its hash is
stored) says which kiosk this is; a kiosk serves only its own trial and location, and only
while the trial runs or is paused (then it shows the control arm's plain information and
randomizes nobody). See :mod:`app.kiosk.views` for the pages.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g
from flask_babel import lazy_gettext as _l

from app.db import commit, get_connection
from app.errors import refuse
from app.i18n import missing_languages
from app.kiosk.render import disclosure_html, long_date, plain_paragraphs
from experiments import store

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk/<trial_id>/<location>/<token>")

bp.add_app_template_filter(plain_paragraphs, "paragraphs")
bp.add_app_template_filter(long_date, "long_date")
bp.add_app_template_global(disclosure_html, "disclosure_html")


@bp.url_value_preprocessor
def _pull_kiosk(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    values = values or {}
    g.url_trial = values.pop("trial_id", "")
    g.url_location = values.pop("location", "")
    g.token = values.pop("token", "")


@bp.url_defaults
def _add_kiosk(_endpoint: str, values: dict[str, Any]) -> None:
    if "token" in g:
        values.setdefault("trial_id", g.url_trial)
        values.setdefault("location", g.url_location)
        values.setdefault("token", g.token)


@bp.before_request
def _resolve_kiosk() -> None:
    """Refuse unknown tokens, tokens of another trial or location, stopped trials, and trials
    in a language the interface has no catalogue for.

    The kiosk and its trial's row are read in one query on every request (no cache that a
    switch-off in another process would have to reach); the parsed trial version is cached per
    process by its hash, which never changes.
    """
    conn = get_connection()
    kiosk = store.find_kiosk(conn, g.token)
    if kiosk is None:
        raise refuse(404, _l("This kiosk link is not valid. Please ask a staff member."))
    if kiosk.trial_id != g.url_trial or kiosk.location != g.url_location:
        raise refuse(
            403,
            _l("This kiosk link belongs to another study or location. Please ask a staff member."),
        )
    if not kiosk.active:  # switched off or revoked
        raise refuse(403, _l("This kiosk has been switched off. Please ask a staff member."))
    if kiosk.needs_contact_update(store.utcnow()) and store.note_contact(conn, kiosk.id):
        commit()  # the last contact, at most once a minute per kiosk
    record = kiosk.trial_record
    if record is None or not record.serving:  # a paused trial shows plain information
        raise refuse(403, _l("This study is not running at the moment. Please ask a staff member."))
    trial = store.current_trial(conn, record)
    missing = missing_languages(trial.languages)
    if missing:
        # The disclosure names the buttons in each language: English buttons would not match.
        current_app.logger.error(
            "trial %s uses %s, which the kiosk has no interface catalogue for: add "
            "app/translations/<language>/LC_MESSAGES/messages.po (see docs/kiosk.md)",
            trial.id,
            ", ".join(missing),
        )
        raise refuse(
            503,
            _l(
                "This kiosk is not set up for every language of the study. "
                "Please ask a staff member."
            ),
        )
    g.kiosk = kiosk
    g.record = record
    g.trial = trial


from app.kiosk import media, views  # noqa: E402, F401  (registers the routes)
