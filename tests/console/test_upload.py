"""Loading a trial whose file names pictures and narrations: a zip of its folder."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from flask import Flask

from app.db import get_engine
from experiments import store
from tests.console.helpers import Console

TRIALS = Path("experiments/trials")
EXAMPLE = "tearoom-return-info"


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _example_folder(prefix: str = "") -> dict[str, bytes]:
    members = {f"{prefix}{EXAMPLE}.yaml": (TRIALS / f"{EXAMPLE}.yaml").read_bytes()}
    for path in sorted((TRIALS / EXAMPLE).rglob("*")):
        if path.is_file():
            members[f"{prefix}{path.relative_to(TRIALS).as_posix()}"] = path.read_bytes()
    return members


def _upload(console: Console, data: bytes, name: str = "trial.zip") -> tuple[int, str]:
    """Upload; the status and page (the response is closed: a large body is a temporary file
    the test client keeps open until then)."""
    console.get("/console/load")
    response = console.post(
        "/console/load", {"file": (io.BytesIO(data), name)}, content_type="multipart/form-data"
    )
    try:
        return response.status_code, response.get_data(as_text=True)
    finally:
        response.close()
        response.request.environ["wsgi.input"].close()


def test_a_trial_with_media_loads_from_a_zip_of_its_folder(
    console_app: Flask, owner: Console
) -> None:
    alone = owner.load((TRIALS / f"{EXAMPLE}.yaml").read_text(encoding="utf-8"), upload=True)
    assert alone.status_code == 422 and "not found" in alone.get_data(as_text=True)
    data = _zip(_example_folder("my-folder/"))
    assert len(data) > 65536  # larger than the app's usual request limit
    status, page = _upload(owner, data)
    assert status == 302, page[-2000:]
    with get_engine(console_app).connect() as conn:
        record = store.require_trial(conn, EXAMPLE)
        source = store.version_source(conn, EXAMPLE, record.current_version)
    assert record.status == "draft" and source is not None
    assert store.source_version(source) == record.current_version


def test_bad_zips_are_refused_with_a_reason(console_app: Flask, owner: Console) -> None:
    cases = {
        b"not a zip": "not a zip archive",
        _zip({"a.yaml": b"id: a\n", "b.yaml": b"id: b\n"}): "exactly one trial file",
        _zip({"../evil.yaml": b"id: x\n"}): "outside its folder",
    }
    for data, message in cases.items():
        status, page = _upload(owner, data)
        assert status == 422, message
        assert message in page, message
    with get_engine(console_app).connect() as conn:
        assert store.list_trials(conn) == []
