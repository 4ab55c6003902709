"""Fixtures of the fault tests: a scratch database in the PostgreSQL server, nginx, kiosks.

Each test gets its own database (``CREATE DATABASE``, dropped afterwards), so that ending its
connections (the stand-in for a PostgreSQL restart, see ``docs/deploy.md``) never disturbs
anyone else's. nginx is Debian's (``make frontserver``); without it these tests skip on a
developer machine and **fail** when ``CI=true``, like the PostgreSQL tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import frontserver
from bench.load import scratch_database
from tests.conftest import IN_CI


@pytest.fixture
def scratch_url(postgres_server: str) -> Iterator[str]:
    """A new, empty database in the PostgreSQL server (dropped afterwards)."""
    with scratch_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def nginx() -> str:
    binary = frontserver.nginx_binary()
    if binary is None:
        reason = "nginx is not installed (make frontserver installs Debian's nginx)"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: the front-server tests must run, not skip)")
        pytest.skip(reason)
    return binary
