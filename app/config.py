"""The kiosk's settings, declared as data and checked once at startup.

Each setting is read from the environment as ``NUDGELAB_<NAME>`` (the database also from
``DATABASE_URL``), has a default and a help text, and ends up in ``app.config[<NAME>]``. An
unknown ``NUDGELAB_*`` variable or a value of the wrong type stops startup with a
:class:`StartupError` that says what to change. ``docs/kiosk.md`` lists the same table
(``tests/app/test_config.py`` keeps the two in step).
"""

from __future__ import annotations

import difflib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PREFIX = "NUDGELAB_"


class StartupError(Exception):
    """A setting the kiosk cannot start with; the message says what to change."""


@dataclass(frozen=True)
class Setting:
    """One ``NUDGELAB_*`` setting: its name in ``app.config``, default, parser and help."""

    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str

    @property
    def env(self) -> str:
        return PREFIX + self.name


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "DATABASE_URL",
        None,
        "SQLAlchemy URL of the event log (also read from DATABASE_URL); default: a SQLite "
        "file instance/nudgelab.db. PostgreSQL: postgresql+psycopg://user@host/db",
    ),
    Setting(
        "SECRET_KEY",
        None,
        "Key that signs the visit cookie; default: a random key kept in "
        "instance/secret_key, so every worker and restart shares it",
    ),
    Setting(
        "INACTIVITY_SECONDS",
        90,
        "Seconds without a touch after which the kiosk ends the visit and shows the welcome "
        "screen to the next visitor",
        _positive_int,
    ),
    Setting(
        "MAX_EVENTS_PER_REQUEST",
        100,
        "Largest batch of events one POST /api/v1/events may carry",
        _positive_int,
    ),
    Setting(
        "MAX_CONTENT_LENGTH",
        65536,
        "Largest request body in bytes; larger requests get 413",
        _positive_int,
    ),
    Setting(
        "RETRY_MAX_SECONDS",
        60,
        "Longest wait between two attempts of the kiosk page to send queued events",
        _positive_int,
    ),
    Setting(
        "DEFAULT_LANGUAGE",
        "en",
        "Interface language of pages outside a visit (register, errors) when the browser "
        "asks for none of the kiosk's languages",
    ),
    Setting(
        "PUBLIC_URL",
        None,
        "Public address of this server, e.g. https://nudgelab.example.org: a trial's relative "
        "register_url is shown to visitors and readers as a full address under it (without "
        "it, the address the kiosk itself was opened with)",
        lambda text: text.strip().rstrip("/") or None,
    ),
    Setting(
        "SECURE_COOKIES",
        False,
        "Send the visit cookie only over HTTPS (turn on when the kiosk is served over HTTPS)",
        _flag,
    ),
)
BY_ENV: dict[str, Setting] = {setting.env: setting for setting in SETTINGS}


def _hint(env_name: str) -> str:
    names = [setting.name for setting in SETTINGS]
    close = difflib.get_close_matches(env_name.removeprefix(PREFIX), names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {PREFIX}{close[0]}?"
    return "known settings: " + ", ".join(sorted(BY_ENV))


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Parse every ``NUDGELAB_*`` variable; refuse unknown names and malformed values."""
    values: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(PREFIX) or name.startswith("NUDGELAB_TEST_"):
            continue
        setting = BY_ENV.get(name)
        if setting is None:
            raise StartupError(f"unknown setting {name}: {_hint(name)} (see docs/kiosk.md)")
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as error:
            raise StartupError(f"{name}={raw!r}: {error}") from None
    if "DATABASE_URL" not in values and environ.get("DATABASE_URL"):
        values["DATABASE_URL"] = environ["DATABASE_URL"]
    return values


def default_database_url(instance_path: Path) -> str:
    return f"sqlite:///{instance_path / 'nudgelab.db'}"


def secret_key(instance_path: Path) -> str:
    """The instance's cookie-signing key, created on first use (readable by the owner only)."""
    path = instance_path / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = secrets.token_hex(32)
        path.touch(mode=0o600)
        path.write_text(key)
        return key


def resolve(
    instance_path: Path, environ: Mapping[str, str], overrides: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Defaults, then the environment, then ``overrides`` (tests), with paths filled in."""
    config: dict[str, Any] = {setting.name: setting.default for setting in SETTINGS}
    config.update(from_environment(environ))
    config.update(overrides or {})
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = default_database_url(instance_path)
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = secret_key(instance_path)
    return config


def settings_table() -> str:
    """The settings as a Markdown table (the one in ``docs/kiosk.md``)."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for setting in SETTINGS:
        default = "–" if setting.default is None else f"`{setting.default}`"
        rows.append(f"| `{setting.env}` | {default} | {setting.help} |")
    return "\n".join(rows)
