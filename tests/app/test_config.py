"""Settings: declared as data, read from NUDGELAB_*, checked once with a hint."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest
from flask import Flask

from app import StartupError, create_app
from app.config import MAKE_A_KEY, SETTINGS, from_environment, key_bits, resolve, settings_table
from app.db import get_engine
from tests.app.visitor import Visitor


def test_defaults_put_the_database_and_key_in_the_instance_folder(tmp_path: Path) -> None:
    config = resolve(tmp_path, {}, None)
    assert config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'nudgelab.db'}"
    assert config["INACTIVITY_SECONDS"] == 90
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert resolve(tmp_path, {}, None)["SECRET_KEY"] == config["SECRET_KEY"]  # shared by workers


def test_environment_values_are_parsed() -> None:
    values = from_environment(
        {
            "NUDGELAB_INACTIVITY_SECONDS": "45",
            "NUDGELAB_SECURE_COOKIES": "yes",
            "DATABASE_URL": "postgresql+psycopg://kiosk@db/nudgelab",
            "NUDGELAB_TEST_POSTGRES_URL": "ignored: belongs to the test suite",
            "PATH": "/usr/bin",
        }
    )
    assert values == {
        "INACTIVITY_SECONDS": 45,
        "SECURE_COOKIES": True,
        "DATABASE_URL": "postgresql+psycopg://kiosk@db/nudgelab",
    }
    both = {"DATABASE_URL": "sqlite:///a.db", "NUDGELAB_DATABASE_URL": "sqlite:///b.db"}
    assert from_environment(both)["DATABASE_URL"] == "sqlite:///b.db"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"NUDGELAB_INACTIVTY_SECONDS": "30"}, "did you mean NUDGELAB_INACTIVITY_SECONDS?"),
        ({"NUDGELAB_COLOUR": "blue"}, "known settings: NUDGELAB_"),
        ({"NUDGELAB_INACTIVITY_SECONDS": "soon"}, "NUDGELAB_INACTIVITY_SECONDS='soon'"),
        ({"NUDGELAB_INACTIVITY_SECONDS": "0"}, "must be a positive whole number"),
        ({"NUDGELAB_SECURE_COOKIES": "maybe"}, "must be true or false"),
        ({"NUDGELAB_START_INTERVAL_SECONDS": "-1"}, "from 0 to 3600"),
        ({"NUDGELAB_START_LIMIT": "many"}, "must be a rate such as 20/minute"),
        ({"NUDGELAB_BAD_TOKEN_LIMIT": "5 per fortnight"}, "must be a rate"),
        ({"NUDGELAB_REDIS_URL": "localhost:6379"}, "must be a redis://"),
    ],
)
def test_unknown_or_malformed_settings_stop_startup(
    environ: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StartupError, match="NUDGELAB_") as error:
        from_environment(environ)
    assert message in str(error.value)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StartupError):
        create_app({"SECRET_KEY": "x", "DATABASE_URL": "sqlite:////tmp/never-opened.db"})


def test_docs_list_every_setting() -> None:
    docs = Path("docs/kiosk.md").read_text(encoding="utf-8")
    assert settings_table() in docs, "regenerate the table with app.config.settings_table()"
    assert all(setting.help for setting in SETTINGS)


def test_each_request_returns_its_connection(app: Flask, visitor: Visitor) -> None:
    visitor.arrives()
    visitor.starts_in("en")
    visitor.taps("contact_requested")
    visitor.post_events({"broken": True})
    assert get_engine(app).pool.checkedout() == 0  # type: ignore[attr-defined]
    other = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": "x"})
    assert get_engine(other) is not get_engine(app)
    get_engine(other).dispose()


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "test-secret",
        secrets.token_hex(16),  # 16 random bytes
        secrets.token_hex(16) * 2,  # 64 hex digits, but 16 random bytes written twice
        secrets.token_urlsafe(24) * 2,
        secrets.token_urlsafe(24),
        "a" * 64,
        "0123456789abcdef" * 4,  # 64 hex digits, but a pattern
        "correct horse battery staple",
    ],
    # Fixed ids: random keys in the ids would differ between pytest-xdist's workers.
    ids=[
        "a", "test-secret", "hex16", "hex16-twice", "urlsafe24-twice", "urlsafe24", "a64",
        "pattern64", "passphrase",
    ],
)
def test_a_weak_secret_key_stops_startup_and_says_how_to_make_one(
    key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StartupError, match="NUDGELAB_SECRET_KEY") as error:
        from_environment({"NUDGELAB_SECRET_KEY": key})
    assert MAKE_A_KEY in str(error.value) and "32 random bytes" in str(error.value)
    assert repr(key) not in str(error.value)  # the key itself is never printed
    monkeypatch.setenv("NUDGELAB_SECRET_KEY", key)
    with pytest.raises(StartupError):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'never-opened.db'}"})


@pytest.mark.parametrize(
    "make",
    [
        lambda: secrets.token_hex(32),
        lambda: secrets.token_urlsafe(32),
        lambda: secrets.token_hex(32).upper(),
        lambda: secrets.token_hex(48),
    ],
)
def test_32_random_bytes_are_accepted(make) -> None:  # type: ignore[no-untyped-def]
    for _ in range(200):
        key = make()
        assert from_environment({"NUDGELAB_SECRET_KEY": f" {key}\n"}) == {"SECRET_KEY": key}


def test_the_key_of_the_instance_folder_is_checked_too(tmp_path: Path) -> None:
    resolve(tmp_path, {}, None)
    assert key_bits((tmp_path / "secret_key").read_text()) >= 256  # made by the app: accepted
    (tmp_path / "secret_key").write_text("changeme")
    with pytest.raises(StartupError, match="secret_key is too short") as error:
        resolve(tmp_path, {}, None)
    assert MAKE_A_KEY in str(error.value)
