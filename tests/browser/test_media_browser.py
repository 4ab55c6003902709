"""Pictures and narrations in a real browser (issue #13): Chromium at the kiosk, tablet and phone
sizes, on the Tea Room example with a picture on every arm (alt text in nl, en and ar) and its
English narrations, loaded with their media as ``nudgelab trial load`` stores them.

Each picture is served by the app (nothing from outside), shown with its alt text in the
visit's language and within the screen, and the disclosure's essentials and the heading stay
on the first screen. The narration starts only on a tap, its transcript is one tap away, each
play is stored once as ``played_audio`` (a pause and going on is the same play), and the
service worker keeps the files so they are there without a connection.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from werkzeug.serving import make_server

from app import create_app
from app.db import dispose
from experiments.check import check_path
from experiments.eventlog import upgrade
from experiments.model import Trial
from tests.app.visitor import add_kiosk, run_trial
from tests.browser.conftest import LiveKiosk
from tests.browser.test_kiosk_browser import (
    INACTIVITY,
    SHORT_INACTIVITY,
    VIEWPORTS,
    Screen,
    _context,
    logged,
    wait_for,
)
from tests.factories import PUBLIC_URL, SETTINGS

pytestmark = pytest.mark.browser

TRIALS = Path("experiments/trials")
PICTURE = TRIALS / "organ-donation-2013" / "group-of-people.png"
ALT = {
    "nl": "Een tekening van zeven mensen naast elkaar",
    "en": "A drawing of seven people side by side",
    "ar": "رسم لسبعة أشخاص يقفون جنبًا إلى جنب",
}


def media_trial(folder: Path) -> str:
    """The Tea Room example with the same picture on every arm, checked: the stored text."""
    shutil.copytree(TRIALS / "tearoom-return-info", folder / "tearoom-return-info")
    shutil.copy(PICTURE, folder / "tearoom-return-info" / "people.png")
    data = yaml.safe_load((TRIALS / "tearoom-return-info.yaml").read_text(encoding="utf-8"))
    for arm in data["arms"]:
        arm["images"] = [
            {
                "file": "tearoom-return-info/people.png",
                "sha256": hashlib.sha256(PICTURE.read_bytes()).hexdigest(),
                "kind": "drawing",
                "alt": ALT,
            }
        ]
    path = folder / "tearoom-return-info.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    result = check_path(path, settings=SETTINGS)
    assert result.ok, [str(p) for p in result.errors]
    return result.source


@contextmanager
def serving(app: Flask, source: str) -> Iterator[tuple[LiveKiosk, Trial]]:
    trial = run_trial(app, source)
    path = add_kiosk(app, trial, "gezinslocatie-katwijk")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveKiosk(app, f"http://127.0.0.1:{server.server_port}", path), trial
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def media_kiosk(make_app: Any, tmp_path: Path) -> Iterator[tuple[LiveKiosk, Trial]]:
    """The kiosk on the test database (SQLite and PostgreSQL)."""
    app = make_app(PUBLIC_URL=PUBLIC_URL, INACTIVITY_SECONDS=INACTIVITY)
    with serving(app, media_trial(tmp_path)) as served:
        yield served


@pytest.fixture
def layout_media_kiosk(tmp_path: Path, translations: str) -> Iterator[tuple[LiveKiosk, Trial]]:
    """The kiosk on a SQLite file, for what the browser draws (no database in it)."""
    url = f"sqlite:///{tmp_path / 'layout.db'}"
    upgrade(url)
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "test-secret",
            "TESTING": True,
            "BABEL_TRANSLATION_DIRECTORIES": translations,
            "PUBLIC_URL": PUBLIC_URL,
            "INACTIVITY_SECONDS": INACTIVITY,
        }
    )
    try:
        with serving(app, media_trial(tmp_path)) as served:
            yield served
    finally:
        dispose(app)


def _start(page: Any, kiosk: LiveKiosk, language: str) -> str:
    page.goto(kiosk.url)
    page.locator(f".language-choice button[value={language}]").click()
    page.wait_for_selector(".material h1")
    # The picture is measured only after the page's load event: the heading is in the DOM
    # before the picture has arrived (a CI run found the Arabic kiosk picture not yet loaded).
    page.wait_for_load_state("load")
    return str(page.locator("body").get_attribute("data-visit"))


def _picture(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
          const img = document.querySelector('.material-image img');
          const r = img.getBoundingClientRect();
          return {alt: img.alt, src: img.src, loaded: img.complete && img.naturalWidth > 0,
                  top: r.top, bottom: r.bottom, left: r.left, right: r.right,
                  height: r.height, vw: window.innerWidth, vh: window.innerHeight};
        }"""
    )


