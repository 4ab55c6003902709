"""Signing in and out: the console's own cookie, CSRF on every form, the lockout shown."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from app.db import get_engine
from experiments.eventlog import users
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


def test_wrong_password_then_lockout_is_shown_with_its_time(console_app: Flask) -> None:
    console = Console(console_app)
    console.get("/console/sign-in")
    for attempt in range(4):
        response = console.post(
            "/console/sign-in", {"email": "owner@example.org", "password": "wrong"}
        )
        assert response.status_code == 401
        assert "do not match an account" in response.get_data(as_text=True), attempt
    response = console.post("/console/sign-in", {"email": "owner@example.org", "password": "wrong"})
    text = response.get_data(as_text=True)
    assert response.status_code == 401 and "locked until" in text and "UTC" in text
    # Locked: even the right password is refused, and nobody is signed in.
    response = console.post(
        "/console/sign-in", {"email": "owner@example.org", "password": PASSWORD}
    )
    assert response.status_code == 401 and "locked until" in response.get_data(as_text=True)
    assert console.get("/console/").status_code == 302
    with get_engine(console_app).connect() as conn:
        until = conn.execute(
            select(users.c.locked_until).where(users.c.email == "owner@example.org")
        ).scalar_one()
    assert until is not None


def test_an_unknown_address_gets_the_same_answer_as_a_wrong_password(console_app: Flask) -> None:
    console = Console(console_app)
    console.get("/console/sign-in")
    response = console.post(
        "/console/sign-in", {"email": "nobody@example.org", "password": "x" * 12}
    )
    assert response.status_code == 401
    assert "do not match an account" in response.get_data(as_text=True)


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
