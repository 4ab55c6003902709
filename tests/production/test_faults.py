"""Fault tests of the deployed stack: ``nudgelab serve`` (gunicorn) on PostgreSQL, behind nginx
with the configuration in ``deploy/``, loaded by kiosks with the kiosk page's queue semantics
(``bench/load.py``). Each ends with the database check: every visit one assignment, every
acknowledged event stored exactly once, nothing stored twice, blocks balanced.

The figures each test measured are printed (``pytest -s``); ``docs/deploy.md`` explains what
each fault stands for.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bench.frontserver import SERVER_NAME, front_server
from bench.load import (
    BENCH_SETTINGS,
    Endpoint,
    Faults,
    Server,
    Setup,
    Stats,
    check_database,
    kiosk_server,
    prepare,
    restart_outage,
    run_kiosks,
    terminate_connections,
)
from tests.production.attacks import (
    percentile,
    plain_connector,
    probe_health,
    probe_once,
    slow_headers,
    tls_connector,
)

pytestmark = [pytest.mark.fault, pytest.mark.postgres, pytest.mark.slow]


def background(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(function, *args, **kwargs)
    pool.shutdown(wait=False)
    return future


def assert_consistent(url: str, setup: Setup, stats: Stats) -> None:
    """Acknowledged = stored, 0 duplicated, every visit one assignment, blocks balanced."""
    check = check_database(url, setup, stats)
    print(f"\n{check.summary()}")
    assert stats.visits > 0 and check.acknowledged > 0, "the kiosks got nothing done"
    assert check.without_assignment == 0
    assert check.acknowledged_missing == 0, "an acknowledged event is not stored"
    assert check.keys_stored_twice == 0 and check.events_stored_twice == 0
    assert check.visits_with_two_ends == 0
    assert check.block_problems == []
    assert check.stored_unacknowledged == check.stored_unacknowledged_unsent
    assert check.ok


def seconds_until_healthy(endpoint: Endpoint, limit: float = 30.0) -> float:
    """Seconds until ``GET /api/v1/health`` answers 200 again (probing every 50 ms)."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        if probe_once(endpoint) != float("inf"):
            return time.monotonic() - began
        time.sleep(0.05)
    raise AssertionError(f"the server did not recover within {limit} s")


@pytest.fixture
def setup(scratch_url: str) -> Setup:
    return prepare(scratch_url, 8)


@pytest.fixture
def server(scratch_url: str, setup: Setup, tmp_path: Path) -> Any:
    with kiosk_server(
        scratch_url, tmp_path / "server.log", behind_proxy=True, settings=BENCH_SETTINGS
    ) as running:
        yield running


def test_database_connections_ended_during_load(
    scratch_url: str, setup: Setup, server: Server
) -> None:
    """The stand-ins for a PostgreSQL restart, while 12 kiosks are busy: every connection to the
    test's database is ended (``pg_terminate_backend``); then, as in a real restart, the
    connections are ended *and* new ones refused for 3 s (``ALLOW_CONNECTIONS false``). Only the
    test's own database is touched, so other tests running at the same time are not."""
    endpoint = Endpoint.direct(server.port)
    load = background(run_kiosks, setup, endpoint, 12, think=0.02, drain=30)
    time.sleep(3)
    ended = [terminate_connections(scratch_url)]
    recoveries = [seconds_until_healthy(endpoint)]
    time.sleep(3)
    began = time.monotonic()
    count, refused = restart_outage(scratch_url, 3.0)
    ended.append(count)
    recoveries.append(time.monotonic() - began + seconds_until_healthy(endpoint))
    stats = load.result(timeout=90)
    print(
        f"\nconnections ended {ended}, new connections refused during the outage: {refused}, "
        f"healthy again after {[round(r, 2) for r in recoveries]} s, "
        f"statuses {dict(stats.statuses)}"
    )
    assert all(count > 0 for count in ended), "no connection was ended: the fault did not happen"
    assert refused, "a new connection got through: the outage did not happen"
    assert max(recoveries) < 15
    assert_consistent(scratch_url, setup, stats)


def test_a_worker_killed_with_sigkill(scratch_url: str, setup: Setup, server: Server) -> None:
    """One gunicorn worker is killed mid-load (SIGKILL: no clean-up); the arbiter starts
    another and the kiosks resend what was not acknowledged."""
    endpoint = Endpoint.direct(server.port)
    load = background(run_kiosks, setup, endpoint, 10, think=0.02, drain=30)
    time.sleep(3)
    workers = server.workers()
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    killed = time.monotonic()
    while len(set(server.workers()) - set(workers)) < 1 and time.monotonic() - killed < 20:
        time.sleep(0.05)
    replaced = time.monotonic() - killed
    stats = load.result(timeout=90)
    print(
        f"\nworker replaced after {replaced:.2f} s, statuses {dict(stats.statuses)}, "
        f"network errors {stats.network_errors}"
    )
    assert workers[0] not in server.workers() and len(server.workers()) == 2
    assert replaced < 10
    assert_consistent(scratch_url, setup, stats)


