"""Media in a trial file: ``check`` reads the bytes, refuses each problem with its line, and a
loaded version keeps exactly the bytes it pinned (issue #13)."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from experiments.check import CheckResult, check_path, check_text
from experiments.load import load_text
from experiments.media import (
    StoredFile,
    sniff,
    stored_media,
    svg_problem,
    trial_text,
    with_media,
)
from experiments.store import source_version
from tests.factories import SETTINGS, trial_dict

ALT = {"en": "Seven people side by side", "ar": "سبعة أشخاص جنبًا إلى جنب"}
#: A narration file: an Ogg page header (check reads the type from the first bytes only).
OGG = b"OggS\x00\x02" + bytes(200)
PLAYED = {"id": "played", "event": "played_audio", "description": "Played the narration."}
CONSENT = {
    "who": "A. Counsellor",
    "given": "2026-11-01",
    "trial": "test-trial",
    "until": "2027-12-31",
    "form_reference": "IOM-NL consent archive, form 2026-117",
}
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
    b'<rect width="10" height="10" fill="#1f5f8b"/></svg>'
)


def png(width: int = 40, height: int = 30, colour: tuple[int, int, int] = (31, 95, 139)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (200, 10, 10)).save(buffer, "JPEG")
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image(file: str, data: bytes | None, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"file": file, "kind": "pictogram", "alt": dict(ALT)}
    if data is not None:
        entry["sha256"] = sha(data)
    return {**entry, **extra}


def write(tmp_path: Path, data: dict[str, Any], files: dict[str, bytes]) -> Path:
    """The trial file ``test-trial.yaml`` in ``tmp_path`` with its media files beside it."""
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    path = tmp_path / "test-trial.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def with_images(*images: dict[str, Any], arm: int = 1, **overrides: Any) -> dict[str, Any]:
    data = trial_dict(**overrides)
    data["arms"][arm]["images"] = list(images)
    return data


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line containing ``needle`` (found independently)."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


def only(result: CheckResult, rule: str) -> list[str]:
    return [str(p) for p in result.problems if p.rule == rule]


class Checked:
    """What ``check`` says about media: the problems of the media rules and of the schema
    (the base trial's other rules are tested elsewhere and may warn about other things)."""

    def __init__(self, result: CheckResult) -> None:
        self.result = result
        self.problems = [
            p for p in result.problems if p.rule.startswith("media") or p.rule == "schema"
        ]
        self.errors = [p for p in self.problems if p.severity == "error"]
        self.source = result.source
        self.trial = result.trial
        self.ok = result.ok


def check(path: Path, **settings: Any) -> Checked:
    return Checked(check_path(path, settings=replace(SETTINGS, **settings)))


# -- a trial with media that passes ----------------------------------------------------------


def test_a_trial_with_a_picture_and_a_narration_passes_and_stores_their_bytes(
    tmp_path: Path,
) -> None:
    picture = png()
    data = with_images(image("media/people.png", picture))
    data["arms"][1]["audio"] = {
        "en": {"file": "media/gain-en.ogg", "sha256": sha(OGG), "voice": "synthetic"}
    }
    data["outcomes"].append(PLAYED)
    path = write(tmp_path, data, {"media/people.png": picture, "media/gain-en.ogg": OGG})
    result = check(path)
    assert result.problems == [], [str(p) for p in result.problems]
    text = path.read_text(encoding="utf-8")
    # The text to store is the file's text, then the archive of exactly the pinned bytes.
    assert result.source.startswith(text) and len(result.source) > len(text)
    assert trial_text(result.source) == text
    kept = stored_media(result.source)
    assert {digest: f.data for digest, f in kept.items()} == {sha(picture): picture, sha(OGG): OGG}
    assert kept[sha(picture)].media_type == "image/png"
    assert kept[sha(OGG)].media_type == "audio/ogg"
    # The stored text checks on its own (no folder), and parses to the same trial.
    again = Checked(check_text(result.source, "<stored>", settings=SETTINGS))
    assert again.problems == [] and again.trial == result.trial
    assert load_text(result.source).trial == result.trial
    # Loading the same file twice gives the same stored text, so the same version.
    assert check(path).source == result.source


def test_without_media_the_stored_text_is_the_file_itself(tmp_path: Path) -> None:
    path = write(tmp_path, trial_dict(), {})
    assert check(path).source == path.read_text(encoding="utf-8")


# -- what check refuses, each with its line ------------------------------------------------------


def test_a_missing_file_is_refused_on_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, with_images(image("media/gone.png", png())), {})
    result = check(path)
    [problem] = [p for p in result.errors if p.rule == "media-files"]
    assert problem.line == line_of(path, "file: media/gone.png")
    assert "image 'media/gone.png' not found" in problem.message
    assert not result.ok


