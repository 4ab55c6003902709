"""Shared fixtures: trials, and event-log databases on SQLite and on PostgreSQL.

PostgreSQL tests use the server at ``NUDGELAB_TEST_POSTGRES_URL`` (default: the local server's
``test`` database). Each test gets its own schema there, so parallel runs never collide. When the
server is unreachable the tests are skipped on a developer machine and **fail** when ``CI=true``.
"""

from __future__ import annotations

import os

# One BLAS thread: the suite fits thousands of small models, which a multi-threaded OpenBLAS on a
# busy 2-core machine makes many times slower. Set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text

from experiments.eventlog import make_engine, upgrade
from tests.factories import make_trial

POSTGRES_URL = os.environ.get(
    "NUDGELAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# Property tests judge correctness, not speed: a busy shared machine must not fail them.
settings.register_profile(
    "nudgelab", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("nudgelab")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: The session's one Chromium and axe-core, shared by the kiosk's and the console's browser tests.
pytest_plugins = ["tests.browser.chromium"]


def _postgres_available() -> str | None:
    """Return why PostgreSQL cannot be used, or None when it can."""
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # any driver or network failure means "not available"
        return f"PostgreSQL at {POSTGRES_URL} is unreachable: {error.__class__.__name__}: {error}"
    return None


@pytest.fixture(scope="session")
def postgres_server() -> str:
    reason = _postgres_available()
    if reason:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run, not skip)")
        pytest.skip(reason)
    return POSTGRES_URL


def _schema_url(base_url: str, schema: str) -> str:
    separator = "&" if "?" in base_url else "?"
    return f"{base_url}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose connections live in a fresh, empty schema of the test database."""
    schema = f"nudgelab_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _schema_url(postgres_server, schema)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """An empty, migrated event-log database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'nudgelab.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def trial():  # type: ignore[no-untyped-def]
    return make_trial()
