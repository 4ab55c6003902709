"""The kiosk in a real browser at a 1080x1920 kiosk, a 768x1024 tablet and a 390x844 phone, in
every language of the Tea Room example trial, on SQLite and PostgreSQL.

Each run is what a visitor does: the welcome screen, a visit (every arm's page measured from
the browser's computed layout: the material's heading and the disclosure's essentials on the
first screen, the disclosure bar still on screen at the buttons, the eight elements one tap
away), an outcome tap stored in the database with the trial's own acknowledgement, "Why?",
the opt-out, "Finish" with the end screen and its timed return, the inactivity reset, and the
connection lost and back (the queued tap stored once). Every page: its language only (checked
against the trial file's texts of the other languages), no researcher's note, no bare
register path, no outside request, no script error, touch targets of at least 44 px, and axe
without a critical or serious violation. Screenshots: tests/browser/artifacts/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask_babel import force_locale, gettext
from sqlalchemy import select

from app.db import get_engine
from experiments.eventlog import events
from experiments.model import Trial, localized
from experiments.store import parse_trial
from tests.app.visitor import EXAMPLE
from tests.browser.conftest import LiveKiosk

VIEWPORTS = {"kiosk": (1080, 1920), "tablet": (768, 1024), "phone": (390, 844)}
TRIAL = parse_trial(EXAMPLE.read_text(encoding="utf-8"))
#: A touch target's smallest side (WCAG 2.5.5, and what a finger needs on a kiosk).
TOUCH_PX = 44
#: The visit bar may take at most this share of the first screen.
HEADER_SHARE = 0.2
#: The kiosk's inactivity time in these tests: long enough that a slow axe run or screenshot
#: on a loaded machine does not end the visit in the middle of a step.
INACTIVITY = 15
#: The inactivity limit where the test waits for a timeout to happen.
SHORT_INACTIVITY = 3

pytestmark = pytest.mark.browser


# -- what a page may and may not contain ------------------------------------------------------
def visitor_texts(trial: Trial, language: str) -> set[str]:
    """Every visitor-facing text of the trial file in ``language`` (placeholders filled)."""
    texts = {text for _, text in trial.disclosure_parts(language)}
    texts.add(localized(trial.organisation, language))
    for arm in trial.arms:
        texts |= {arm.material[language].title, *arm.material[language].body.split("\n\n")}
        for claim in arm.claims:
            texts |= {claim.text[language], localized(claim.source, language)}
        if arm.messenger:
            texts |= {localized(arm.messenger.name, language), arm.messenger.role[language]}
    for figure in trial.figures.values():
        texts |= {figure.denominator[language], localized(figure.source, language)}
    for outcome in trial.outcomes:
        if outcome.label:
            texts.add(outcome.label[language])
        if outcome.acknowledgement:
            texts.add(outcome.acknowledgement[language])
    for location in trial.locations:
        texts.add(localized(location.name, language))
    return {" ".join(text.split()) for text in texts}


def foreign_texts(trial: Trial, language: str) -> set[str]:
    """The other languages' texts that this language does not share (e.g. a place name)."""
    own = visitor_texts(trial, language)
    others = [visitor_texts(trial, lang) for lang in trial.languages if lang != language]
    return {text for text in set().union(*others) - own if len(text) >= 8}


def notes(trial: Trial) -> set[str]:
    found = {claim.note for arm in trial.arms for claim in arm.claims if claim.note}
    found |= {figure.note for figure in trial.figures.values() if figure.note}
    return {" ".join(note.split()) for note in found}


BARE_REGISTER_PATH = re.compile(r"(?<![\w/.:-])/register\b")