def test_bytes_that_are_not_the_named_type_are_refused(tmp_path: Path) -> None:
    jpg = jpeg()
    path = write(tmp_path, with_images(image("media/photo.png", jpg)), {"media/photo.png": jpg})
    [problem] = [p for p in check(path).errors if p.rule == "media-files"]
    assert problem.line == line_of(path, "file: media/photo.png")
    assert "its name says PNG but its bytes are JPEG" in problem.message


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (b"GIF89a" + bytes(40), "an unknown type"),
        (OGG, "Ogg"),
        (b"<html><body></body></html>", "an unknown type"),
    ],
)
def test_bytes_of_a_type_that_is_not_allowed_are_refused(
    tmp_path: Path, content: bytes, found: str
) -> None:
    path = write(tmp_path, with_images(image("media/x.png", content)), {"media/x.png": content})
    [problem] = [p for p in check(path).errors if p.rule == "media-files"]
    assert problem.line == line_of(path, "file: media/x.png")
    assert f"its bytes are {found}, not an allowed image type" in problem.message


def test_a_picture_as_narration_is_refused(tmp_path: Path) -> None:
    picture = png()
    data = trial_dict()
    data["arms"][1]["audio"] = {
        "en": {"file": "a.ogg", "sha256": sha(picture), "voice": "synthetic"}
    }
    data["outcomes"].append(PLAYED)
    path = write(tmp_path, data, {"a.ogg": picture})
    [problem] = [p for p in check(path).errors if p.rule == "media-files"]
    assert "its bytes are PNG, not an allowed audio type (MP3, Ogg, WebM)" in problem.message
    assert problem.line == line_of(path, "file: a.ogg")


def test_an_image_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    picture = png(400, 300, (10, 20, 30))
    path = write(tmp_path, with_images(image("big.png", picture)), {"big.png": picture})
    assert check(path, max_image_bytes=len(picture)).problems == []
    [problem] = check(path, max_image_bytes=len(picture) - 1).errors
    assert problem.rule == "media-files" and problem.line == line_of(path, "file: big.png")
    assert f"is {len(picture):,} bytes, over the limit of {len(picture) - 1:,}" in problem.message


def test_an_image_with_too_many_pixels_is_refused(tmp_path: Path) -> None:
    picture = png(300, 20)
    path = write(tmp_path, with_images(image("wide.png", picture)), {"wide.png": picture})
    [problem] = check(path, max_image_pixels=299).errors
    assert "is 300x20 pixels; its longest side may be at most 299" in problem.message


def test_a_missing_alt_text_in_one_language_is_refused_on_its_line(tmp_path: Path) -> None:
    picture = png()
    entry = image("p.png", picture, alt={"en": "Seven people"})
    path = write(tmp_path, with_images(entry), {"p.png": picture})
    result = check(path)
    [problem] = result.errors
    assert problem.rule == "media-text"
    assert problem.line == line_of(path, "alt:")
    assert "has no alt text in 'ar'" in problem.message


