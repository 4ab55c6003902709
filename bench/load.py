"""Load test: N kiosks doing complete visits against ``nudgelab serve`` on PostgreSQL, then a
check of the database; and the same clients against a bare Flask endpoint, as a ratio.

    .venv/bin/python bench/load.py [--kiosks 50] [--duration 60] [--through direct,nginx]
                                   [--think 0] [--lose 0] [--resend 0] [--postgres-url URL]

Everything runs on loopback and stops by itself: at most ``--duration`` seconds of visits per
run, then at most ``--drain`` seconds for the kiosks to send what is still queued, and at most
``--max-requests`` requests in all. Each kiosk is one thread with its own keep-alive connection
and its own loopback source address (127.1.x.y), like kiosks at different locations. The server
is the real ``nudgelab serve`` (2 gunicorn workers of 4 threads; ``--behind-proxy`` through
nginx) on a scratch database created in the PostgreSQL server and dropped at the end. Through
nginx (``bench/frontserver.py``: the deploy configuration on loopback, HTTPS) the request rates
of the configuration are multiplied by 1000 and the app's start limits are off
(``NUDGELAB_START_INTERVAL_SECONDS=0``, ``NUDGELAB_START_LIMIT=off``), so that the figures are
the server's capacity, not the limits'.

A visit is what a kiosk page does: ``POST …/start`` (the visit is randomized), ``GET …/visit``
(the exposure is logged), one to three outcome taps and ``POST …/end``. Taps go through the
kiosk's queue semantics (``app/static/kiosk.js``): each event gets an idempotency key, the batch
is sent to ``POST /api/v1/events``, an event leaves the queue only when acknowledged, anything
else is resent with backoff. ``--lose`` is the share of API answers the kiosk never sees (half
read and dropped, half cut off before reading) and ``--resend`` the share of batches sent twice.

Afterwards the database is checked (:func:`check_database`): every visit has one assignment,
every acknowledged event is stored exactly once, nothing is stored twice, no visit has two
ends, and the permuted blocks are balanced. Printed: visits/s, events/s, requests/s and
p50/p95/p99 of all requests; then the bare endpoint (``bench/ingest.py``'s Flask app with one
INSERT, served the same way) under the same number of clients, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPConnection, HTTPException
from http.cookies import SimpleCookie
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import frontserver, ingest  # noqa: E402

TRIAL = ROOT / "experiments" / "trials" / "tearoom-return-info.yaml"
POSTGRES_URL = ingest.POSTGRES_URL
#: Event types the kiosk server logs itself; a kiosk never sends them.
SERVER_EVENTS = frozenset({"exposure", "language_switch", "opt_out", "finish", "timeout"})
ACKNOWLEDGED = ("stored", "duplicate", "discarded")
VISIT_ID = re.compile(r'data-visit="([0-9a-f-]{36})"')
#: Settings of the kiosk server in the bench: capacity, not limits (see the module docstring).
BENCH_SETTINGS = {"NUDGELAB_START_INTERVAL_SECONDS": "0", "NUDGELAB_START_LIMIT": "off"}


# -- the database ---------------------------------------------------------------------------


@contextmanager
def scratch_database(admin_url: str = POSTGRES_URL) -> Iterator[str]:
    """A new, empty database in the PostgreSQL server of ``admin_url``, dropped afterwards
    (its connections are ended first)."""
    name = f"nudgelab_load_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def terminate_connections(url: str) -> int:
    """End every connection to ``url``'s database (PostgreSQL's ``pg_terminate_backend``), as
    a restart of the server would; return how many were ended. Other databases are not
    touched."""
    database = make_url(url).database
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM "
                    "pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
                ),
                {"db": database},
            ).scalar_one()
    finally:
        engine.dispose()
    return int(ended)


def restart_outage(url: str, seconds: float) -> tuple[int, bool]:
    """What a PostgreSQL restart does to ``url``'s database, without touching the others: new
    connections are refused (``ALLOW_CONNECTIONS false``) and every open one is ended, for
    ``seconds``; then connections are allowed again. Returns how many were ended and whether a
    new connection was really refused during the outage."""
    database = make_url(url).database
    quoted = '"' + str(database).replace('"', '""') + '"'
    # A database cannot refuse connections to itself: the outage is run from the server's
    # maintenance database.
    admin = make_url(url).set(database="postgres")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    refused = False
    try:
        with engine.connect() as conn:
            conn.execute(text(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS false"))
            try:
                ended = conn.execute(
                    text(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM "
                        "pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                ).scalar_one()
                probe = create_engine(url, poolclass=NullPool)
                try:
                    with probe.connect():
                        pass
                except OperationalError:
                    refused = True
                finally:
                    probe.dispose()
                time.sleep(seconds)
            finally:
                conn.execute(text(f"ALTER DATABASE {quoted} ALLOW_CONNECTIONS true"))
    finally:
        engine.dispose()
    return int(ended), refused


@dataclass(frozen=True)
class KioskSpec:
    path: str
    token: str
    location: str


@dataclass(frozen=True)
class Setup:
    trial_id: str
    languages: list[str]
    outcomes: list[str]
    kiosks: list[KioskSpec]


def prepare(url: str, kiosks: int) -> Setup:
    """Migrate, load and start the example trial, register ``kiosks`` kiosks over its
    locations."""
    from experiments import store
    from experiments.eventlog import make_engine, upgrade

    upgrade(url)
    source = TRIAL.read_text(encoding="utf-8")
    trial = store.parse_trial(source)
    engine = make_engine(url)
    specs = []
    try:
        with engine.begin() as conn:
            store.load_trial(conn, trial, source)
            store.start_trial(conn, trial.id)
            for number in range(kiosks):
                location = trial.location_ids[number % len(trial.location_ids)]
                _kiosk, token = store.register_kiosk(conn, trial, location)
                specs.append(
                    KioskSpec(store.kiosk_path(trial.id, location, token), token, location)
                )
    finally:
        engine.dispose()
    outcomes = sorted(trial.outcome_events - SERVER_EVENTS)
    return Setup(trial.id, list(trial.languages), outcomes, specs)


# -- the servers ---------------------------------------------------------------------------


@dataclass
class Server:
    """A running ``nudgelab serve``: its port and the gunicorn arbiter's process id."""

    port: int
    pid: int
    log: Path

    def workers(self) -> list[int]:
        return [pid for pid in ingest._family(self.pid) if pid != self.pid]