class Screen:
    """One browser page at one viewport, with the checks every kiosk page must pass."""

    def __init__(
        self, page: Any, kiosk: LiveKiosk, name: str, language: str, folder: Path, axe: str
    ) -> None:
        self.page = page
        self.kiosk = kiosk
        self.name = name
        self.language = language
        self.folder = folder
        self.axe = axe
        self.errors: list[str] = []
        self.outside: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                self.errors.append(message.text)
                if message.type == "error" and "ERR_INTERNET_DISCONNECTED" not in message.text
                else None
            ),
        )
        page.on("request", self._request)

    def _request(self, request: Any) -> None:
        if not request.url.startswith((self.kiosk.base + "/", "data:")):
            self.outside.append(request.url)

    def shot(self, screen: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(self.folder / f"{screen}-{self.name}-{self.language}.png"))

    def body_text(self) -> str:
        return " ".join(self.page.inner_text("body").split())

    def check(self, screen: str, *, offline: bool = False) -> None:
        """The checks of every page, and its screenshot."""
        self.shot(screen)
        html = self.page.locator("html")
        assert html.get_attribute("lang") == self.language, screen
        assert html.get_attribute("dir") == ("rtl" if self.language == "ar" else "ltr"), screen
        text = self.body_text()
        content = self.page.content()
        for foreign in foreign_texts(TRIAL, self.language):
            assert foreign not in text, f"{screen}: text of another language: {foreign[:60]!r}"
        for note in notes(TRIAL):
            assert note not in text and note not in content, f"{screen}: a researcher's note"
        assert not BARE_REGISTER_PATH.search(text), f"{screen}: a bare register path"
        self.touch_targets(screen)
        if not offline:
            self.accessible(screen)
        assert not self.errors, f"{screen}: script errors {self.errors}"
        assert not self.outside, f"{screen}: requests outside the kiosk {self.outside}"

    def touch_targets(self, screen: str) -> None:
        small = self.page.evaluate(
            """(minimum) => Array.from(document.querySelectorAll(
                   'button, a.button, summary, .why-link, a[href]'))
                 .filter((el) => el.offsetParent !== null && !el.closest('p, li, dd'))
                 .map((el) => [el.textContent.trim().slice(0, 40), el.getBoundingClientRect()])
                 .filter(([, r]) => r.width > 0 && (r.height < minimum || r.width < minimum))
                 .map(([t, r]) => `${t} ${Math.round(r.width)}x${Math.round(r.height)}`)""",
            TOUCH_PX,
        )
        assert not small, f"{screen}: touch targets under {TOUCH_PX} px: {small}"

    def accessible(self, screen: str) -> None:
        if not self.page.evaluate("() => typeof window.axe !== 'undefined'"):
            self.page.evaluate(self.axe)
        # preload: stylesheets only. With the default (stylesheets and media) axe waits up to 10 s
        # for a narration's metadata, which preload="none" never loads; that autoplay never
        # happens is asserted by the narration's own browser test.
        result = self.page.evaluate(
            "() => axe.run(document, {resultTypes: ['violations'],"
            " preload: {assets: ['cssom'], timeout: 10000}})"
            ".then((r) => r.violations.map((v) => ({id: v.id, impact: v.impact,"
            " nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3)})))"
        )
        serious = [v for v in result if v["impact"] in ("critical", "serious")]
        assert not serious, f"{screen}: axe violations {serious}"

    # -- layout, from the browser's computed boxes ----------------------------------------
    def boxes(self) -> dict[str, Any]:
        return self.page.evaluate(
            """() => {
              const box = (sel) => {
                const el = document.querySelector(sel);
                if (!el) return null;
                const r = el.getBoundingClientRect();
                const style = getComputedStyle(el);
                return {top: r.top, bottom: r.bottom, left: r.left, right: r.right,
                        width: r.width, height: r.height,
                        shown: style.visibility !== 'hidden' && style.display !== 'none'
                               && Number(style.opacity) > 0};
              };
              return {vw: window.innerWidth, vh: window.innerHeight,
                      scrollWidth: document.documentElement.scrollWidth,
                      header: box('.visit-bar'), heading: box('.material h1'),
                      essentials: box('#disclosure summary'),
                      full: box('#disclosure .disclosure-full')};
            }"""
        )

    def first_screen_problems(self) -> list[str]:
        """What a visitor would not see on the first screen of a variant page (empty: ok)."""
        b = self.boxes()
        problems = []
        vh, header, heading, essentials = b["vh"], b["header"], b["heading"], b["essentials"]
        if b["scrollWidth"] > b["vw"] + 1:
            problems.append(f"the page is wider than the screen ({b['scrollWidth']} px)")
        if header["height"] > HEADER_SHARE * vh:
            problems.append(f"the visit bar takes {header['height'] / vh:.0%} of the screen")
        if essentials is None or not essentials["shown"]:
            problems.append("no disclosure bar")
        elif essentials["top"] < 0 or essentials["bottom"] > vh + 0.5:
            problems.append(f"the disclosure's essentials are outside the screen {essentials}")
        if heading is None or not heading["shown"]:
            problems.append("no material heading")
        elif heading["top"] < header["bottom"] - 0.5 or (
            essentials is not None and heading["bottom"] > essentials["top"] + 0.5
        ):
            problems.append(f"the material heading is not on the first screen {heading}")
        return problems

    def essentials_stay_at_the_buttons(self) -> None:
        self.page.locator("form.outcome button").last.scroll_into_view_if_needed()
        b = self.boxes()
        essentials = b["essentials"]
        assert essentials["top"] >= 0 and essentials["bottom"] <= b["vh"] + 0.5, essentials
        self.page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
        b = self.boxes()
        assert b["essentials"]["bottom"] <= b["vh"] + 0.5, "the disclosure scrolled away"
        self.page.evaluate("() => window.scrollTo(0, 0)")

    def full_disclosure_one_tap_away(self, trial: Trial) -> None:
        self.page.locator("#disclosure summary").click()
        full = self.page.locator("#disclosure .disclosure-full")
        assert full.is_visible()
        b = self.boxes()
        assert b["full"]["top"] >= 0 and b["full"]["bottom"] <= b["vh"] + 0.5, b["full"]
        shown = " ".join(full.inner_text().split())
        for _, text in trial.disclosure_parts(self.language, "https://nudgelab.example.org"):
            assert " ".join(text.split()) in shown
        self.shot("disclosure")
        self.page.locator("#disclosure summary").click()
        assert not full.is_visible()


