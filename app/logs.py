"""Logs without client addresses: every IPv4 or IPv6 address in a log line becomes ``[address]``.

The kiosk never stores IP addresses (docs/ethics.md#what-the-kiosk-stores), and a log file is
storage. Servers and libraries name the client in their messages (gunicorn: ``Invalid request
from ip=...``; Werkzeug's development server prefixes every line with it), so the app does not
rely on each message being harmless: :class:`ScrubbingFormatter` wraps a handler's formatter
(gunicorn's, see :mod:`app.server`) and :class:`ScrubAddresses` filters a logger (Werkzeug's and
the app's), and both remove every address from the finished text, including tracebacks.
"""

from __future__ import annotations

import ipaddress
import logging
import re

REPLACEMENT = "[address]"

#: A run of hex digits, colons and dots with at least two colons (maybe with a zone): it may
#: hold an IPv6 address, possibly followed by ``:port`` or punctuation. :func:`_ipv6` replaces
#: its longest prefix that :mod:`ipaddress` accepts, so times such as ``10:15:00`` stay.
_IPV6 = re.compile(
    r"(?<![\w:.])[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(?:%[\w-]+(?:\.[\w-]+)*)?"
)
#: Four dot-separated numbers (also with a port, ``127.0.0.1:5000``); replaced without asking
#: whether each part is below 256: a version number that looks like an address may go too.
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)")


def _ipv6(match: re.Match[str]) -> str:
    text = match.group(0)
    address, percent, zone = text.partition("%")
    for end in range(len(address), 1, -1):
        try:
            ipaddress.IPv6Address(address[:end])
        except ValueError:
            continue
        rest = address[end:]
        return REPLACEMENT + (rest + percent + zone if rest else "")
    return text


def scrub(text: str) -> str:
    """``text`` with every IPv4 and IPv6 address replaced by ``[address]``."""
    return _IPV4.sub(REPLACEMENT, _IPV6.sub(_ipv6, text))


class ScrubbingFormatter(logging.Formatter):
    """Format with ``inner`` (a handler's own formatter), then remove addresses."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return scrub(self.inner.format(record))


class ScrubAddresses(logging.Filter):
    """A logger filter that removes addresses from the message, its traceback and stack."""

    _plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def scrub_logger(logger: logging.Logger) -> None:
    """Add :class:`ScrubAddresses` to ``logger`` (once)."""
    if not any(isinstance(existing, ScrubAddresses) for existing in logger.filters):
        logger.addFilter(ScrubAddresses())


def scrub_handlers(logger: logging.Logger) -> None:
    """Wrap the formatter of each of ``logger``'s handlers in a :class:`ScrubbingFormatter`."""
    for handler in logger.handlers:
        if not isinstance(handler.formatter, ScrubbingFormatter):
            handler.setFormatter(ScrubbingFormatter(handler.formatter))