@contextmanager
def kiosk_server(
    url: str,
    log: Path,
    *,
    behind_proxy: bool = False,
    workers: int = 2,
    settings: dict[str, str] | None = None,
) -> Iterator[Server]:
    """``nudgelab serve`` on a free loopback port until the block ends."""
    port = frontserver.free_port()
    environ = {key: value for key, value in os.environ.items() if not key.startswith("NUDGELAB_")}
    environ["NUDGELAB_SECRET_KEY"] = secrets.token_hex(32)
    environ.update(settings or {})
    command = [
        sys.executable,
        "-c",
        "from nudgelab.cli import main; main()",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--db",
        url,
    ]
    if behind_proxy:
        command.append("--behind-proxy")
    with log.open("ab") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=log_file, env=environ, cwd=ROOT)
    try:
        wait_until_healthy(lambda: HTTPConnection("127.0.0.1", port, timeout=2), process, log)
        yield Server(port, process.pid, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_healthy(
    connect: Callable[[], HTTPConnection], process: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = connect()
            connection.request("GET", "/api/v1/health")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except (OSError, HTTPException):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start; see {log}:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


@dataclass(frozen=True)
class Endpoint:
    """Where the kiosks connect: gunicorn directly (HTTP) or the front server (HTTPS)."""

    name: str
    connect: Callable[[str | None, float], HTTPConnection]

    @classmethod
    def direct(cls, port: int) -> Endpoint:
        def connect(source: str | None, timeout: float) -> HTTPConnection:
            address = (source, 0) if source else None
            return HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=address)

        return cls("direct", connect)

    @classmethod
    def through(cls, front: frontserver.FrontServer) -> Endpoint:
        return cls("nginx", lambda source, timeout: front.connection(timeout, source))


# -- the kiosks ------------------------------------------------------------------------------


@dataclass
class Faults:
    lose: float = 0.0  # share of API answers the kiosk never sees
    resend: float = 0.0  # share of batches sent twice


@dataclass
class Stats:
    """What the kiosks did and saw (shared by their threads)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    network_errors: int = 0
    requests: int = 0
    visits: int = 0
    started: set[str] = field(default_factory=set)
    refused_starts: int = 0
    events_sent: int = 0
    acknowledged: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    refused_events: int = 0
    lost_answers: int = 0
    resent_batches: int = 0
    unsent: list[str] = field(default_factory=list)
    seconds: float = 0.0

    by_kind: dict[str, list[float]] = field(default_factory=dict)

    def add(self, seconds: float, status: int | None, kind: str = "bare") -> None:
        with self.lock:
            self.requests += 1
            self.latencies.append(seconds)
            self.by_kind.setdefault(kind, []).append(seconds)
            if status is None:
                self.network_errors += 1
            else:
                self.statuses[status] += 1

    def percentile(self, share: float, kind: str | None = None) -> float:
        """Milliseconds below which ``share`` of the requests (of ``kind``) were answered."""
        ordered = sorted(self.latencies if kind is None else self.by_kind.get(kind, []))
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1e3

    def kinds(self) -> str:
        """Count, p50 and p99 of each kind of request."""
        return "; ".join(
            f"{kind} {len(values)}: p50 {self.percentile(0.5, kind):.0f} / p99 "
            f"{self.percentile(0.99, kind):.0f} ms"
            for kind, values in sorted(self.by_kind.items())
        )


class Budget:
    """A shared cap on the number of requests."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            self.left -= 1
            return self.left >= 0


class Kiosk:
    """One kiosk page: visits one after the other, its event queue, its cookie."""

    def __init__(
        self,
        spec: KioskSpec,
        setup: Setup,
        endpoint: Endpoint,
        source: str | None,
        stats: Stats,
        budget: Budget,
        *,
        think: float,
        faults: Faults,
        seed: int,
    ) -> None:
        self.spec, self.setup, self.endpoint, self.source = spec, setup, endpoint, source
        self.stats, self.budget, self.think, self.faults = stats, budget, think, faults
        self.rng = random.Random(seed)
        self.connection: HTTPConnection | None = None
        self.cookie: str | None = None
        self.queue: list[dict[str, str]] = []
        self.finished: set[str] = set()
        self.delay = 0.25

    # -- HTTP --------------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        *,
        drop_answer: bool = False,
    ) -> tuple[int, str] | None:
        kind = "api" if path.startswith("/api/") else path.rsplit("/", 1)[1]
        """One request on the kiosk's keep-alive connection: (status, body), or None when it
        failed (network error, or ``drop_answer``: the answer is lost on its way)."""
        if not self.budget.take():
            raise TimeoutError("request budget used up")
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = f"nudgelab_visit={self.cookie}"
        began = time.perf_counter()
        try:
            if self.connection is None:
                self.connection = self.endpoint.connect(self.source, 15)
            self.connection.request(method, path, body=body, headers=headers)
            if drop_answer and self.rng.random() < 0.5:  # cut off before the answer
                self._close()
                return None
            response = self.connection.getresponse()
            data = response.read().decode("utf-8", "replace")
            status = response.status
            self._cookie(response.headers.get_all("Set-Cookie") or [])
            if response.will_close:
                self._close()
        except (OSError, HTTPException):
            self._close()
            self.stats.add(time.perf_counter() - began, None, kind)
            return None
        self.stats.add(time.perf_counter() - began, status, kind)
        return None if drop_answer else (status, data)

    def _close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _cookie(self, lines: list[str]) -> None:
        for line in lines:
            jar: SimpleCookie = SimpleCookie()
            jar.load(line)
            if "nudgelab_visit" in jar:
                morsel = jar["nudgelab_visit"]
                expired = morsel["max-age"] == "0" or "1970" in morsel["expires"]
                self.cookie = None if expired or not morsel.value else morsel.value

    def _pause(self) -> None:
        if self.think:
            time.sleep(self.think * (0.5 + self.rng.random()))

    # -- a visit -----------------------------------------------------------------------------
    def start(self) -> str | None:
        """Tap a language: the new visit's id, or None when the start failed or was refused."""
        language = self.rng.choice(self.setup.languages)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        answer = self._send("POST", self.spec.path + "start", f"language={language}", form)
        if answer is None or answer[0] not in (302, 303):
            if answer is not None and answer[0] == 429:
                with self.stats.lock:
                    self.stats.refused_starts += 1
            return None
        page = self._send("GET", self.spec.path + "visit")
        if page is None or page[0] != 200:
            return None
        match = VISIT_ID.search(page[1])
        visit = match[1] if match else None
        if visit is None or visit in self.finished:  # refused: the last visit is shown again
            self.cookie = None
            with self.stats.lock:
                self.stats.refused_starts += 1
            return None
        with self.stats.lock:
            self.stats.started.add(visit)
        return visit

    def end(self, visit: str, deadline: float) -> bool:
        while time.monotonic() < deadline:
            answer = self._send(
                "POST",
                self.spec.path + "end",
                "reason=finish",
                {"Content-Type": "application/x-www-form-urlencoded"},
            )
            if answer is not None and answer[0] in (200, 302, 303):
                self.finished.add(visit)
                self.cookie = None
                return True
            time.sleep(0.2 + self.rng.random() * 0.3)
        return False

    def visit(self, deadline: float) -> None:
        visit = self.start()
        if visit is None:
            time.sleep(min(2.0, self.delay) * (0.5 + self.rng.random()))
            self.delay = min(self.delay * 2, 2.0)
            return
        self.delay = 0.25
        count = self.rng.randint(1, len(self.setup.outcomes))
        for kind in self.rng.sample(self.setup.outcomes, count):
            self._pause()
            self.enqueue(visit, kind)
            self.flush()
        self._pause()
        if self.end(visit, deadline + 10):
            with self.stats.lock:
                self.stats.visits += 1

    # -- the event queue (app/static/kiosk.js) -----------------------------------------------
    def enqueue(self, visit: str, kind: str) -> None:
        self.queue.append(
            {
                "visit_id": visit,
                "type": kind,
                "idempotency_key": secrets.token_hex(16),
                "language": self.setup.languages[0],
                "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            }
        )
        with self.stats.lock:
            self.stats.events_sent += 1

    def flush(self) -> bool:
        """Send the queue once, batch after batch; True when it is empty afterwards."""
        while self.queue:
            batch = self.queue[:50]
            lose = self.rng.random() < self.faults.lose
            body = json.dumps({"events": batch})
            headers = {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.spec.token}",
            }
            answer = self._send("POST", "/api/v1/events", body, headers, drop_answer=lose)
            if lose:
                with self.stats.lock:
                    self.stats.lost_answers += 1
                return False
            if answer is not None and answer[0] == 200 and self.rng.random() < self.faults.resend:
                with self.stats.lock:
                    self.stats.resent_batches += 1
                answer = self._send("POST", "/api/v1/events", body, headers) or answer
            if answer is None or not self.settle(answer, batch):
                return False
        return True

    def settle(self, answer: tuple[int, str], batch: list[dict[str, str]]) -> bool:
        status, data = answer
        try:
            body = json.loads(data)
        except ValueError:
            body = {}
        if status == 200:
            sent = {event["idempotency_key"]: event for event in batch}
            done = set()
            for result in body.get("results", []):
                key = result.get("idempotency_key")
                if key in sent and result.get("status") in ACKNOWLEDGED:
                    event = sent[key]
                    done.add(key)
                    with self.stats.lock:
                        self.stats.acknowledged[key] = (
                            event["visit_id"],
                            event["type"],
                            result["status"],
                        )
            self.queue = [event for event in self.queue if event["idempotency_key"] not in done]
            return bool(done)
        field_ = ((body.get("error") or {}).get("field")) or ""
        match = re.fullmatch(r"events\.(\d+)\..*", field_)
        if status == 400 and match and int(match[1]) < len(batch):
            refused = batch[int(match[1])]["idempotency_key"]
            self.queue = [event for event in self.queue if event["idempotency_key"] != refused]
            with self.stats.lock:
                self.stats.refused_events += 1
            return True
        return False  # 429, 5xx, anything else: keep and resend later

    def drain(self, deadline: float) -> None:
        delay = 0.25
        while self.queue and time.monotonic() < deadline:
            if not self.flush():
                time.sleep(delay * (0.5 + self.rng.random()))
                delay = min(delay * 2, 2.0)

    def run(self, deadline: float, drain_deadline: float) -> None:
        try:
            while time.monotonic() < deadline:
                self.visit(deadline)
                if self.queue:
                    self.flush()
            self.drain(drain_deadline)
        except TimeoutError:
            pass
        finally:
            self._close()
            with self.stats.lock:
                self.stats.unsent.extend(event["idempotency_key"] for event in self.queue)


