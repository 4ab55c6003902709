"""Signing in and out: the console's own cookie, CSRF on every form, the lockout shown."""

from __future__ import annotations

import html
import re

from flask import Flask, request
from sqlalchemy import select

from app.db import get_engine
from experiments.eventlog import users
from experiments.store.users import SIGN_IN_REFUSED
from tests.console.helpers import PASSWORD, Console


def _cookie_header(response) -> str:  # type: ignore[no-untyped-def]
    headers = [
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("nudgelab_console=")
    ]
    assert len(headers) == 1, response.headers.getlist("Set-Cookie")
    return headers[0]


def test_sign_in_sets_the_console_cookie_apart_from_the_visit_cookie(console_app: Flask) -> None:
    console = Console(console_app)
    console.get("/console/sign-in")
    response = console.post(
        "/console/sign-in", {"email": "owner@example.org", "password": PASSWORD}
    )
    assert response.status_code == 302
    cookie = _cookie_header(response)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie
    assert not any(h.startswith("nudgelab_visit=") for h in response.headers.getlist("Set-Cookie"))
    page = console.get("/console/")
    assert page.status_code == 200 and "owner@example.org" in page.get_data(as_text=True)
    # The same browser on a kiosk page does not send the console cookie (its path is /console).
    assert console.client.get_cookie("nudgelab_console", path="/console") is not None


