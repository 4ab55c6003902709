"""The backup and restore of docs/deploy.md, run for real: ``deploy/backup.sh`` dumps a scratch
database with events in it, ``deploy/restore.sh`` restores the dump into another empty one, and
the two are compared table by table; the kiosk app then works on the restored copy."""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from app import create_app
from app.db import dispose
from bench.load import TRIAL, prepare, scratch_database
from experiments import store
from experiments.eventlog import make_engine, metadata

pytestmark = [pytest.mark.fault, pytest.mark.postgres]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def libpq(url: str) -> str:
    """The SQLAlchemy URL as pg_dump and pg_restore take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def fill(url: str) -> None:
    """30 visits with their assignments and outcome events."""
    trial = store.parse_trial(TRIAL.read_text(encoding="utf-8"))
    engine = make_engine(url)
    with engine.begin() as conn:
        kiosk = conn.execute(text("SELECT id, location FROM kiosks LIMIT 1")).one()
        specs = [store.VisitSpec(kiosk.location, "nl", kiosk.id)] * 30
        started = store.start_visits(conn, trial, specs, rng=random.Random(7))
        events = [
            store.EventSpec(visit.id, "contact_requested", secrets.token_hex(16), "nl")
            for visit in started[::2]
        ]
        store.record_events(conn, trial, events)
    engine.dispose()


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of every event-log table (and the schema version), in a fixed order."""
    engine = create_engine(url)
    tables = [table.name for table in metadata.sorted_tables] + ["alembic_version"]
    with engine.connect() as conn:
        rows = {
            name: [tuple(row) for row in conn.execute(text(f"SELECT * FROM {name} ORDER BY 1"))]
            for name in tables
        }
    engine.dispose()
    return rows


def test_backup_and_restore_into_an_empty_database(
    scratch_url: str, postgres_server: str, tmp_path: Path
) -> None:
    setup = prepare(scratch_url, 2)
    fill(scratch_url)
    folder = tmp_path / "backups"
    folder.mkdir()
    old = folder / "nudgelab-20200101T000000Z.dump"
    old.write_bytes(b"an old dump")
    month_ago = time.time() - 30 * 86400
    os.utime(old, (month_ago, month_ago))
    environ = {
        **os.environ,
        "NUDGELAB_BACKUP_DATABASE": libpq(scratch_url),
        "NUDGELAB_BACKUP_DIR": str(folder),
        "NUDGELAB_BACKUP_KEEP_DAYS": "14",
    }
    subprocess.run([DEPLOY / "backup.sh"], env=environ, check=True, capture_output=True)
    dumps = sorted(folder.iterdir())
    assert len(dumps) == 1 and dumps[0].name.startswith("nudgelab-"), dumps  # old one removed
    assert dumps[0].stat().st_mode & 0o077 == 0  # readable by its owner only
    original = snapshot(scratch_url)
    assert len(original["visits"]) == 30 and len(original["events"]) == 15

    with scratch_database(postgres_server) as restored:
        subprocess.run(
            [DEPLOY / "restore.sh", dumps[0], libpq(restored)], check=True, capture_output=True
        )
        assert snapshot(restored) == original
        again = subprocess.run(
            [DEPLOY / "restore.sh", dumps[0], libpq(restored)], capture_output=True
        )
        assert again.returncode != 0  # never over a database that has tables
        assert snapshot(restored) == original
        app = create_app({"DATABASE_URL": restored, "SECRET_KEY": secrets.token_hex(32)})
        try:
            client = app.test_client()
            assert client.get("/api/v1/health").status_code == 200
            assert client.get(setup.kiosks[0].path).status_code == 200
        finally:
            dispose(app)
