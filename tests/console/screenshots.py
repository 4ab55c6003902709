"""Screenshots of the research console for docs/console.md, taken in a real browser.

``python -m tests.console.screenshots`` builds the app as ``nudgelab serve`` does on a fresh
SQLite file, loads and starts the Tea Room example, adds kiosks and simulated visits, serves it
on a local port and walks the console in Debian's Chromium (Playwright), writing PNGs to
``docs/images/console/``. Everything shown is made up for the pictures.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

from werkzeug.serving import make_server

from app.db import get_engine
from app.i18n import catalogue_languages
from experiments import lifecycle, store
from experiments.eventlog import upgrade
from experiments.store import Actor
from nudgelab.results import create_console_app
from tests.browser.chromium import CHROMIUM_FLAGS, chromium_path
from tests.console.helpers import PASSWORD, add_account, run_visits

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "images" / "console"
EXAMPLE = ROOT / "experiments" / "trials" / "tearoom-return-info.yaml"
OWNER = "researcher@example.org"


def _prepare(url: str):  # type: ignore[no-untyped-def]
    upgrade(url)
    app = create_console_app(
        {"DATABASE_URL": url, "SECRET_KEY": "screenshots-" + "0" * 64, "SILENT_KIOSK_MINUTES": 120}
    )
    for email, role in (
        (OWNER, "researcher"),
        ("evaluator@example.org", "evaluator"),
        ("admin@example.org", "admin"),
    ):
        add_account(app, email, role)
    actor = Actor(OWNER, "console")
    loaded = lifecycle.load_trial_file(
        get_engine(app), EXAMPLE, interface_languages=catalogue_languages(), actor=actor
    )
    trial = loaded.trial
    with get_engine(app).begin() as conn:
        store.add_member(conn, trial.id, OWNER, Actor("admin@example.org", "console"))
        store.start_trial(conn, trial.id, actor=actor)
        for location in trial.location_ids:
            store.register_kiosk(conn, trial, location, actor)
    run_visits(
        app,
        trial,
        120,
        outcomes={"control": 6, "gain": 13, "loss": 9, "messenger": 11, "local_norm": 8},
    )
    return app, trial


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        app, trial = _prepare(f"sqlite:///{folder}/console.db")
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        t = f"{base}/console/trials/{trial.id}"
        errors: list[str] = []
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS
                )
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                # Refused sign-ins (401) and files (422) are expected; anything else, such as a
                # Content-Security-Policy violation, fails the run.
                page.on(
                    "console",
                    lambda m: (
                        errors.append(m.text)
                        if m.type == "error" and "Failed to load resource" not in m.text
                        else None
                    ),
                )

                def shot(name: str, full: bool = True) -> None:
                    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full)

                page.goto(f"{base}/console/sign-in")
                page.fill("input[name=email]", OWNER)
                page.fill("input[name=password]", "wrong password")
                page.click("main button[type=submit]")
                shot("sign-in-refused", full=False)
                page.fill("input[name=email]", OWNER)
                page.fill("input[name=password]", PASSWORD)
                page.click("main button[type=submit]")
                shot("trials", full=False)
                page.goto(t)
                shot("trial-running")
                page.goto(f"{base}/console/load")
                page.fill("textarea[name=source]", "id: my-trial\ntitle: A trial\n")
                page.click("main button[type=submit]")
                shot("load-refused", full=False)
                page.goto(f"{t}/kiosks")
                page.select_option("select[name=location]", trial.location_ids[0])
                page.click("text=Add kiosk")
                shot("kiosk-added")
                page.goto(f"{t}/kiosks")
                shot("kiosks")
                page.goto(f"{t}/monitoring")
                shot("monitoring")
                page.goto(f"{t}/look")
                shot("interim-look", full=False)
                page.goto(t)
                page.click("text=Close for good")
                page.click("text=Sign out")
                page.fill("input[name=email]", "admin@example.org")
                page.fill("input[name=password]", PASSWORD)
                page.click("main button[type=submit]")
                page.goto(f"{base}/console/audit")
                shot("audit-log")
                page.goto(f"{base}/console/users")
                shot("accounts", full=False)
                page.click("text=Sign out")
                page.fill("input[name=email]", "evaluator@example.org")
                page.fill("input[name=password]", PASSWORD)
                page.click("main button[type=submit]")
                page.goto(t)
                shot("trial-closed-evaluator")
                page.goto(f"{t}/report")
                shot("report", full=False)
                browser.close()
        finally:
            server.shutdown()
            thread.join(timeout=10)
            get_engine(app).dispose()
    if errors:
        print("browser console errors:", *errors, sep="\n", file=sys.stderr)
        raise SystemExit(1)
    print(f"wrote {len(list(OUT.glob('*.png')))} screenshots to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
