"""The kiosk's pages. Every state change is a form POST; the small script only adds the event
queue and the inactivity timer (the pages work without it).

welcome ──start(language)──▶ visit (variant page, exposure logged) ──▶ end (finish / timeout)
                               │ language · why · opt-out · outcome action
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

from flask import abort, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import force_locale, gettext
from werkzeug.wrappers import Response

from app.db import commit, get_connection
from app.kiosk import bp
from app.kiosk import visit as visits
from app.kiosk.render import (
    disclosure_html,
    ensure_disclosure,
    paragraphs,
    register_address,
    render_variant,
    shown_claims,
)
from app.labels import ELEMENT_LABELS, NEVER_STORED, STORED, STRENGTH_LABELS
from experiments import store
from experiments.model import Localized, localized


def _texts(value: Localized) -> list[str]:
    """The distinct texts of a visitor-facing field, in the trial's language order."""
    return [value] if isinstance(value, str) else list(dict.fromkeys(value.values()))


bp.add_app_template_filter(localized, "localized")
bp.add_app_template_filter(_texts, "texts")


def _welcome() -> Response:
    return redirect(url_for("kiosk.welcome"))


def _visit_or_welcome() -> visits.Visit | Response:
    """The current visit (its last tap now), or a redirect to the welcome screen."""
    if visits.timed_out_visit():
        return _welcome()
    visit = visits.current()
    if visit is None:
        return _welcome()
    visits.touch(visit)
    g.language = visit.language
    g.trial = visit.trial or g.trial  # the version the visit started with, not the newest
    return visit


def _visit_if_any() -> visits.Visit | Response | None:
    """Like :func:`_visit_or_welcome` during a visit; outside one (a page opened from the
    welcome screen) None, with the language from ``?lang=``."""
    if visits.current() is not None:
        return _visit_or_welcome()
    language = request.args.get("lang", "")
    g.language = language if language in g.trial.languages else g.trial.languages[0]
    return None


def _page_context(visit: visits.Visit | None) -> dict[str, object]:
    return {
        "visit": visit,
        "register_address": register_address,
        "kiosk": g.kiosk,
        "inactivity_seconds": current_app.config["INACTIVITY_SECONDS"],
        "retry_max_seconds": current_app.config["RETRY_MAX_SECONDS"],
    }


def _no_store(html: str, status: int = 200) -> Response:
    response = current_app.make_response((html, status))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
def welcome() -> Response:
    """Language choice (each language named in itself) and the short study notice.

    Opened during a visit (the back button, an error page's way back), it ends that visit: it
    is logged as ``timeout`` (left without "Finish"), never silently dropped."""
    if not visits.timed_out_visit():
        abandoned = visits.current()
        if abandoned is not None:
            visits.record_end(abandoned, "timeout")
    visits.end()
    g.language = g.trial.languages[0]
    greetings = []
    for code in g.trial.languages:
        with force_locale(code):
            greetings.append(
                {
                    "language": code,
                    "welcome": gettext("Welcome"),
                    "start": gettext("Start"),
                    "notice": gettext(
                        "This kiosk is part of a study: different visitors see different "
                        "versions of the same information. Using it is voluntary and has no "
                        "effect on your case."
                    ),
                    "why": gettext("Why am I seeing this?"),
                }
            )
    html = render_template(
        "kiosk/welcome.html", trial=g.trial, greetings=greetings, **_page_context(None)
    )
    return _no_store(html)


