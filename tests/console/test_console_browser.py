"""The console in Chromium: every page loads nothing from outside, breaks no Content-Security-
Policy rule, has no serious axe violation, and its forms work with the browser's own cookie,
Referer and CSRF handling (also over the Secure-cookie setting)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from experiments import store
from tests.console.helpers import PASSWORD, run_visits
from tests.factories import trial_yaml

TRIAL = "test-trial"


@pytest.fixture
def served(console_app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, console_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


class Watched:
    """A page whose outside requests and console errors are collected."""

    def __init__(self, page: Any, base: str, axe: str) -> None:
        self.page, self.base, self.axe = page, base, axe
        self.outside: list[str] = []
        self.errors: list[str] = []
        page.on("request", self._request)
        page.on("console", self._console)

    def _request(self, request: Any) -> None:
        if not request.url.startswith((self.base + "/", "data:")):
            self.outside.append(request.url)

    def _console(self, message: Any) -> None:
        # Refused sign-ins (401) and files (422) are expected answers; a CSP violation is not.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)

    def check(self, screen: str) -> None:
        assert not self.outside, f"{screen}: requests outside {self.outside}"
        assert not self.errors, f"{screen}: console errors {self.errors}"
        self.page.evaluate(self.axe)
        result = self.page.evaluate(
            "() => axe.run(document, {resultTypes: ['violations']})"
            ".then((r) => r.violations.map((v) => ({id: v.id, impact: v.impact,"
            " nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3)})))"
        )
        serious = [v for v in result if v["impact"] in ("critical", "serious")]
        assert not serious, f"{screen}: axe violations {serious}"

    def submit(self) -> None:
        self.page.click("main button[type=submit]")


def test_the_console_in_chromium(
    console_app: Flask,
    served: str,
    browser: Any,
    axe_source: str,
) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    watched = Watched(page, served, axe_source)
    try:
        page.goto(f"{served}/console/")
        assert page.url.startswith(f"{served}/console/sign-in")
        watched.check("sign-in")
        page.fill("input[name=email]", "owner@example.org")
        page.fill("input[name=password]", PASSWORD)
        watched.submit()
        assert page.url == f"{served}/console/"
        watched.check("trials")
        page.goto(f"{served}/console/load")
        page.fill("textarea[name=source]", trial_yaml())
        watched.submit()
        assert page.url == f"{served}/console/trials/{TRIAL}"
        page.click("text=Start (locks the pre-registration)")
        assert "running" in page.inner_text("main")
        watched.check("trial")
        page.goto(f"{served}/console/trials/{TRIAL}/kiosks")
        page.click("text=Add kiosk")
        qr = page.locator("img.qr")
        assert qr.evaluate("(img) => img.complete && img.naturalWidth > 0")
        watched.check("kiosk added")
        run_visits(console_app, store.parse_trial(trial_yaml()), 10, outcomes={})
        for path in ("kiosks", "monitoring", "look"):
            page.goto(f"{served}/console/trials/{TRIAL}/{path}")
            watched.check(path)
        page.goto(f"{served}/console/trials/{TRIAL}")
        page.click("text=Close for good")
        page.click("text=Report")
        assert "Trial report" in page.inner_text("body")
        assert not watched.outside and not watched.errors  # the report's own CSP holds
    finally:
        context.close()
