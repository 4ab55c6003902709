"""X-Forwarded-* count only from the front server (``NUDGELAB_TRUSTED_PROXIES``)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask, jsonify, request

from app import StartupError, create_app
from app.config import from_environment
from app.db import dispose
from app.proxy import forwarded_allow_ips
from app.server import KEEPALIVE_SECONDS, options

FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def _echo_app(tmp_path: Path, **config: object) -> Flask:
    app = create_app(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}",
            "SECRET_KEY": secrets.token_hex(32),
            **config,
        }
    )

    @app.get("/_peer")
    def peer():  # type: ignore[no-untyped-def]
        return jsonify(addr=request.remote_addr, scheme=request.scheme, url=request.url_root)

    return app


def _peer(app: Flask, remote: str) -> dict[str, str]:
    client = app.test_client()
    try:
        answer = client.get("/_peer", headers=FORWARDED, environ_base={"REMOTE_ADDR": remote})
        return answer.get_json()
    finally:
        dispose(app)


def test_forwarded_headers_apply_from_the_front_server(tmp_path: Path) -> None:
    app = _echo_app(tmp_path, TRUSTED_PROXIES="127.0.0.1,::1")
    assert _peer(app, "127.0.0.1") == {
        "addr": "203.0.113.9",
        "scheme": "https",
        "url": "https://localhost/",
    }


def test_forwarded_headers_are_dropped_from_anyone_else(tmp_path: Path) -> None:
    app = _echo_app(tmp_path, TRUSTED_PROXIES="127.0.0.1")
    assert _peer(app, "198.51.100.4") == {
        "addr": "198.51.100.4",
        "scheme": "http",
        "url": "http://localhost/",
    }


def test_without_the_setting_nothing_is_trusted(tmp_path: Path) -> None:
    app = _echo_app(tmp_path)
    assert _peer(app, "127.0.0.1")["addr"] == "127.0.0.1"


def test_networks_are_parsed_and_bad_ones_refused() -> None:
    parsed = from_environment({"NUDGELAB_TRUSTED_PROXIES": "10.1.2.3, 192.0.2.0/24"})
    assert forwarded_allow_ips(parsed["TRUSTED_PROXIES"]) == "10.1.2.3/32,192.0.2.0/24"
    with pytest.raises(StartupError, match="not an IP address"):
        from_environment({"NUDGELAB_TRUSTED_PROXIES": "nginx.local"})


def test_gunicorn_trusts_the_same_addresses_and_outlives_nginx_keepalive() -> None:
    settings = options("127.0.0.1", 8000, 2, 4, forwarded_allow_ips("127.0.0.1,::1"))
    assert settings["forwarded_allow_ips"] == "127.0.0.1/32,::1/128"
    assert settings["worker_class"] == "gthread"
    nginx = (Path(__file__).parents[2] / "deploy/nginx/nudgelab.conf").read_text()
    assert f"keepalive_timeout {KEEPALIVE_SECONDS - 15}s;" in nginx
    assert options("127.0.0.1", 8000, 2)["forwarded_allow_ips"] == ""


def test_serve_behind_proxy_trusts_the_local_front_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``nudgelab serve --behind-proxy``: gunicorn and the app trust 127.0.0.1 and ::1 only;
    without the flag nothing is trusted."""
    import app.server
    from nudgelab.cli import main

    served: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(app.server, "serve", lambda *args, **kw: served.append((args, kw)))
    environ = {"NUDGELAB_SECRET_KEY": secrets.token_hex(32)}
    database = f"sqlite:///{tmp_path / 'k.db'}"
    for flags in (["--behind-proxy"], []):
        result = CliRunner(env=environ).invoke(main, ["serve", *flags, "--db", database])
        assert result.exit_code == 0, result.output
    (proxied, proxied_kw), (plain, plain_kw) = served
    assert proxied_kw["trusted_proxies"] == "127.0.0.1/32,::1/128"
    assert plain_kw["trusted_proxies"] == ""
    for factory, expected in ((proxied[0], "203.0.113.9"), (plain[0], "127.0.0.1")):
        kiosk_app = factory()
        kiosk_app.add_url_rule("/_peer", "peer", lambda: request.remote_addr or "")
        answer = kiosk_app.test_client().get(
            "/_peer", headers=FORWARDED, environ_base={"REMOTE_ADDR": "127.0.0.1"}
        )
        dispose(kiosk_app)
        assert answer.get_data(as_text=True) == expected
