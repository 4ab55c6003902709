"""Pictures and narrations on kiosk and register pages, served by the app from the stored
version (issue #13), on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from app.db import get_engine
from experiments.check import check_path
from experiments.eventlog import events
from experiments.model import Trial
from tests.app.visitor import Visitor, add_kiosk, run_trial
from tests.factories import SETTINGS

TRIALS = Path("experiments/trials")


def _loaded(app: Flask, name: str, *, start: bool = True) -> Trial:
    """A trial file loaded as ``nudgelab trial load`` does: its text with its media archive."""
    result = check_path(TRIALS / f"{name}.yaml", settings=SETTINGS)
    assert result.ok
    return run_trial(app, result.source, start=start)


def _visit_arm(app: Flask, path: str, language: str, arm: str) -> Visitor:
    """A visitor whose visit was assigned ``arm`` (visitors start until one is)."""
    for _ in range(200):
        visitor = Visitor(app, path)
        visitor.arrives()
        visitor.starts_in(language)
        if visitor.arm_of() == arm:
            return visitor
    raise AssertionError(f"no visit assigned {arm}")


def _media(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*/media/[0-9a-f]{64})"', page)


def test_a_kiosk_shows_the_pictures_with_alt_text_and_serves_their_bytes(app: Flask) -> None:
    trial = _loaded(app, "organ-donation-2013")
    path = add_kiosk(app, trial, "gov-uk-online")
    visitor = _visit_arm(app, path, "en", "norm_photo")
    image = trial.arm("norm_photo").images[0]
    page = visitor.text
    tag = re.search(r'<img src="([^"]+)" alt="([^"]+)"', page)
    assert tag and tag[1] == f"{path}media/{image.sha256}"
    assert html.unescape(tag[2]) == image.alt["en"]
    served = visitor.client.get(tag[1])
    on_disk = (TRIALS / image.file).read_bytes()
    assert served.status_code == 200 and served.data == on_disk
    assert served.mimetype == "image/png"
    assert "immutable" in served.headers["Cache-Control"]
    assert "data:" not in page.split('<aside class="disclosure"')[0].split("<main")[1]
    # The logo is an SVG: served with a policy that lets it run and load nothing.
    logo = trial.arm("norm_logo").images[0]
    svg = visitor.client.get(f"{path}media/{logo.sha256}")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert "sandbox" in svg.headers["Content-Security-Policy"]
    assert visitor.client.get(f"{path}media/{'0' * 64}").status_code == 404


def test_a_narration_plays_only_on_a_tap_with_its_transcript_one_tap_away(app: Flask) -> None:
    trial = _loaded(app, "tearoom-return-info")
    path = add_kiosk(app, trial, "azc-budel")
    visitor = _visit_arm(app, path, "en", "gain")
    narration = trial.arm("gain").audio["en"]
    page = visitor.text
    audio = re.search(r"<audio [^>]*>", page)
    assert audio, "no audio player on the page"
    assert "controls" in audio[0] and 'preload="none"' in audio[0]
    assert "autoplay" not in page
    assert f'src="{path}media/{narration.sha256}"' in audio[0]
    assert 'data-event="played_audio"' in audio[0]
    assert visitor.sees("A computer voice reads this page.")
    transcript = re.search(r'<details class="transcript">(.*?)</details>', page, re.S)
    assert transcript and trial.arm("gain").material["en"].title in transcript[1]
    # The file comes with ranges, as audio players ask for them.
    whole = (TRIALS / narration.file).read_bytes()
    part = visitor.client.get(f"{path}media/{narration.sha256}", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.data == whole[:100]
    assert part.headers["Content-Range"] == f"bytes 0-99/{len(whole)}"
    # The exposure's material version is the one that covers the narration's bytes.
    with get_engine(app).connect() as conn:
        recorded = conn.execute(
            select(events.c.material_version).where(
                events.c.visit_id == visitor.visit_id, events.c.type == "exposure"
            )
        ).scalar_one()
    assert recorded == trial.material_version("gain", "en")
    # The register inside the kiosk frame takes the files from the kiosk's own path.
    inside = visitor.client.get(f"{path}register").get_data(as_text=True)
    assert set(_media(inside)) == {f"{path}media/{arm.audio['en'].sha256}" for arm in trial.arms}
    # A Dutch visit has no Dutch narration, so no player.
    dutch = _visit_arm(app, path, "nl", "gain")
    assert "<audio" not in dutch.text


def test_played_audio_is_stored_once_per_play_key(app: Flask) -> None:
    trial = _loaded(app, "tearoom-return-info")
    visitor = _visit_arm(app, add_kiosk(app, trial, "azc-budel"), "en", "control")
    first, second = "a" * 32, "b" * 32
    for key in (first, first, second):  # a retried play is stored once; a second play again
        assert visitor.taps("played_audio", key).status_code == 200
    assert visitor.logged().count("played_audio") == 2


def test_the_register_shows_thumbnails_and_links_the_narrations(app: Flask) -> None:
    organ = _loaded(app, "organ-donation-2013")
    tearoom = _loaded(app, "tearoom-return-info")
    client = app.test_client()
    page = client.get(f"/register/{organ.id}").get_data(as_text=True)
    for arm in ("norm_photo", "norm_logo"):
        image = organ.arm(arm).images[0]
        url = f"/register/{organ.id}/media/{image.sha256}"
        shown = re.search(rf'<img src="{url}" alt="([^"]+)"', page)
        assert shown and html.unescape(shown[1]) == image.alt["en"]
        served = client.get(url)
        assert served.status_code == 200
        assert hashlib.sha256(served.data).hexdigest() == image.sha256
    page = client.get(f"/register/{tearoom.id}").get_data(as_text=True)
    linked = set(_media(page))
    expected = {f"/register/{tearoom.id}/media/{arm.audio['en'].sha256}" for arm in tearoom.arms}
    assert linked == expected
    assert page.count("A computer voice reads this page.") == len(tearoom.arms)


@pytest.mark.parametrize("start", [False])
def test_a_trial_not_on_the_register_serves_no_media(app: Flask, start: bool) -> None:
    trial = _loaded(app, "organ-donation-2013", start=start)
    digest = trial.arm("norm_photo").images[0].sha256
    assert app.test_client().get(f"/register/{trial.id}/media/{digest}").status_code == 404