def source_address(number: int) -> str:
    """A loopback address of its own for kiosk ``number`` (127.1.x.y)."""
    return f"127.1.{number // 250}.{number % 250 + 1}"


def run_kiosks(
    setup: Setup,
    endpoint: Endpoint,
    seconds: float,
    *,
    think: float = 0.0,
    faults: Faults | None = None,
    drain: float = 60.0,
    max_requests: int = 200_000,
    seed: int = 1,
) -> Stats:
    """Every kiosk of ``setup`` does visits for ``seconds``, then sends what it still holds."""
    stats, budget = Stats(), Budget(max_requests)
    began = time.monotonic()
    deadline, drain_deadline = began + seconds, began + seconds + drain
    kiosks = [
        Kiosk(
            spec,
            setup,
            endpoint,
            source_address(number),
            stats,
            budget,
            think=think,
            faults=faults or Faults(),
            seed=seed * 100_003 + number,
        )
        for number, spec in enumerate(setup.kiosks)
    ]
    threads = [
        threading.Thread(target=kiosk.run, args=(deadline, drain_deadline), daemon=True)
        for kiosk in kiosks
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, drain_deadline + 30 - time.monotonic()))
    stats.seconds = min(time.monotonic(), deadline) - began
    return stats


# -- the check -------------------------------------------------------------------------------


