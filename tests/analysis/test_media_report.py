"""A changed picture after the lock is a deviation, and the report shows the locked picture
(issue #13), on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import yaml
from PIL import Image

from analysis import analyze
from analysis.report import render_html, render_markdown
from analysis.simulate import Settings, parse_rates, simulate
from experiments import store
from experiments.check import check_path
from experiments.eventlog import make_engine
from tests.factories import SETTINGS, trial_dict

ALT = {"en": "A blue square", "ar": "مربع أزرق"}


def _png(pixel: tuple[int, int, int] | None = None) -> bytes:
    picture = Image.new("RGB", (24, 16), (31, 95, 139))
    if pixel is not None:
        picture.putpixel((3, 4), pixel)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def _version(folder: Path, picture: bytes) -> str:
    """The trial file with ``picture`` on arm 'gain', checked: the text ``trial load`` stores."""
    (folder / "media").mkdir(exist_ok=True)
    (folder / "media" / "square.png").write_bytes(picture)
    data = trial_dict()
    data["arms"][1]["images"] = [
        {
            "file": "media/square.png",
            "sha256": hashlib.sha256(picture).hexdigest(),
            "kind": "pictogram",
            "alt": ALT,
        }
    ]
    path = folder / "test-trial.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    result = check_path(path, settings=SETTINGS)
    assert result.ok, [str(p) for p in result.errors]
    return result.source


def test_one_changed_pixel_after_the_lock_is_a_deviation_and_the_locked_picture_is_shown(
    db_url: str, tmp_path: Path
) -> None:
    locked_png, changed_png = _png(), _png(pixel=(255, 255, 255))
    assert locked_png != changed_png
    first, second = _version(tmp_path, locked_png), _version(tmp_path, changed_png)
    trial_one = store.parse_trial(first)
    trial_two = store.parse_trial(second)
    assert trial_one.material_version("gain", "en") != trial_two.material_version("gain", "en")
    engine = make_engine(db_url)
    rates = "control=0.05,gain=0.12,norm=0.08"
    simulate(engine, trial_one, parse_rates(trial_one, rates), Settings(visits=120, seed=3),
             source=first)  # fmt: skip
    with engine.begin() as conn:
        record = store.require_trial(conn, trial_one.id)
        assert record.locked_version == store.source_version(first)
        store.load_trial(conn, trial_two, second)
    simulate(engine, trial_two, parse_rates(trial_two, rates), Settings(visits=60, seed=4))
    report = analyze(trial_two, engine, record_look=False)
    engine.dispose()

    t = report.transparency
    locked_sha = hashlib.sha256(locked_png).hexdigest()
    changed_sha = hashlib.sha256(changed_png).hexdigest()
    media = [d for d in t.deviations if d.kind == "media changed"]
    assert [(d.what, d.planned, d.actual) for d in media] == [
        ("gain: media/square.png", f"sha256 {locked_sha}", f"sha256 {changed_sha}")
    ]
    assert any(d.kind == "data under a changed version" for d in t.deviations)
    # The arm as pre-registered shows the locked picture; the later version shows its own.
    [gain] = [arm for arm in t.arms if arm.id == "gain"]
    assert [(m.file, m.sha256) for m in gain.media] == [("media/square.png", locked_sha)]
    stored = {m.sha256: base64.b64decode(m.data) for m in t.media}
    assert stored == {locked_sha: locked_png, changed_sha: changed_png}

    page = render_html(report)
    locked_uri = "data:image/png;base64," + base64.b64encode(locked_png).decode()
    changed_uri = "data:image/png;base64," + base64.b64encode(changed_png).decode()
    arms_part, later_part = page.split('id="later-versions"')
    assert f'<img src="{locked_uri}" alt="A blue square / مربع أزرق">' in arms_part
    assert changed_uri not in arms_part and changed_uri in later_part
    markdown = render_markdown(report)
    assert (
        f"SHA-256 {locked_sha}" in markdown
        and "| media changed | gain: media/square.png" in markdown
    )


def test_a_report_of_a_text_only_trial_has_no_media(db_url: str) -> None:
    data = trial_dict()
    source = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    trial = store.parse_trial(source)
    engine = make_engine(db_url)
    simulate(engine, trial, parse_rates(trial, "control=0.1"), Settings(visits=30, seed=1),
             source=source)  # fmt: skip
    report = analyze(trial, engine, record_look=False)
    engine.dispose()
    assert report.transparency.media == ()
    assert all(arm.media == () for arm in report.transparency.arms)
    assert '<figure class="picture"' not in render_html(report)