@pytest.mark.parametrize("language", ["nl", "en", "ar"])
@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_pictures_show_with_their_alt_text_and_keep_the_disclosure_in_view(
    layout_media_kiosk: tuple[LiveKiosk, Trial],
    browser: Any,
    axe_source: str,
    artifacts: Path,
    viewport: str,
    language: str,
) -> None:
    """(What the browser draws does not depend on the database, so this runs on SQLite.)"""
    kiosk, trial = layout_media_kiosk
    context = _context(browser, viewport)
    try:
        page = context.new_page()
        screen = Screen(page, kiosk, f"media-{viewport}", language, artifacts, axe_source)
        _start(page, kiosk, language)
        assert screen.first_screen_problems() == []
        shown = _picture(page)
        assert shown["loaded"], "the picture did not load from the app"
        assert shown["src"].startswith(kiosk.url + "media/")
        assert shown["alt"] == ALT[language]
        assert shown["left"] >= 0 and shown["right"] <= shown["vw"] + 0.5, "wider than the screen"
        assert shown["height"] <= 0.3 * shown["vh"] + 1, "the picture takes over the screen"
        # With the picture in view, the disclosure's essentials are still on screen.
        page.locator(".material-image img").scroll_into_view_if_needed()
        box = screen.boxes()["essentials"]
        assert box["top"] >= 0 and box["bottom"] <= shown["vh"] + 0.5, box
        narrated = language in trial.control_arm.audio
        assert page.locator("audio").count() == (1 if narrated else 0)
        screen.shot("media")
        screen.touch_targets("media")
        screen.accessible("media")
        assert not screen.errors, screen.errors
        assert not screen.outside, f"requests outside the kiosk {screen.outside}"
    finally:
        context.close()


def _audio(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => { const a = document.querySelector('audio');
                   return {paused: a.paused, time: a.currentTime, ended: a.ended,
                           duration: a.duration}; }"""
    )


def test_the_narration_plays_only_on_a_tap_and_each_play_is_logged_once(
    media_kiosk: tuple[LiveKiosk, Trial], browser: Any, axe_source: str, artifacts: Path
) -> None:
    kiosk, _ = media_kiosk
    context = _context(browser, "tablet")
    try:
        page = context.new_page()
        screen = Screen(page, kiosk, "media-tablet", "en", artifacts, axe_source)
        visit = _start(page, kiosk, "en")
        page.wait_for_timeout(1500)
        assert _audio(page)["paused"] and _audio(page)["time"] == 0, "it started by itself"
        assert page.locator("audio").get_attribute("autoplay") is None
        assert page.locator("audio").get_attribute("controls") is not None
        assert logged(kiosk, visit) == ["exposure"]

        # The transcript is one tap away.
        transcript = page.locator("details.transcript")
        assert not transcript.locator("p").first.is_visible()
        transcript.locator("summary").click()
        assert transcript.locator("p").first.is_visible()
        screen.shot("transcript")

        # A tap plays it; the event is stored once.
        button = page.locator("button.play")
        assert button.is_visible() and button.bounding_box()["height"] >= 60
        button.click()
        page.wait_for_function("() => document.querySelector('audio').currentTime > 0.3")
        assert button.get_attribute("aria-pressed") == "true"
        assert wait_for(lambda: logged(kiosk, visit).count("played_audio") == 1)
        # Pause and go on: the same play.
        button.click()
        page.wait_for_function("() => document.querySelector('audio').paused")
        button.click()
        page.wait_for_function("() => !document.querySelector('audio').paused")
        page.wait_for_timeout(1000)
        assert logged(kiosk, visit).count("played_audio") == 1
        # To the end, then a second play: a second event.
        page.evaluate(
            "() => { const a = document.querySelector('audio'); a.currentTime = a.duration - 0.3; }"
        )
        page.wait_for_function("() => document.querySelector('audio').ended", timeout=20000)
        assert button.get_attribute("aria-pressed") == "false"
        button.click()
        assert wait_for(lambda: logged(kiosk, visit).count("played_audio") == 2)
        page.wait_for_timeout(500)
        assert logged(kiosk, visit).count("played_audio") == 2
        screen.check("narration")

        # The service worker keeps the picture and the narration: there without a connection.
        # (A page loaded while the worker was still installing stays uncontrolled: reload it.)
        page.wait_for_function(
            "() => navigator.serviceWorker.getRegistration().then((r) => !!(r && r.active))"
        )
        page.reload()
        page.wait_for_function(
            "() => navigator.serviceWorker && navigator.serviceWorker.controller"
        )
        urls = page.evaluate(
            "() => [document.querySelector('.material-image img').src,"
            " document.querySelector('audio').src]"
        )
        kept = page.wait_for_function(
            """(urls) => caches.open('nudgelab-media-v1').then((c) => c.keys())
                 .then((keys) => urls.every((u) => keys.some((k) => k.url === u)))""",
            arg=urls,
        )
        assert kept
        context.set_offline(True)
        statuses = page.evaluate(
            """(urls) => Promise.all(urls.map((u) => fetch(u, {headers: {Range: 'bytes=0-9'}})
                 .then((r) => r.status)))""",
            urls,
        )
        assert statuses == [206, 206]
        context.set_offline(False)
    finally:
        context.close()


def test_a_visitor_listening_without_touching_keeps_the_visit(
    media_kiosk: tuple[LiveKiosk, Trial], browser: Any
) -> None:
    """The narration lasts longer than the inactivity time: listening counts as being there;
    once it is paused, the inactivity time runs again."""
    kiosk, _ = media_kiosk
    kiosk.app.config["INACTIVITY_SECONDS"] = SHORT_INACTIVITY
    context = _context(browser, "kiosk")
    try:
        page = context.new_page()
        visit = _start(page, kiosk, "en")
        page.locator("button.play").click()
        page.wait_for_timeout((SHORT_INACTIVITY + 4) * 1000)
        assert page.locator(".material h1").is_visible(), "the visit ended while listening"
        assert "timeout" not in logged(kiosk, visit)
        page.evaluate("() => document.querySelector('audio').pause()")
        page.wait_for_selector(".language-choice", timeout=(SHORT_INACTIVITY + 10) * 1000)
        assert wait_for(lambda: logged(kiosk, visit)[-1:] == ["timeout"])
    finally:
        context.close()