@dataclass
class Check:
    """What the database holds after a run, against what the kiosks were told."""

    visits: int = 0
    without_assignment: int = 0
    acknowledged: int = 0
    acknowledged_missing: int = 0
    stored_events: int = 0
    keys_stored_twice: int = 0
    events_stored_twice: int = 0
    stored_unacknowledged: int = 0
    stored_unacknowledged_unsent: int = 0
    visits_with_two_ends: int = 0
    finished_without_finish: int = 0
    block_problems: list[str] = field(default_factory=list)
    blocks: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.without_assignment
            or self.acknowledged_missing
            or self.keys_stored_twice
            or self.events_stored_twice
            or self.visits_with_two_ends
            or self.block_problems
            or self.stored_unacknowledged != self.stored_unacknowledged_unsent
        )

    def summary(self) -> str:
        return (
            f"visits {self.visits} ({self.without_assignment} without an assignment); "
            f"acknowledged {self.acknowledged}, of them missing {self.acknowledged_missing}; "
            f"stored outcome events {self.stored_events}, keys stored twice "
            f"{self.keys_stored_twice}, same event stored twice {self.events_stored_twice}; "
            f"stored but never acknowledged {self.stored_unacknowledged} (of them still queued "
            f"at the end {self.stored_unacknowledged_unsent}); visits with two ends "
            f"{self.visits_with_two_ends}; blocks {self.blocks}, unbalanced or with gaps "
            f"{len(self.block_problems)} {'; '.join(self.block_problems[:3])}"
        ).rstrip()


