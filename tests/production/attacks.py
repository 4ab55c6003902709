"""What the fault tests do to the server: slow clients, and health probes that time the answers."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.client import HTTPException

from bench.load import Endpoint

#: A probe that has no answer after this many seconds counts as failed.
PROBE_TIMEOUT = 3.0


def slow_headers(
    connect: Callable[[], socket.socket], connections: int, seconds: float
) -> dict[str, int]:
    """``connections`` clients that each send a request's header one line per second and never
    finish it, reconnecting whenever the server closes, for ``seconds``. Returns how many
    connections were opened and how many the server closed."""
    deadline = time.monotonic() + seconds
    counts = {"opened": 0, "closed_by_server": 0}
    lock = threading.Lock()

    def client(number: int) -> None:
        while time.monotonic() < deadline:
            try:
                sock = connect()
            except OSError:
                time.sleep(0.2)
                continue
            with lock:
                counts["opened"] += 1
            try:
                sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: nudgelab.example.org\r\n")
                line = 0
                while time.monotonic() < deadline:
                    time.sleep(1)
                    line += 1
                    sock.sendall(f"X-Slow-{number}-{line}: {'a' * 20}\r\n".encode())
            except (OSError, ssl.SSLError):
                with lock:
                    counts["closed_by_server"] += 1
            finally:
                sock.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 10)
    return counts


def plain_connector(port: int, source: str) -> Callable[[], socket.socket]:
    return lambda: socket.create_connection(("127.0.0.1", port), 5, (source, 0))


def tls_connector(
    port: int, source: str, context: ssl.SSLContext, name: str
) -> Callable[[], socket.socket]:
    def connect() -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", port), 5, (source, 0))
        return context.wrap_socket(raw, server_hostname=name)

    return connect


def probe_once(endpoint: Endpoint) -> float:
    """``GET /api/v1/health`` on a new connection, as a monitor does: the seconds it took, or
    ``inf`` when it failed or had no answer within :data:`PROBE_TIMEOUT`."""
    began = time.perf_counter()
    connection = endpoint.connect("127.3.0.1", PROBE_TIMEOUT)
    try:
        connection.request("GET", "/api/v1/health")
        response = connection.getresponse()
        response.read()
    except (OSError, HTTPException):
        return float("inf")
    finally:
        connection.close()
    return time.perf_counter() - began if response.status == 200 else float("inf")


def probe_health(endpoint: Endpoint, seconds: float, interval: float = 0.1) -> list[float]:
    """:func:`probe_once` every ``interval`` for ``seconds``."""
    results: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        results.append(probe_once(endpoint))
        time.sleep(max(0.0, interval - min(results[-1], interval)))
    return results


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