@pytest.mark.parametrize(
    ("svg", "reason"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "<script>"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "'onload'"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:x="http://www.w3.org/1999/xlink">'
            b'<image x:href="https://example.org/a.png"/></svg>',
            "refers to 'https://example.org/a.png' outside the file",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><p>hi</p></foreignObject></svg>',
            "<foreignObject>",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "b">]><svg xmlns="http://www.w3.org/2000/svg"/>',
            "DOCTYPE",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill:url(https://x.org/p)"/></svg>',
            "outside the file",
        ),
    ],
)
def test_an_svg_with_a_script_or_outside_reference_is_refused(
    tmp_path: Path, svg: bytes, reason: str
) -> None:
    path = write(tmp_path, with_images(image("logo.svg", svg, kind="logo")), {"logo.svg": svg})
    [problem] = check(path).errors
    assert problem.rule == "media-files" and problem.line == line_of(path, "file: logo.svg")
    assert "the SVG is refused" in problem.message and reason in problem.message


def test_a_plain_svg_drawing_passes(tmp_path: Path) -> None:
    assert svg_problem(SVG) is None
    inside = b'<svg xmlns="http://www.w3.org/2000/svg"><use href="#a"/><g id="a"/></svg>'
    assert svg_problem(inside) is None
    path = write(tmp_path, with_images(image("logo.svg", SVG, kind="logo")), {"logo.svg": SVG})
    assert check(path).problems == []


def test_a_messenger_photo_without_consent_is_refused_and_with_it_passes(tmp_path: Path) -> None:
    photo = jpeg()
    data = trial_dict()
    data["arms"].append(
        {
            "id": "messenger",
            "element": "messenger",
            "material": {language: {"title": "t", "body": "b"} for language in ("en", "ar")},
            "messenger": {
                "name": "A. Counsellor",
                "role": {"en": "Return counsellor", "ar": "مستشار العودة"},
                "real_person": True,
                "consent_recorded": True,
            },
            "images": [image("counsellor.jpg", photo, kind="photo")],
        }
    )
    data["randomization"]["block_size"] = len(data["arms"]) * 2
    path = write(tmp_path, data, {"counsellor.jpg": photo})
    [problem] = [p for p in check(path).errors if p.rule == "media-consent"]
    assert problem.line == line_of(path, "file: counsellor.jpg")
    assert "is the messenger's photo and has no 'consent'" in problem.message
    assert problem.message.endswith("(see docs/ethics.md#faces-and-voices)")

    data["arms"][-1]["images"][0]["consent"] = CONSENT
    path = write(tmp_path, data, {})
    assert only(check(path).result, "media-consent") == []

    # Consent that ends before the trial does is a warning; for another trial, an error.
    data["arms"][-1]["images"][0]["consent"] = {**CONSENT, "until": "2027-02-01"}
    path = write(tmp_path, data, {})
    [warning] = [p for p in check(path).problems if p.rule == "media-consent"]
    assert warning.severity == "warning" and warning.line == line_of(path, "until: '2027-02-01'")
    assert "consent ends on 2027-02-01, before the trial's end on 2027-03-28" in warning.message
    data["arms"][-1]["images"][0]["consent"] = {**CONSENT, "trial": "other-trial"}
    path = write(tmp_path, data, {})
    [error] = [p for p in check(path).errors if p.rule == "media-consent"]
    assert "the consent is for trial 'other-trial', not 'test-trial'" in error.message


def test_a_recorded_voice_needs_consent_a_synthetic_one_does_not(tmp_path: Path) -> None:
    data = trial_dict()
    data["outcomes"].append(PLAYED)
    data["arms"][0]["audio"] = {"en": {"file": "c.ogg", "sha256": sha(OGG), "voice": "recorded"}}
    path = write(tmp_path, data, {"c.ogg": OGG})
    [problem] = check(path).errors
    assert problem.rule == "media-consent" and "is a recorded voice" in problem.message
    assert problem.line == line_of(path, "file: c.ogg")  # the 'en' narration's first line
    data["arms"][0]["audio"]["en"]["voice"] = "synthetic"
    assert check(write(tmp_path, data, {})).problems == []