def check_blocks(rows: list[tuple[str, str]], weights: dict[str, int]) -> tuple[int, list[str]]:
    """Permuted blocks: per stratum every position taken once, no gaps, every complete block
    holding each arm as often as its weight says, an incomplete one never more."""
    problems: list[str] = []
    strata: dict[str, dict[int, str]] = {}
    size = 0
    for arm, inputs in rows:
        data = json.loads(inputs)
        size = int(data["block_size"])
        index = int(data["block"]) * size + int(data["position"])
        positions = strata.setdefault(data["stratum"], {})
        if index in positions:
            problems.append(f"{data['stratum']}: position {index} assigned twice")
        positions[index] = arm
    blocks = 0
    total = sum(weights.values())
    for stratum, positions in strata.items():
        if sorted(positions) != list(range(len(positions))):
            problems.append(f"{stratum}: positions have gaps")
        for start in range(0, len(positions), size):
            arms = Counter(
                positions.get(i) for i in range(start, min(start + size, len(positions)))
            )
            complete = start + size <= len(positions)
            blocks += 1
            for arm, weight in weights.items():
                quota = weight * size // total
                if (arms[arm] != quota) if complete else (arms[arm] > quota):
                    problems.append(f"{stratum} block {start // size}: {arm} {arms[arm]}x")
    return blocks, problems