def test_the_cookie_is_secure_when_secure_cookies_is_on(make_console_app) -> None:  # type: ignore[no-untyped-def]
    from tests.console.helpers import add_account

    app = make_console_app(SECURE_COOKIES=True)
    add_account(app, "a@example.org", "admin")
    console = Console(app)
    console.client.get("/console/sign-in", base_url="https://localhost")
    page = console.client.get("/console/sign-in", base_url="https://localhost")
    from tests.console.helpers import csrf_from

    token = csrf_from(page.get_data(as_text=True))
    response = console.client.post(
        "/console/sign-in",
        data={"email": "a@example.org", "password": PASSWORD, "csrf_token": token},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/console/sign-in"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "Secure" in _cookie_header(response)
    assert page.headers["Referrer-Policy"] == "same-origin"  # so browsers send the Referer


def _alert(response) -> str:  # type: ignore[no-untyped-def]
    found = re.search(r'role="alert">([^<]*)<', response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)[-1500:]
    return html.unescape(found[1])


def test_wrong_passwords_lock_the_account_without_saying_so(console_app: Flask) -> None:
    console = Console(console_app)
    console.get("/console/sign-in")
    answers = []
    for _ in range(5):
        response = console.post(
            "/console/sign-in", {"email": "owner@example.org", "password": "wrong"}
        )
        assert response.status_code == 401
        answers.append(_alert(response))
    # Locked: even the right password is refused, and nobody is signed in.
    response = console.post(
        "/console/sign-in", {"email": "owner@example.org", "password": PASSWORD}
    )
    assert response.status_code == 401
    answers.append(_alert(response))
    assert answers == [SIGN_IN_REFUSED] * 6  # the lock is not announced: same words throughout
    assert console.get("/console/").status_code == 302
    with get_engine(console_app).connect() as conn:
        until = conn.execute(
            select(users.c.locked_until).where(users.c.email == "owner@example.org")
        ).scalar_one()
    assert until is not None


def test_every_refusal_reads_the_same(console_app: Flask) -> None:
    """Unknown address, wrong password, disabled account: one answer, so the page does not
    tell which addresses have accounts."""
    from experiments.store.users import disable_user
    from tests.console.helpers import SETUP, add_account

    add_account(console_app, "gone@example.org", "researcher")
    with get_engine(console_app).begin() as conn:
        disable_user(conn, "gone@example.org", SETUP)
    console = Console(console_app)
    console.get("/console/sign-in")
    attempts = {
        "nobody@example.org": "x" * 12,
        "owner@example.org": "wrong password",
        "gone@example.org": PASSWORD,
    }
    for email, password in attempts.items():
        response = console.post("/console/sign-in", {"email": email, "password": password})
        assert response.status_code == 401, email
        assert _alert(response) == SIGN_IN_REFUSED, email
    assert console.get("/console/").status_code == 302


def test_a_post_without_the_csrf_token_is_refused(console_app: Flask) -> None:
    console = Console(console_app)
    console.get("/console/sign-in")
    response = console.post(
        "/console/sign-in", {"email": "owner@example.org", "password": PASSWORD}, csrf=False
    )
    assert response.status_code == 400
    assert console.get("/console/").status_code == 302  # not signed in
    signed = Console(console_app).signed_in("owner@example.org")
    assert signed.post("/console/sign-out", csrf=False).status_code == 400
    assert signed.get("/console/").status_code == 200  # still signed in
    wrong = signed.client.post("/console/sign-out", data={"csrf_token": "forged"})
    assert wrong.status_code == 400


def test_sign_out_ends_the_session(console_app: Flask) -> None:
    console = Console(console_app).signed_in("owner@example.org")
    assert console.post("/console/sign-out").status_code == 302
    assert console.get("/console/").status_code == 302


def test_a_disabled_account_is_signed_out_at_its_next_request(console_app: Flask) -> None:
    from experiments.store.users import disable_user
    from tests.console.helpers import SETUP

    console = Console(console_app).signed_in("owner@example.org")
    with get_engine(console_app).begin() as conn:
        disable_user(conn, "owner@example.org", SETUP)
    response = console.get("/console/")
    assert response.status_code == 302 and "/console/sign-in" in response.headers["Location"]


def test_a_one_time_password_must_be_changed_first(make_console_app) -> None:  # type: ignore[no-untyped-def]
    from app.db import get_engine as engine_of
    from experiments.store.users import add_user
    from tests.console.helpers import SETUP

    app = make_console_app()
    with engine_of(app).begin() as conn:
        add_user(conn, "new@example.org", "evaluator", "one-time-pass-123", SETUP)
    console = Console(app)
    console.get("/console/sign-in")
    response = console.post(
        "/console/sign-in", {"email": "new@example.org", "password": "one-time-pass-123"}
    )
    assert response.headers["Location"].endswith("/console/password")
    assert console.get("/console/").headers["Location"].endswith("/console/password")
    console.get("/console/password")
    response = console.post(
        "/console/password",
        {
            "current": "one-time-pass-123",
            "new": "my own long password",
            "repeat": "my own long password",
        },
    )
    assert response.status_code == 302
    assert console.get("/console/").status_code == 200
    again = Console(app).signed_in("new@example.org", "my own long password")
    assert again.get("/console/").status_code == 200


def test_idle_sessions_end(make_console_app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import app.console.auth as auth
    from tests.console.helpers import add_account

    app = make_console_app(CONSOLE_IDLE_MINUTES=1)
    add_account(app, "a@example.org", "admin")
    console = Console(app).signed_in("a@example.org")
    real = auth.datetime

    class Later(real):  # type: ignore[misc, valid-type]
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def]
            return real.now(tz) + __import__("datetime").timedelta(minutes=2)

    monkeypatch.setattr(auth, "datetime", Later)
    response = console.get("/console/")
    assert response.status_code == 302 and "sign-in" in response.headers["Location"]


# -- sign-ins per client address ---------------------------------------------------------------


def _attempt(console: Console, email: str, password: str = "wrong password"):  # type: ignore[no-untyped-def]
    return console.post("/console/sign-in", {"email": email, "password": password})


def test_sign_ins_per_address_are_limited_with_429_and_retry_after(make_console_app) -> None:  # type: ignore[no-untyped-def]
    from app.limits import EXTENSION_KEY
    from tests.console.helpers import add_account

    app = make_console_app(SIGN_IN_LIMIT="3/minute")
    add_account(app, "a@example.org", "researcher")
    console = Console(app)
    console.get("/console/sign-in")
    # Each attempt names another account, so no account's lockout comes into play.
    statuses = [_attempt(console, f"n{i}@example.org").status_code for i in range(3)]
    assert statuses == [401, 401, 401]
    refused = _attempt(console, "a@example.org", PASSWORD)  # even the right password
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "Too many sign-in attempts" in refused.get_data(as_text=True)
    assert console.get("/console/").status_code == 302  # not signed in
    # Showing the form does not count; another address signs in.
    assert console.get("/console/sign-in").status_code == 200
    other = Console(app)
    other.client.environ_base["REMOTE_ADDR"] = "198.51.100.23"
    assert other.signed_in("a@example.org").get("/console/").status_code == 200
    # The counters are keyed by a hash, never the address.
    storage = app.extensions[EXTENSION_KEY].storage
    keys = " ".join(str(key) for key in getattr(storage, "storage", {}))
    assert "sign_in" in keys and "127.0.0.1" not in keys and "198.51.100.23" not in keys


def test_the_sign_in_limit_is_on_by_default(make_console_app) -> None:  # type: ignore[no-untyped-def]
    from app.limits import DEFAULT_SIGN_IN_LIMIT

    app = make_console_app(SIGN_IN_LIMIT=DEFAULT_SIGN_IN_LIMIT)
    console = Console(app)
    console.get("/console/sign-in")
    allowed = int(DEFAULT_SIGN_IN_LIMIT.split("/")[0])
    statuses = [_attempt(console, f"n{i}@example.org").status_code for i in range(allowed + 1)]
    assert statuses == [401] * allowed + [429]


# -- a password change, a disable and an enable end the other sessions -------------------------


def test_changing_the_password_ends_the_other_sessions(console_app: Flask) -> None:
    here = Console(console_app).signed_in("owner@example.org")
    elsewhere = Console(console_app).signed_in("owner@example.org")
    here.get("/console/password")
    new = "a brand new long password"
    changed = here.post("/console/password", {"current": PASSWORD, "new": new, "repeat": new})
    assert changed.status_code == 302
    assert here.get("/console/").status_code == 200  # the session that changed it goes on
    response = elsewhere.get("/console/")
    assert response.status_code == 302 and "/console/sign-in" in response.headers["Location"]
    again = Console(console_app).signed_in("owner@example.org", new)
    assert again.get("/console/").status_code == 200


def test_a_new_password_from_the_command_line_ends_every_session(console_app: Flask) -> None:
    from experiments.store.users import set_password
    from tests.console.helpers import SETUP

    console = Console(console_app).signed_in("owner@example.org")
    cookie = console.client.get_cookie("nudgelab_console", path="/console")
    assert cookie is not None
    with get_engine(console_app).begin() as conn:
        set_password(conn, "owner@example.org", "set by an admin 1234", SETUP)
    assert console.get("/console/").status_code == 302
    # The old cookie, replayed as it was, no longer signs anyone in.
    replay = console_app.test_client()
    replay.set_cookie("nudgelab_console", cookie.value, path="/console")
    assert replay.get("/console/").status_code == 302


def test_disable_then_enable_does_not_revive_a_session(console_app: Flask) -> None:
    from experiments.store.users import disable_user, enable_user
    from tests.console.helpers import SETUP

    console = Console(console_app).signed_in("owner@example.org")
    with get_engine(console_app).begin() as conn:
        disable_user(conn, "owner@example.org", SETUP)
        enable_user(conn, "owner@example.org", SETUP)  # before the session's next request
    response = console.get("/console/")
    assert response.status_code == 302 and "/console/sign-in" in response.headers["Location"]
    again = Console(console_app).signed_in("owner@example.org")
    assert again.get("/console/").status_code == 200


def test_the_kiosk_api_has_no_session(console_app: Flask) -> None:
    """Requests under /api/ are authenticated by their token alone: no cookie read or set."""
    interface = console_app.session_interface
    for path, null in (("/api/v1/events", True), ("/", False), ("/console/", False)):
        with console_app.test_request_context(path):
            session = interface.open_session(console_app, request)
            assert interface.is_null_session(session) is null, path
    client = console_app.test_client()
    client.set_cookie("nudgelab_visit", "anything")
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.headers.getlist("Set-Cookie") == []
