"""The real server (gunicorn through ``nudgelab serve``) never logs a client's address."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.logs import ScrubAddresses, ScrubbingFormatter, scrub


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the server did not listen on port {port} in time")


def _raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_gunicorn_logs_no_client_address(tmp_path: Path) -> None:
    """A malformed request makes gunicorn warn ``Invalid request from ip=...``: the line is
    written, without the address."""
    port = _free_port()
    environ = {key: value for key, value in os.environ.items() if not key.startswith("NUDGELAB_")}
    server = subprocess.Popen(
        [sys.executable, "-c", "from nudgelab.cli import main; main()", "serve",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--db", f"sqlite:///{tmp_path / 'kiosk.db'}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ,
    )  # fmt: skip
    try:
        _wait_for(port, time.monotonic() + 20)
        too_long = b"GET /register HTTP/1.1\r\nHost: kiosk\r\nX-Padding: " + b"a" * 10_000
        answer = _raw_request(port, too_long + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 4"), answer[:100]
        assert _raw_request(port, b"NOT HTTP AT ALL\r\n\r\n").startswith(b"HTTP/1.1 400")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _stdout, stderr = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            _stdout, stderr = server.communicate()
    log = stderr.decode()
    assert "Invalid request from ip=[address]" in log, log  # the warning is there ...
    assert "127.0.0.1" not in log  # ... but not the client's address


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Invalid request from ip=127.0.0.1: bad", "Invalid request from ip=[address]: bad"),
        ("Invalid request from ip=::1: bad", "Invalid request from ip=[address]: bad"),
        ("peer ('10.0.0.255', 51234)", "peer ('[address]', 51234)"),
        ("from [2001:db8::7]:8000", "from [[address]]:8000"),
        ("mapped ::ffff:192.0.2.1, zone fe80::1%eth0.", "mapped [address], zone [address]."),
        ("ABCD:EF01:2345:6789:ABCD:EF01:2345:6789", "[address]"),
        ("at 10:15:00, version 1.2.3, 12:30:45.123", "at 10:15:00, version 1.2.3, 12:30:45.123"),
    ],
)
def test_scrub_removes_ipv4_and_ipv6_addresses(line: str, expected: str) -> None:
    assert scrub(line) == expected


def test_formatter_and_filter_scrub_arguments_and_tracebacks() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "from %s", ("203.0.113.7",), None)
    try:
        raise ConnectionError("reset by 2001:db8::7")
    except ConnectionError:
        record.exc_info = sys.exc_info()
    formatted = ScrubbingFormatter(logging.Formatter("%(message)s")).format(record)
    assert "203.0.113.7" not in formatted and "2001:db8" not in formatted
    assert "from [address]" in formatted and "reset by [address]" in formatted
    assert ScrubAddresses().filter(record)
    assert record.getMessage() == "from [address]"
    assert "2001:db8" not in (record.exc_text or "") and "reset by [address]" in record.exc_text


def test_werkzeug_and_app_logs_are_scrubbed(
    translations: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Werkzeug's development server starts each line with the client's address."""
    from werkzeug._internal import _log

    from app import create_app

    settings = {"DATABASE_URL": f"sqlite:///{tmp_path / 'never-opened.db'}", "SECRET_KEY": "x"}
    app = create_app({**settings, "BABEL_TRANSLATION_DIRECTORIES": translations})
    with caplog.at_level(logging.INFO):
        _log("error", '%s - - "GET / HTTP/1.1" 500 -', "203.0.113.7")
        app.logger.error("from %s", "2001:db8::7")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == ['[address] - - "GET / HTTP/1.1" 500 -', "from [address]"]