def check_database(url: str, setup: Setup, stats: Stats) -> Check:
    """Compare the database with what the kiosks were told (see :class:`Check`)."""
    from experiments import store

    weights = store.parse_trial(TRIAL.read_text(encoding="utf-8")).weights
    engine = create_engine(url)
    check = Check()
    parameters = {"trial": setup.trial_id, "types": setup.outcomes}
    try:
        with engine.connect() as conn:
            check.visits = conn.execute(
                text("SELECT count(*) FROM visits WHERE trial_id = :trial"), parameters
            ).scalar_one()
            check.without_assignment = conn.execute(
                text(
                    "SELECT count(*) FROM visits v LEFT JOIN assignments a ON a.visit_id = v.id "
                    "WHERE v.trial_id = :trial AND a.visit_id IS NULL"
                ),
                parameters,
            ).scalar_one()
            stored = conn.execute(
                text(
                    "SELECT idempotency_key, visit_id, type FROM events "
                    "WHERE trial_id = :trial AND type = ANY(:types)"
                ),
                parameters,
            ).all()
            check.keys_stored_twice = conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT idempotency_key FROM events "
                    "GROUP BY idempotency_key HAVING count(*) > 1) AS twice"
                )
            ).scalar_one()
            check.visits_with_two_ends = conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT visit_id FROM events WHERE type IN "
                    "('finish', 'timeout') GROUP BY visit_id HAVING count(*) > 1) AS ends"
                )
            ).scalar_one()
            rows = conn.execute(
                text("SELECT arm, inputs FROM assignments WHERE trial_id = :trial"), parameters
            ).all()
    finally:
        engine.dispose()
    keys = Counter(row.idempotency_key for row in stored)
    described = Counter((row.visit_id, row.type) for row in stored)
    acknowledged = {
        key for key, (_, _, status) in stats.acknowledged.items() if status != "discarded"
    }
    check.acknowledged = len(stats.acknowledged)
    check.stored_events = len(stored)
    check.acknowledged_missing = sum(1 for key in acknowledged if keys[key] != 1)
    check.events_stored_twice = sum(1 for count in described.values() if count > 1)
    unacknowledged = set(keys) - set(stats.acknowledged)
    check.stored_unacknowledged = len(unacknowledged)
    check.stored_unacknowledged_unsent = len(unacknowledged & set(stats.unsent))
    check.blocks, check.block_problems = check_blocks([tuple(row) for row in rows], weights)
    return check


