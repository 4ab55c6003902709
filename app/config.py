"""The kiosk's settings, declared as data and checked once at startup.

Each setting is read from the environment as ``NUDGELAB_<NAME>`` (the database also from
``DATABASE_URL``), has a default and a help text, and ends up in ``app.config[<NAME>]``. An
unknown ``NUDGELAB_*`` variable or a value of the wrong type stops startup with a
:class:`StartupError` that says what to change. ``docs/kiosk.md`` lists the same table
(``tests/app/test_config.py`` keeps the two in step).
"""

from __future__ import annotations

import difflib
import math
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.proxy import parse_networks
from experiments.opening_hours import DEFAULT as OPENING_HOURS_DEFAULT
from experiments.opening_hours import OpeningHours

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


def _opening_hours(text: str) -> str:
    """Opening hours as written, once :meth:`OpeningHours.parse` reads them."""
    OpeningHours.parse(text)
    return text.strip()


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 3600:
        raise ValueError("must be a number of seconds from 0 to 3600")
    return value


def _rate(text: str) -> str | None:
    """A rate limit such as ``20/minute`` (checked by :mod:`limits`); ``off`` turns it off."""
    from limits import parse_many

    cleaned = text.strip()
    if cleaned.lower() in ("", "off"):
        return None
    try:
        parse_many(cleaned)
    except ValueError:
        raise ValueError("must be a rate such as 20/minute or 5/second, or off") from None
    return cleaned


def _redis_url(text: str) -> str | None:
    cleaned = text.strip()
    if cleaned and not cleaned.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("must be a redis:// (or rediss://, unix://) address")
    return cleaned or None


#: How to make a key that :func:`check_secret_key` accepts.
MAKE_A_KEY = "python -c 'import secrets; print(secrets.token_hex(32))'"

#: Characters per alphabet of a key: hex digits, URL-safe base64, any printable ASCII.
_ALPHABETS = (
    (16, frozenset("0123456789abcdefABCDEF")),
    (64, frozenset(string.ascii_letters + string.digits + "-_+/=")),
    (95, frozenset(string.printable[:95])),
)


def key_bits(key: str) -> float:
    """An upper estimate of the random bits in ``key``: the bits of one character of the
    smallest usual alphabet that holds it, times the characters that do not repeat an earlier
    stretch of the key (a pattern such as ``abab…``, ``0123…0123…`` or a random half written
    twice adds nothing). A stretch counts as a repeat from :func:`_repeat_length` characters
    on, long enough (40 bits or more) that a truly random key almost never holds one: with 24
    bits, 1 in 50,000 keys of ``secrets.token_hex(32)`` and 3 in 50,000 of ``token_urlsafe(32)``
    held a chance repeat and were refused."""
    if not key:
        return 0.0
    per_char = 8.0
    for size, alphabet in _ALPHABETS:
        if set(key) <= alphabet:
            per_char = math.log2(size)
            break
    return _fresh_characters(key, _repeat_length(per_char)) * per_char


def _repeat_length(per_char: float) -> int:
    """The shortest stretch taken as a repeat: at least 40 bits of the key's alphabet."""
    return math.ceil(40 / per_char)


def _fresh_characters(key: str, shortest: int) -> int:
    """The characters of ``key`` left when every stretch of ``shortest`` or more characters
    that already occurred earlier (overlapping allowed, as in LZ77) is taken out."""
    fresh, index = 0, 0
    while index < len(key):
        length = 0
        while (
            index + length < len(key)
            and key.find(key[index : index + length + 1], 0, index + length) != -1
        ):
            length += 1
        if length >= shortest:
            index += length
        else:
            fresh += 1
            index += 1
    return fresh


def check_secret_key(key: str, source: str) -> str:
    """``key`` if it holds at least 32 random bytes (256 bits), else a :class:`StartupError`
    that says how to make one."""
    if key_bits(key) < 256:
        raise StartupError(
            f"{source} is too short or not random: the key that signs visit cookies needs at "
            f"least 32 random bytes (64 hex digits); make one with: {MAKE_A_KEY}"
        )
    return key


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
        "Key that signs the visit cookie, at least 32 random bytes (make one with python -c "
        "'import secrets; print(secrets.token_hex(32))'); default: a random key kept in "
        "instance/secret_key, so every worker and restart shares it",
        lambda text: check_secret_key(text.strip(), "NUDGELAB_SECRET_KEY"),
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
        "Send the visit cookie only over HTTPS (turn on when the kiosk is served over HTTPS); "
        "also sends Strict-Transport-Security",
        _flag,
    ),
    Setting(
        "CONSOLE_IDLE_MINUTES",
        60,
        "Minutes without a request after which a research-console session ends and its "
        "account must sign in again",
        _positive_int,
    ),
    Setting(
        "SILENT_KIOSK_MINUTES",
        120,
        "The research console flags a switched-on kiosk that has sent nothing for this many "
        "minutes during opening hours",
        _positive_int,
    ),
    Setting(
        "OPENING_HOURS",
        OPENING_HOURS_DEFAULT,
        "When kiosks should be heard, for the silent-kiosk flag (console and `nudgelab kiosk "
        "list`): days, hours, time zone, e.g. 'mon-sat 08:30-17:00 Europe/Amsterdam'; a window "
        "that closes before it opens runs overnight ('daily 20:00-02:00 UTC')",
        _opening_hours,
    ),
    Setting(
        "START_INTERVAL_SECONDS",
        2.0,
        "A kiosk starts at most one visit in this many seconds: a second start within it (a "
        "double tap, a script) shows the visit that was just started; 0 turns the rule off",
        _seconds,
    ),
    Setting(
        "START_LIMIT",
        "30/minute",
        "Visit starts one client address may make (all kiosks behind it together); more are "
        "answered 429; off turns the limit off",
        _rate,
    ),
    Setting(
        "BAD_TOKEN_LIMIT",
        "20/minute",
        "API calls with a missing, unknown or switched-off kiosk token one client address may "
        "make; after that every API call from that address is answered 429 until the minute "
        "is over; off turns the limit off",
        _rate,
    ),
    Setting(
        "SIGN_IN_LIMIT",
        "10/minute",
        "Research-console sign-in attempts one client address may make, whichever accounts they "
        "name; more are answered 429 (each account is also locked after 5 wrong passwords in a "
        "row); off turns the limit off",
        _rate,
    ),
    Setting(
        "REDIS_URL",
        None,
        "Redis that keeps the rate-limit counters for all workers, e.g. redis://127.0.0.1:6379/0; "
        "default: each worker counts on its own, in memory (see docs/limits.md)",
        _redis_url,
    ),
    Setting(
        "TRUSTED_PROXIES",
        None,
        "Addresses (or networks, comma-separated) of the front server: X-Forwarded-For and "
        "X-Forwarded-Proto are applied only to requests from these and removed from all "
        "others; `nudgelab serve --behind-proxy` sets 127.0.0.1,::1 (see docs/deploy.md)",
        parse_networks,
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
        config["SECRET_KEY"] = check_secret_key(
            secret_key(instance_path), str(instance_path / "secret_key")
        )
    return config


def settings_table() -> str:
    """The settings as a Markdown table (the one in ``docs/kiosk.md``)."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for setting in SETTINGS:
        default = "–" if setting.default is None else f"`{setting.default}`"
        rows.append(f"| `{setting.env}` | {default} | {setting.help} |")
    return "\n".join(rows)