def test_a_transcript_says_the_text_or_is_declared_a_summary(tmp_path: Path) -> None:
    data = trial_dict()
    data["outcomes"].append(PLAYED)
    body = data["arms"][0]["material"]["en"]["body"]
    narration = {"file": "c.ogg", "sha256": sha(OGG), "voice": "synthetic"}
    data["arms"][0]["audio"] = {"en": {**narration, "transcript": " ".join(body.split()) + " "}}
    assert check(write(tmp_path, data, {"c.ogg": OGG})).problems == []
    data["arms"][0]["audio"] = {"en": {**narration, "transcript": "Something else."}}
    path = write(tmp_path, data, {})
    [problem] = check(path).errors
    assert problem.rule == "media-text" and problem.line == line_of(path, "transcript:")
    assert "the 'en' transcript differs from the material's text" in problem.message
    data["arms"][0]["audio"]["en"]["summary"] = True
    assert check(write(tmp_path, data, {})).problems == []


def test_files_are_pinned_and_a_changed_pixel_is_caught(tmp_path: Path) -> None:
    picture = png()
    path = write(tmp_path, with_images(image("p.png", None)), {"p.png": picture})
    [problem] = check(path).errors
    assert f"is not pinned: add 'sha256: {sha(picture)}'" in problem.message
    assert problem.line == line_of(path, "file: p.png")

    path = write(tmp_path, with_images(image("p.png", picture)), {})
    first = check(path)
    assert first.ok
    changed = Image.open(io.BytesIO(picture))
    changed.putpixel((0, 0), (255, 255, 255))
    buffer = io.BytesIO()
    changed.save(buffer, "PNG")
    (tmp_path / "p.png").write_bytes(buffer.getvalue())
    [stale] = check(path).errors
    assert stale.line == line_of(path, "sha256:")
    assert f"has changed since it was pinned (its sha256 is now {sha(buffer.getvalue())})" in (
        stale.message
    )
    # Pinning the new bytes makes a new version: the stored text and its hash differ.
    path = write(tmp_path, with_images(image("p.png", buffer.getvalue())), {})
    second = check(path)
    assert second.ok
    assert source_version(second.source) != source_version(first.source)


def test_paths_stay_inside_the_trial_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.png").write_bytes(png())
    folder = tmp_path / "trial"
    folder.mkdir()
    for bad in ("../secret.png", "/etc/passwd", ".hidden.png"):
        path = write(folder, with_images(image(bad, png())), {})
        result = check(path)
        assert any(p.rule == "schema" and "must match" in p.message for p in result.errors), bad


def test_only_text_differs_holds_every_arm_to_the_same_media(tmp_path: Path) -> None:
    picture = png()
    data = with_images(image("p.png", picture), only_text_differs=True)
    path = write(tmp_path, data, {"p.png": picture})
    [problem] = [p for p in check(path).errors if p.rule == "media-same"]
    assert "arm 'gain' shows other images than arm 'control'" in problem.message
    for arm in data["arms"]:
        arm["images"] = [image("p.png", picture)]
    assert check(write(tmp_path, data, {})).problems == []


def test_narrations_without_the_played_audio_event_get_a_warning(tmp_path: Path) -> None:
    data = trial_dict()
    data["arms"][0]["audio"] = {"en": {"file": "c.ogg", "sha256": sha(OGG), "voice": "synthetic"}}
    [problem] = check(write(tmp_path, data, {"c.ogg": OGG})).problems
    assert problem.severity == "warning" and problem.rule == "media-same"
    assert "no outcome with event 'played_audio'" in problem.message


# -- the material version covers the bytes -----------------------------------------------------