@bp.post("/start")
def start() -> Response:
    """A new visitor: create the visit and record its assignment before anything is shown."""
    language = request.form.get("language", "")
    if language not in g.trial.languages:
        abort(400)
    if g.record.paused:  # randomize nobody: the control arm's plain information instead
        return redirect(url_for("kiosk.information", lang=language))
    conn = get_connection()
    # The kiosk and its trial again, locked: a switch-off, revoke, pause or close that
    # committed since this request began is seen here, and one that comes later waits.
    record = store.lock_kiosk_for_start(conn, g.kiosk.id, g.trial.id)
    if record is None or not record.running:
        commit()  # releases the locks
        if record is not None and record.paused:
            return redirect(url_for("kiosk.information", lang=language))
        abort(403)
    interval = current_app.config["START_INTERVAL_SECONDS"]
    if interval:
        recent = store.recent_kiosk_visit(conn, g.kiosk.id, timedelta(seconds=interval))
        if recent is not None:
            commit()  # releases the kiosk's row
            return _show_recent(recent)
    trial = g.trial
    if record.current_version != g.record.current_version:  # loaded since the request began
        trial = store.current_trial(conn, record)
    started = store.start_visit(
        conn,
        trial,
        location=g.kiosk.location,
        language=language,
        kiosk_id=g.kiosk.id,
        record=record,
    )
    commit()
    visits.begin(started.id, language)
    return redirect(url_for("kiosk.variant"))


def _show_recent(recent: store.RecentVisit) -> Response:
    """A start refused because the kiosk has just started a visit (a double tap, a script):
    show the visit of the cookie, or else the one just started (the first tap's answer may
    not have reached this browser), instead of starting another. A visit that has ended
    (finished, timed out, opted out) is nobody's to join: back to the welcome screen, where
    the next tap after the interval starts a new visit."""
    if visits.current() is None:
        if recent.ended:
            return _welcome()
        visits.begin(recent.id, recent.language)
    return redirect(url_for("kiosk.variant"))


@bp.get("/information")
def information() -> Response:
    """While the trial is paused: the control arm's plain information with the disclosure, in
    the language of ``?lang=``. No visit is started and nothing is stored."""
    if not g.record.paused:
        return _welcome()
    language = request.args.get("lang", "")
    g.language = language if language in g.trial.languages else g.trial.languages[0]
    trial, arm = g.trial, g.trial.control_arm
    html = render_template(
        "kiosk/plain.html",
        trial=trial,
        arm=arm,
        material=arm.material[g.language],
        paragraphs=paragraphs(trial, arm, g.language, g.kiosk.location),
        claims=shown_claims(arm.claims, g.language),
        disclosure=disclosure_html(trial, g.language),
        **_page_context(None),
    )
    ensure_disclosure(html, trial, g.language)
    return _no_store(html)


@bp.get("/visit")
def variant() -> Response:
    """The arm's material with the disclosure; the exposure is logged once it has rendered."""
    visit = _visit_or_welcome()
    if isinstance(visit, Response):
        return visit
    trial = g.trial
    arm = trial.arm(visit.arm)
    noted = request.args.get("noted")
    html = render_variant(
        trial,
        arm,
        visit.language,
        g.kiosk.location,
        noted=noted if noted in trial.outcome_events else None,
        fallback_key=uuid.uuid4().hex,
        **_page_context(visit),
    )
    spec = store.EventSpec(
        visit.id,
        "exposure",
        f"x-{visit.id}-{visit.language}",
        visit.language,
        material_version=trial.material_version(arm.id, visit.language),
        disclosure_version=trial.disclosure_version(visit.language),
    )
    visits.log(spec)
    return _no_store(html)


@bp.post("/alive")
def alive() -> Response:
    """The page's script reports touches here, so a visitor who is reading keeps the visit."""
    visit = _visit_or_welcome()
    active = not isinstance(visit, Response)
    response = current_app.make_response(({"active": active}, 200))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/language")
def language() -> Response:
    """Switch language inside a visit: logged, and the arm stays the same."""
    visit = _visit_or_welcome()
    if isinstance(visit, Response):
        return visit
    chosen = request.form.get("language", "")
    if chosen not in g.trial.languages:
        abort(400)
    if chosen != visit.language:
        spec = store.EventSpec(visit.id, "language_switch", uuid.uuid4().hex, chosen)
        visits.log(spec)
        session["language"] = chosen
    return redirect(url_for("kiosk.variant"))


