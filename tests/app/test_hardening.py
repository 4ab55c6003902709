"""What a hostile or broken request, and a broken database, get: invalid paths, 405 with
``Allow``, one charset, HSTS, redirects that ``Host`` cannot steer, and database errors told
apart (an outage is a 503 logged once; anything else a 500 with its traceback)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import create_engine, text

from app.db import get_engine
from experiments import store
from experiments.model import Trial
from tests.app.visitor import Visitor
from tests.factories import PUBLIC_URL

OUTAGE = "database unreachable"
BACK = "database reachable again"


# -- paths, methods, headers ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/register/x%00",
        "/register/x%00/trial.yaml",
        "/register/%01abc",
        "/register/a%7Fb",
        "/register/%C2%85",  # C1 control (NEL)
        "/register/%FF%FE",  # not UTF-8
        "/api/v1/events%00",
    ],
)
def test_nul_and_control_characters_in_a_path_are_404(
    app: Flask, factory_trial: Trial, path: str
) -> None:
    response = app.test_client().get(path)
    assert response.status_code == 404


def test_a_nul_in_a_kiosk_path_is_404_before_the_database(
    app: Flask, kiosk_path_a: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*_args: object) -> None:
        raise AssertionError("the database was asked")

    monkeypatch.setattr(store, "find_kiosk", never)
    client = app.test_client()
    assert client.get(kiosk_path_a.replace("/loc-a/", "/loc-a%00/")).status_code == 404
    response = client.post(kiosk_path_a + "start%00", data={"language": "en"})
    assert response.status_code == 404


def test_405_names_the_allowed_methods(app: Flask, kiosk_path_a: str) -> None:
    client = app.test_client()
    api = client.put("/api/v1/events", json={})
    assert api.status_code == 405 and api.is_json
    assert {method.strip() for method in api.headers["Allow"].split(",")} >= {"POST"}
    page = client.get(kiosk_path_a + "start")
    assert page.status_code == 405 and "POST" in page.headers["Allow"]
    assert "GET" not in page.headers["Allow"]


def test_401_names_the_scheme(app: Flask) -> None:
    response = app.test_client().post("/api/v1/events", json={})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_trial_file_has_one_charset(app: Flask, factory_trial: Trial) -> None:
    response = app.test_client().get(f"/register/{factory_trial.id}/trial.yaml")
    assert response.status_code == 200
    assert response.headers.getlist("Content-Type") == ["text/plain; charset=utf-8"]


def test_hsts_only_with_secure_cookies(make_app: Callable[..., Flask]) -> None:
    plain = make_app().test_client().get("/register")
    assert "Strict-Transport-Security" not in plain.headers
    secure = make_app(SECURE_COOKIES=True).test_client().get("/register", base_url="https://x")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_host_does_not_steer_a_redirect(make_app: Callable[..., Flask], kiosk_path_a: str) -> None:
    """Werkzeug answers a kiosk URL without its trailing slash with a redirect that it builds
    from ``Host``; the app sends it to the configured public address instead (or keeps it
    relative without one)."""
    bare = kiosk_path_a.rstrip("/")
    headers = {"Host": "evil.example"}
    configured = make_app().test_client().get(bare, headers=headers)
    assert configured.status_code in (301, 308)
    assert configured.headers["Location"] == PUBLIC_URL + kiosk_path_a
    unconfigured = make_app(PUBLIC_URL=None).test_client().get(bare, headers=headers)
    assert unconfigured.headers["Location"] == kiosk_path_a
    home = make_app().test_client().get("/", headers=headers)
    assert "evil.example" not in home.headers["Location"]


# -- database errors ----------------------------------------------------------------------


def _messages(caplog: pytest.LogCaptureFixture, words: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if words in record.getMessage()]


def test_an_unreachable_database_is_503_and_logged_once(
    make_app: Callable[..., Flask], tmp_path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """A database that refuses connections (PostgreSQL at a closed port) and one whose file
    cannot be opened (SQLite in a missing folder): every request is a 503, the log has one
    line for the outage, not one per request."""
    for url in (
        "postgresql+psycopg://postgres@127.0.0.1:1/test?connect_timeout=2",
        f"sqlite:///{tmp_path / 'missing' / 'folder' / 'nudgelab.db'}",
    ):
        caplog.clear()
        app = make_app(DATABASE_URL=url)
        client = app.test_client()
        with caplog.at_level(logging.INFO):
            answers = [client.get("/api/v1/health") for _ in range(5)]
            answers += [client.get("/register") for _ in range(5)]
        assert [answer.status_code for answer in answers] == [503] * 10, url
        assert answers[0].headers["Retry-After"] and answers[0].is_json
        assert len(_messages(caplog, OUTAGE)) == 1, url
        assert not [record for record in caplog.records if record.exc_info], url


@pytest.mark.postgres
def test_a_lost_connection_is_503_once_logged_and_recovers(
    make_app: Callable[..., Flask], postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server ends the app's connection (as in a restart): that request is a 503, the
    next one reconnects; the log says when the outage began and when it ended."""
    from experiments.eventlog import upgrade

    upgrade(postgres_url)
    app = make_app(DATABASE_URL=postgres_url)
    client = app.test_client()
    assert client.get("/api/v1/health").status_code == 200
    with get_engine(app).connect() as conn:  # the pooled connection the next request gets
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()
    with caplog.at_level(logging.INFO):
        lost = client.get("/api/v1/health")
        back = client.get("/api/v1/health")
    assert (lost.status_code, back.status_code) == (503, 200)
    assert len(_messages(caplog, OUTAGE)) == 1
    assert len(_messages(caplog, BACK)) == 1


def test_a_database_error_that_is_no_outage_is_500_with_a_traceback(
    app: Flask, kiosk_path_a: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad statement (a bug, not an outage): 500 on the API and on a kiosk page, each logged
    with its traceback, and no outage is reported."""
    original = store.find_kiosk

    def broken(conn, token):  # type: ignore[no-untyped-def]
        conn.execute(text("SELEC 1"))
        return original(conn, token)

    monkeypatch.setattr(store, "find_kiosk", broken)
    client = app.test_client()
    with caplog.at_level(logging.INFO):
        page = client.get(kiosk_path_a)
        api = client.post("/api/v1/events", json={}, headers={"Authorization": "Bearer x"})
    assert page.status_code == 500 and api.status_code == 500
    assert api.json["error"]["message"].startswith("internal error")
    tracebacks = [record for record in caplog.records if record.exc_info]
    assert len(tracebacks) == 2
    assert "SELEC 1" in caplog.text
    assert not _messages(caplog, OUTAGE)


def test_bad_data_reaching_the_database_is_500_not_503(
    app: Flask, visitor: Visitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value the database refuses (a NUL byte in a string: PostgreSQL refuses it) that got
    past the checks is a fault of the code, not an outage."""
    original = store.find_kiosk

    def with_nul(conn, token):  # type: ignore[no-untyped-def]
        from experiments.eventlog import kiosks

        conn.execute(kiosks.update().where(kiosks.c.id == "x\x00").values(active=True))
        return original(conn, token)

    monkeypatch.setattr(store, "find_kiosk", with_nul)
    status = visitor.arrives().status_code
    # SQLite stores the NUL and carries on; PostgreSQL refuses it (DataError): 500, never 503.
    assert status in (200, 500)
    assert status == (500 if get_engine(visitor.app).dialect.name == "postgresql" else 200)