# -- the database -----------------------------------------------------------------------------
def logged(kiosk: LiveKiosk, visit_id: str) -> list[str]:
    with get_engine(kiosk.app).connect() as conn:
        rows = conn.execute(
            select(events.c.type).where(events.c.visit_id == visit_id).order_by(events.c.id)
        ).all()
    return [row.type for row in rows]


def wait_for(condition: Any, seconds: float = 20.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return condition()


def translated(kiosk: LiveKiosk, language: str, message: str) -> str:
    with kiosk.app.test_request_context(), force_locale(language):
        return gettext(message)


@pytest.fixture
def kiosk(live_kiosk: LiveKiosk) -> LiveKiosk:
    live_kiosk.app.config["INACTIVITY_SECONDS"] = INACTIVITY
    return live_kiosk


def _context(browser: Any, viewport: str) -> Any:
    width, height = VIEWPORTS[viewport]
    return browser.new_context(
        viewport={"width": width, "height": height},
        device_scale_factor=1,
        has_touch=viewport != "kiosk",
        service_workers="allow",
    )


@pytest.fixture
def context(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    made = _context(browser, request.node.callspec.params["viewport"])
    yield made
    made.close()


def _start(screen: Screen, kiosk: LiveKiosk, language: str) -> str:
    page = screen.page
    page.goto(kiosk.url)
    page.locator(f".language-choice button[value={language}]").click()
    page.wait_for_selector(".material h1")
    # Measure the layout only once the stylesheet and pictures are in: the heading is in the
    # DOM before them, and on a busy machine a page measured unstyled put the disclosure bar
    # 1,155 px down a 844 px phone screen (a failed run of the layout-check test).
    page.wait_for_load_state("load")
    return str(page.locator("body").get_attribute("data-visit"))


def _finish(screen: Screen) -> None:
    screen.page.locator(".visit-bar button.finish").click()
    screen.page.wait_for_selector(".end-screen")


@pytest.mark.parametrize("language", TRIAL.languages)
@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_visitor_at_the_kiosk(
    kiosk: LiveKiosk,
    context: Any,
    axe_source: str,
    artifacts: Path,
    viewport: str,
    language: str,
) -> None:
    page = context.new_page()
    screen = Screen(page, kiosk, viewport, language, artifacts, axe_source)
    labels = {o.event: o for o in TRIAL.outcomes if o.label}

    # The welcome screen: every language named in itself, filling the screen.
    page.goto(kiosk.url)
    screen.language = TRIAL.languages[0]  # the welcome screen greets in every language
    screen.shot("welcome")
    screen.touch_targets("welcome")
    screen.accessible("welcome")
    height = VIEWPORTS[viewport][1]
    used = page.evaluate(
        "() => document.querySelector('.welcome').lastElementChild.getBoundingClientRect().bottom"
    )
    assert used >= 0.6 * height, f"the welcome screen uses only the top {used:.0f} px"
    screen.language = language

    # A visit: the arm's page, with the disclosure's essentials and the heading on screen.
    page.locator(f".language-choice button[value={language}]").click()
    page.wait_for_selector(".material h1")
    visit = str(page.locator("body").get_attribute("data-visit"))
    assert screen.first_screen_problems() == []
    screen.check("variant")
    screen.essentials_stay_at_the_buttons()
    screen.full_disclosure_one_tap_away(TRIAL)
    assert wait_for(lambda: logged(kiosk, visit) == ["exposure"])

    # Right-to-left is mirrored: the first language button sits at the reading start.
    buttons = page.locator(".visit-bar .languages button")
    first, last = buttons.first.bounding_box(), buttons.last.bounding_box()
    assert (first["x"] > last["x"]) == (language == "ar")

    # An outcome tap: stored, and the trial's own words about what happens next.
    page.locator("form.outcome[data-event=contact_requested] button").click()
    note = page.locator("p.noted[data-event=contact_requested]")
    assert note.is_visible()
    assert " ".join(note.inner_text().split()) == " ".join(
        labels["contact_requested"].acknowledgement[language].split()  # type: ignore[index]
    )
    box, bar = note.bounding_box(), page.locator("#disclosure").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= bar["y"] + 0.5, "under the bar"
    assert wait_for(lambda: "contact_requested" in logged(kiosk, visit))
    screen.check("acknowledgement")

    # "Why?" and back.
    page.locator(".visit-bar a.button").first.click()
    page.wait_for_selector(".why")
    screen.check("why")
    page.go_back()

    # "Finish": the end screen leads with the version sentence and a large way back.
    _finish(screen)
    seen = page.locator(".end-version")
    back = page.locator(".end-screen a.start")
    assert seen.bounding_box()["y"] + seen.bounding_box()["height"] <= height
    assert back.bounding_box()["y"] + back.bounding_box()["height"] <= height
    assert back.bounding_box()["height"] >= 60
    assert page.locator("meta[http-equiv=refresh]").count() == 0  # the script returns
    screen.check("end")
    assert wait_for(lambda: logged(kiosk, visit)[-1:] == ["finish"])
    back.click()  # the timed return is test_the_end_screen_returns_to_the_start_by_itself
    page.wait_for_selector(".language-choice")

    # Opt-out: one tap, nothing about being "noted", and a tap after it is not stored.
    visit = _start(screen, kiosk, language)
    page.locator(".visit-bar button.opt-out").click()
    page.wait_for_selector(".message-page")
    screen.check("opted-out")
    page.locator(".message-page a.button").click()
    page.wait_for_selector(".material h1")
    page.locator("form.outcome[data-event=contact_requested] button").click()
    shown = page.locator("p.noted[data-event=contact_requested]").inner_text()
    not_stored = "Your visit is not used for the study, so this tap is not stored."
    assert translated(kiosk, language, not_stored) in shown
    screen.check("opted-out-tap")
    page.wait_for_timeout(500)
    assert "contact_requested" not in logged(kiosk, visit)

    # Inactivity: the next visitor finds the welcome screen (a short limit for this step only;
    # the checks above need a long one on a busy machine).
    kiosk.app.config["INACTIVITY_SECONDS"] = SHORT_INACTIVITY
    visit = _start(screen, kiosk, language)
    page.wait_for_selector(".language-choice", timeout=(SHORT_INACTIVITY + 10) * 1000)
    assert wait_for(lambda: logged(kiosk, visit)[-1:] == ["timeout"])
    kiosk.app.config["INACTIVITY_SECONDS"] = INACTIVITY

    # Connection lost: a kiosk screen in the visit's language, the tap kept and stored once.
    visit = _start(screen, kiosk, language)
    page.wait_for_function("() => navigator.serviceWorker && navigator.serviceWorker.controller")
    context.set_offline(True)
    page.locator("form.outcome[data-event=country_info_opened] button").click()
    page.locator(".visit-bar a.button").first.click()
    page.wait_for_selector(".offline-page")
    assert page.locator("h1").inner_text() == translated(kiosk, language, "Connection lost")
    screen.check("offline", offline=True)
    # (Not asserted: that the tap is absent now. Chromium's offline emulation does not always
    # reach a request that passes a service worker, so under load it may already be stored;
    # what matters is below: stored, and exactly once.)
    context.set_offline(False)
    page.wait_for_selector(".language-choice", timeout=15000)
    assert wait_for(lambda: "country_info_opened" in logged(kiosk, visit))
    page.wait_for_timeout(1000)
    assert logged(kiosk, visit).count("country_info_opened") == 1


@pytest.mark.parametrize("viewport", ["kiosk"])
def test_the_end_screen_returns_to_the_start_by_itself(
    kiosk: LiveKiosk, context: Any, axe_source: str, artifacts: Path, viewport: str
) -> None:
    """The end screen's timed return works with JavaScript, without a meta refresh."""
    kiosk.app.config["INACTIVITY_SECONDS"] = SHORT_INACTIVITY
    page = context.new_page()
    screen = Screen(page, kiosk, viewport, TRIAL.languages[0], artifacts, axe_source)
    visit = _start(screen, kiosk, TRIAL.languages[0])
    _finish(screen)
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    page.wait_for_selector(".language-choice", timeout=(SHORT_INACTIVITY + 10) * 1000)
    assert logged(kiosk, visit)[-1:] == ["finish"]


@pytest.mark.parametrize("language", TRIAL.languages)
@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_arm_shows_the_heading_and_the_disclosure_on_the_first_screen(
    layout_kiosk: LiveKiosk,
    context: Any,
    axe_source: str,
    artifacts: Path,
    viewport: str,
    language: str,
) -> None:
    """Ten visits are one block of the example's randomization: every arm twice. (What the
    browser draws does not depend on the database, so this runs on SQLite only.)"""
    kiosk = layout_kiosk
    page = context.new_page()
    screen = Screen(page, kiosk, viewport, language, artifacts, axe_source)
    arms = set()
    for _ in range(10):
        _start(screen, kiosk, language)
        title = page.locator(".material h1").inner_text()
        arm = next(a for a in TRIAL.arms if a.material[language].title == title)
        assert screen.first_screen_problems() == [], arm.id
        if arm.id not in arms:
            screen.check(f"arm-{arm.id}")
        arms.add(arm.id)
        page.locator(".visit-bar button.finish").click()
        page.wait_for_selector(".end-screen")
    assert arms == {arm.id for arm in TRIAL.arms}


@pytest.mark.parametrize(
    ("style", "problem"),
    [
        (
            ".disclosure { position: static; margin-top: 120vh; }",
            "the disclosure's essentials are outside the screen",
        ),
        (".material h1 { margin-top: 120vh; }", "the material heading is not on the first screen"),
        (".visit-bar button { min-height: 30vh; }", "the visit bar takes"),
    ],
)
@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_layout_check_catches_a_layout_that_pushes_things_off_the_first_screen(
    layout_kiosk: LiveKiosk,
    browser: Any,
    axe_source: str,
    artifacts: Path,
    viewport: str,
    style: str,
    problem: str,
) -> None:
    """The measurement above can fail: a stylesheet that moves the disclosure bar into the
    page, the heading below the fold, or a bar of huge buttons, is reported."""
    width, height = VIEWPORTS[viewport]
    # bypass_csp: the test adds a style of its own (the kiosk's CSP refuses inline styles).
    context = browser.new_context(viewport={"width": width, "height": height}, bypass_csp=True)
    try:
        page = context.new_page()
        screen = Screen(page, layout_kiosk, viewport, "nl", artifacts, axe_source)
        _start(screen, layout_kiosk, "nl")
        assert screen.first_screen_problems() == []
        page.add_style_tag(content=style)
        found = screen.first_screen_problems()
        assert any(problem in text for text in found), found
    finally:
        context.close()