def _text_only_version(data: dict[str, Any], arm: int, language: str) -> str:
    """The material version as computed before media existed (element, material, claims,
    messenger, figure), computed here from the file's data."""
    trial = load_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True)).trial
    assert trial is not None
    chosen = trial.arms[arm]
    parts = [chosen.element, chosen.material[language].model_dump_json()]
    parts += [claim.model_dump_json() for claim in chosen.claims]
    if chosen.figure:
        parts.append(trial.figures[chosen.figure].model_dump_json())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def test_text_only_material_versions_are_unchanged_and_media_change_them() -> None:
    data = trial_dict()
    trial = load_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True)).trial
    assert trial is not None
    for index, arm in enumerate(trial.arms):
        for language in trial.languages:
            assert trial.material_version(arm.id, language) == _text_only_version(
                data, index, language
            )
    one, other = png(), png(colour=(0, 0, 0))
    versions = {}
    for name, picture, alt in (("a", one, ALT), ("b", other, ALT), ("c", one, {**ALT, "ar": "x"})):
        changed = with_images(image("p.png", picture, alt=alt))
        parsed = load_text(yaml.safe_dump(changed, sort_keys=False, allow_unicode=True)).trial
        assert parsed is not None
        versions[name] = {lang: parsed.material_version("gain", lang) for lang in ("en", "ar")}
    before = {lang: trial.material_version("gain", lang) for lang in ("en", "ar")}
    assert versions["a"]["en"] != before["en"] and versions["a"]["ar"] != before["ar"]
    # Other bytes change every language's version; another alt text only its language's.
    assert versions["b"]["en"] != versions["a"]["en"] and versions["b"]["ar"] != versions["a"]["ar"]
    assert versions["c"]["en"] == versions["a"]["en"] and versions["c"]["ar"] != versions["a"]["ar"]


# -- the archive and the type sniffer ----------------------------------------------------------


def test_the_archive_keeps_only_bytes_that_match_their_hash() -> None:
    picture = png()
    source = with_media("id: x\n", [StoredFile("p.png", "image/png", picture)])
    assert stored_media(source)[sha(picture)].data == picture
    lines = source.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith("# file ")) + 1
    flipped = "A" if lines[index][2] != "A" else "B"
    tampered = "".join([*lines[:index], "# " + flipped + lines[index][3:], *lines[index + 1 :]])
    assert stored_media(tampered) == {}
    assert trial_text(source) == "id: x\n" and with_media("id: x\n", []) == "id: x\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (png(), "image/png"),
        (jpeg(), "image/jpeg"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "image/webp"),
        (SVG, "image/svg+xml"),
        (b'<?xml version="1.0"?>\n<!-- a comment -->\n<svg xmlns="x"/>', "image/svg+xml"),
        (OGG, "audio/ogg"),
        (b"ID3\x04\x00" + bytes(20), "audio/mpeg"),
        (b"\xff\xfb\x90\x00" + bytes(20), "audio/mpeg"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "audio/webm"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", None),
        (b"GIF89a", None),
        (b"<html></html>", None),
        (b"", None),
    ],
)
def test_the_type_comes_from_the_bytes(data: bytes, expected: str | None) -> None:
    assert sniff(data) == expected


def test_the_example_trials_check_with_their_media() -> None:
    for name in ("tearoom-return-info", "organ-donation-2013"):
        result = check_path(f"experiments/trials/{name}.yaml", settings=SETTINGS)
        assert result.ok, [str(p) for p in result.errors]
        assert [p for p in result.problems if p.rule.startswith("media")] == []
        kept = stored_media(result.source)
        trial = result.trial
        assert trial is not None
        pinned = {image.sha256 for arm in trial.arms for image in arm.images}
        pinned |= {n.sha256 for arm in trial.arms for n in arm.audio.values()}
        assert pinned and set(kept) == pinned
        for digest, stored in kept.items():
            on_disk = Path("experiments/trials") / stored.path
            assert sha(on_disk.read_bytes()) == digest
    organ = check_path("experiments/trials/organ-donation-2013.yaml", settings=SETTINGS)
    assert organ.trial is not None
    assert not re.search(r"\[(Photo|Logo)", organ.source)  # no bracketed placeholders left
    assert [len(organ.trial.arm(a).images) for a in ("norm_photo", "norm_logo")] == [1, 1]