# -- the bare endpoint -----------------------------------------------------------------------


def run_bare(
    endpoint: Endpoint, clients: int, seconds: float, max_requests: int = 200_000
) -> Stats:
    """``clients`` clients posting one event each request to the bare endpoint, back to back."""
    stats, budget = Stats(), Budget(max_requests)
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        connection: HTTPConnection | None = None
        while time.monotonic() < deadline and budget.take():
            event = {
                "visit_id": str(uuid.uuid4()),
                "type": "contact_requested",
                "idempotency_key": secrets.token_hex(16),
                "language": "en",
                "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            }
            began = time.perf_counter()
            status = None
            try:
                if connection is None:
                    connection = endpoint.connect(source_address(number), 15)
                connection.request(
                    "POST",
                    "/api/v1/events",
                    json.dumps({"events": [event]}),
                    {"Content-Type": "application/json", "Authorization": "Bearer bare"},
                )
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, HTTPException):
                if connection is not None:
                    connection.close()
                connection = None
            stats.add(time.perf_counter() - began, status)
        if connection is not None:
            connection.close()

    began = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    stats.seconds = time.monotonic() - began
    return stats


# -- the command -----------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds used by a server's processes (the gunicorn arbiter and its workers) and by
    the PostgreSQL backends of its database, from Linux's ``/proc`` (the steadier figure on a
    shared machine: other load slows a request, but hardly changes the CPU it needs)."""

    def __init__(self, server_pid: int, url: str) -> None:
        self.server_pid, self.database = server_pid, make_url(url).database
        self.admin = create_engine(url)
        self.start: list[dict[int, float]] = []

    def _backends(self) -> list[int]:
        with self.admin.connect() as conn:
            query = text("SELECT pid FROM pg_stat_activity WHERE datname = :db")
            return list(conn.execute(query, {"db": self.database}).scalars())

    def _now(self) -> list[dict[int, float]]:
        family = ingest._family(self.server_pid)
        return [ingest.cpu_seconds(family), ingest.cpu_seconds(self._backends())]

    def __enter__(self) -> CpuMeter:
        self.start = self._now()
        return self

    def __exit__(self, *_exc: object) -> None:
        end = self._now()
        self.used = [
            sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
            for before, after in zip(self.start, end, strict=True)
        ]
        self.admin.dispose()

    def per_request(self, requests: int) -> str:
        app, db = (seconds / max(1, requests) * 1e3 for seconds in self.used)
        return f"CPU {app:.2f} ms app + {db:.2f} ms PostgreSQL per request"


def describe(stats: Stats, cpu: CpuMeter | None = None) -> str:
    rate = stats.requests / stats.seconds if stats.seconds else 0.0
    failed = stats.network_errors + sum(n for status, n in stats.statuses.items() if status >= 500)
    return (
        f"{rate:7.1f} req/s  p50 {stats.percentile(0.50):6.1f}  p95 "
        f"{stats.percentile(0.95):6.1f}  p99 {stats.percentile(0.99):6.1f} ms  "
        f"({stats.requests} requests, {failed} 5xx or network errors"
        + (f"; {cpu.per_request(stats.requests)})" if cpu else ")")
    )


@contextmanager
def endpoint_for(through: str, port: int, workdir: Path, stack: ExitStack) -> Iterator[Endpoint]:
    if through == "direct":
        yield Endpoint.direct(port)
        return
    with frontserver.front_server(port, workdir, relaxed=True) as front:
        yield Endpoint.through(front)


def run_one(through: str, args: argparse.Namespace, workdir: Path) -> bool:
    with ExitStack() as stack:
        url = stack.enter_context(scratch_database(args.postgres_url))
        setup = prepare(url, args.kiosks)
        server = stack.enter_context(
            kiosk_server(
                url,
                workdir / "server.log",
                behind_proxy=through == "nginx",
                workers=args.workers,
                settings=BENCH_SETTINGS,
            )
        )
        endpoint = stack.enter_context(endpoint_for(through, server.port, workdir, stack))
        load_before = os.getloadavg()
        with CpuMeter(server.pid, url) as cpu:
            stats = run_kiosks(
                setup,
                endpoint,
                args.duration,
                think=args.think,
                faults=Faults(args.lose, args.resend),
                drain=args.drain,
                max_requests=args.max_requests,
            )
        load_after = os.getloadavg()
        check = check_database(url, setup, stats)
        print(
            f"\n== nudgelab, {through}: {args.kiosks} kiosks, {stats.seconds:.0f} s, load "
            f"average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
        )
        print(
            f"visits {stats.visits} ({stats.visits / stats.seconds:.1f}/s), outcome events "
            f"acknowledged {len(stats.acknowledged)} "
            f"({len(stats.acknowledged) / stats.seconds:.1f}/s), "
            f"refused starts {stats.refused_starts}, lost answers {stats.lost_answers}, "
            f"batches sent twice {stats.resent_batches}, events refused {stats.refused_events}"
        )
        print(f"requests {describe(stats, cpu)}")
        print(f"statuses {dict(sorted(stats.statuses.items()))}")
        print(f"by request: {stats.kinds()}")
        print(f"database: {check.summary()}")
        print(
            "CHECK "
            + ("ok: acknowledged = stored, 0 duplicated, blocks balanced" if check.ok else "FAILED")
        )
        if args.bare:
            bare_url = stack.enter_context(ingest.database("postgresql", workdir, "bare", url))
            ingest.prepare_bare(bare_url)
            port, bare_pid = stack.enter_context(
                ingest.server("bare", bare_url, args.workers, 4, workdir / "bare.log")
            )
            bare_endpoint = stack.enter_context(endpoint_for(through, port, workdir, stack))
            with CpuMeter(bare_pid, url) as bare_cpu:
                bare = run_bare(bare_endpoint, args.kiosks, args.duration, args.max_requests)
            print(
                f"bare Flask + one INSERT, {through}, {args.kiosks} clients: "
                f"{describe(bare, bare_cpu)}"
            )
            ours = stats.requests / stats.seconds
            theirs = bare.requests / bare.seconds
            cpu_ratio = (sum(cpu.used) / max(1, stats.requests)) / (
                sum(bare_cpu.used) / max(1, bare.requests)
            )
            print(
                f"ratio nudgelab/bare: requests/s {ours / theirs:.2f}, p50 "
                f"{stats.percentile(0.5) / bare.percentile(0.5):.2f}, p99 "
                f"{stats.percentile(0.99) / bare.percentile(0.99):.2f}, CPU per request "
                f"{cpu_ratio:.2f}"
            )
        return check.ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kiosks", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of visits per run")
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to send the rest")
    parser.add_argument(
        "--through", default=None, help="direct,nginx (default: both when nginx is installed)"
    )
    parser.add_argument("--think", type=float, default=0.0, help="seconds between taps")
    parser.add_argument("--lose", type=float, default=0.0)
    parser.add_argument("--resend", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--no-bare", dest="bare", action="store_false")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    args = parser.parse_args()
    if args.kiosks > 2000 or args.duration > 600:
        parser.error("at most 2000 kiosks and 600 seconds")
    through = args.through or ("direct,nginx" if frontserver.nginx_binary() else "direct")
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; nudgelab serve with "
        f"{args.workers} gunicorn workers x 4 threads on PostgreSQL; think {args.think:g} s"
    )
    ok = True
    with tempfile.TemporaryDirectory(prefix="nudgelab-load-") as tmp:
        for name in through.split(","):
            ok &= run_one(name, args, Path(tmp))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