def test_lost_answers_and_batches_sent_twice_through_the_front_server(
    scratch_url: str, setup: Setup, server: Server, nginx: str, tmp_path: Path
) -> None:
    """15% of the API answers never reach the kiosk (half cut off before the answer, half
    dropped after it) and 10% of the batches are sent twice: each event is stored once."""
    with front_server(server.port, tmp_path, relaxed=True) as front:
        stats = run_kiosks(
            setup, Endpoint.through(front), 8, think=0.01, faults=Faults(0.15, 0.10), drain=30
        )
    duplicates = sum(1 for *_, status in stats.acknowledged.values() if status == "duplicate")
    print(
        f"\nlost answers {stats.lost_answers}, batches sent twice {stats.resent_batches}, "
        f"acknowledged as duplicate {duplicates}"
    )
    assert stats.lost_answers > 0 and stats.resent_batches > 0
    assert duplicates > 0, "no resend was answered 'duplicate': the faults did not happen"
    assert_consistent(scratch_url, setup, stats)


def test_slow_clients_are_held_by_the_front_server(
    scratch_url: str, setup: Setup, server: Server, nginx: str, tmp_path: Path
) -> None:
    """20 connections that send one header line per second, through nginx (the configuration
    as shipped, rate limits included): health probes keep answering (p99 < 1 s) and the
    kiosks' visits go on. The kiosks start 2 s before the attack, so that the probes measure
    the attack and not the server's first seconds under load (its database pools filling)."""
    with front_server(server.port, tmp_path) as front:
        endpoint = Endpoint.through(front)
        load = background(run_kiosks, setup, endpoint, 16, think=0.5, drain=30)
        time.sleep(2)
        connect = tls_connector(front.https_port, "127.2.0.1", front.context(), SERVER_NAME)
        attack = background(slow_headers, connect, 20, 14)
        time.sleep(1.5)
        probes = probe_health(endpoint, 11)
        attacked = attack.result(timeout=60)
        stats = load.result(timeout=90)
    failed = sum(1 for seconds in probes if seconds == float("inf"))
    p99 = percentile(probes, 0.99)
    print(
        f"\nslow connections {attacked}; probes {len(probes)}, failed {failed}, p50 "
        f"{percentile(probes, 0.5) * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms"
    )
    assert attacked["opened"] >= 20
    assert attacked["closed_by_server"] >= 20  # nginx's 10 s header timeout ended each
    assert failed == 0 and p99 < 1.0
    assert_consistent(scratch_url, setup, stats)


def test_slow_clients_take_gunicorn_down_without_the_front_server(server: Server) -> None:
    """The same attack on gunicorn directly holds every worker thread: the probes fail. (Why
    kiosks must reach the app through nginx; also shows that the probe can fail.)"""
    attack = background(slow_headers, plain_connector(server.port, "127.2.0.1"), 20, 10)
    time.sleep(1.5)
    probes = probe_health(Endpoint.direct(server.port), 6)
    attack.result(timeout=60)
    failed = sum(1 for seconds in probes if seconds == float("inf"))
    print(f"\ndirect: probes {len(probes)}, failed {failed}")
    assert failed >= 1 and percentile(probes, 0.99) >= 1.0


def test_a_flood_of_starts_from_one_kiosk_is_cut_by_the_front_server(
    scratch_url: str, setup: Setup, server: Server, nginx: str, tmp_path: Path
) -> None:
    """40 ``POST …/start`` of one kiosk within about a second (a stuck button, a script), the
    app's own start limits off: nginx lets 1 + burst 3 through and shows the others the
    current visit (303 to ``…/visit``)."""
    from sqlalchemy import create_engine, text

    kiosk = setup.kiosks[0]
    statuses: list[tuple[int, str | None]] = []
    lock = threading.Lock()
    with front_server(server.port, tmp_path) as front:

        def tap(count: int) -> None:
            connection = front.connection(10, "127.4.0.1")
            for _ in range(count):
                connection.request(
                    "POST",
                    kiosk.path + "start",
                    "language=en",
                    {"Content-Type": "application/x-www-form-urlencoded"},
                )
                response = connection.getresponse()
                response.read()
                with lock:
                    statuses.append((response.status, response.getheader("Location")))
            connection.close()

        began = time.monotonic()
        threads = [threading.Thread(target=tap, args=(10,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.monotonic() - began
    engine = create_engine(scratch_url)
    with engine.connect() as conn:
        visits = conn.execute(text("SELECT count(*) FROM visits")).scalar_one()
    engine.dispose()
    refused = [location for status, location in statuses if status == 303]
    print(f"\n40 starts in {took:.2f} s: {visits} visits, {len(refused)} shown the visit page")
    assert took < 5
    assert 1 <= visits <= 4
    assert len(refused) == 40 - visits
    assert all(location == kiosk.path + "visit" for location in refused)