@bp.post("/action")
def action() -> Response:
    """An outcome button without JavaScript (with it, the page posts to the events API)."""
    visit = _visit_or_welcome()
    if isinstance(visit, Response):
        return visit
    event = request.form.get("event", "")
    labelled = {outcome.event for outcome in g.trial.outcomes if outcome.label}
    key = request.form.get("key", "")
    if event not in labelled or not re.fullmatch(r"[0-9a-f]{16,64}", key):
        abort(400)
    spec = store.EventSpec(visit.id, event, key, visit.language)
    visits.log(spec)
    return redirect(url_for("kiosk.variant", noted=event, _anchor=f"noted-{event}"))


@bp.post("/opt-out")
def opt_out() -> Response:
    """Opt-out ("don't use my visit for the study"), one tap: the visit stays only as a count."""
    visit = _visit_or_welcome()
    if isinstance(visit, Response):
        return visit
    spec = store.EventSpec(visit.id, "opt_out", f"o-{visit.id}", visit.language)
    visits.log(spec)
    session["opted_out"] = True
    visit.opted_out = True
    html = render_template("kiosk/opted_out.html", trial=g.trial, **_page_context(visit))
    return _no_store(html)


@bp.post("/end")
def end() -> Response:
    """Finish: log it once and show which version the visitor saw and what the others were
    (D10 in docs/ethics.md), then the welcome screen. The inactivity timer: log it, show the
    welcome."""
    visit = visits.current()
    reason = "timeout" if request.form.get("reason") == "timeout" else "finish"
    if visit is None or visits.timed_out_visit():
        visits.end()
        return _welcome()
    visits.record_end(visit, reason)
    visits.end()
    if reason == "timeout":
        return _welcome()
    g.language = visit.language
    g.trial = visit.trial or g.trial
    return _no_store(_why_page(None, seen=g.trial.arm(visit.arm), finished=True))


def _why_page(visit: visits.Visit | None, **context: object) -> str:
    return render_template(
        "kiosk/why.html",
        trial=g.trial,
        language=g.language,
        element_labels=ELEMENT_LABELS,
        strength_labels=STRENGTH_LABELS,
        stored=STORED,
        never_stored=NEVER_STORED,
        **_page_context(visit),
        **context,
    )


@bp.get("/why")
def why() -> Response:
    """The full explanation: the disclosure, what is stored, which version and the others."""
    visit = _visit_if_any()
    if isinstance(visit, Response):
        return visit
    return _no_store(_why_page(visit, seen=g.trial.arm(visit.arm) if visit else None))


@bp.get("/register")
def register() -> Response:
    """The trial's public register entry inside the kiosk frame ("Finish" stays visible)."""
    visit = _visit_if_any()
    if isinstance(visit, Response):
        return visit
    html = render_template(
        "kiosk/register.html",
        trial=store.current_trial(get_connection(), g.record),  # the register shows the newest
        record=g.record,
        languages=[g.language],
        element_labels=ELEMENT_LABELS,
        strength_labels=STRENGTH_LABELS,
        **_page_context(visit),
    )
    return _no_store(html)


#: The service worker behind the offline screen (served under the kiosk's own path, so its
#: scope is this kiosk's pages and nothing else).
SERVICE_WORKER = Path(__file__).resolve().parent.parent / "static" / "kiosk-sw.js"


@bp.get("/sw.js")
def service_worker() -> Response:
    """The offline screen's service worker; the trial's languages reach it in its URL."""
    response = current_app.make_response(SERVICE_WORKER.read_text(encoding="utf-8"))
    response.headers["Content-Type"] = "text/javascript; charset=utf-8"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/offline")
def offline() -> Response:
    """The "connection lost" screen in one language. The service worker keeps a copy of it for
    each language and shows it when the server cannot be reached; it holds nothing of a visit."""
    language = request.args.get("lang", "")
    g.language = language if language in g.trial.languages else g.trial.languages[0]
    html = render_template(
        "kiosk/offline.html",
        trial=g.trial,
        languages=g.trial.languages,
        **_page_context(None),
    )
    return _no_store(html)


@bp.get("/ping")
def ping() -> Response:
    """Whether the server answers (the offline screen asks before it returns to the start)."""
    response = current_app.make_response(("", 204))
    response.headers["Cache-Control"] = "no-store"
    return response
