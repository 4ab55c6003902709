"""Rules on media: the files exist and are what they claim, alt texts and transcripts, consent.

The bytes are read through the check's :class:`~experiments.media.MediaSource` (the trial
file's folder, or a stored version's archive), so a stored version is checked against exactly
the bytes it keeps. See docs/trial-format.md#media and docs/ethics.md#faces-and-voices.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from experiments.media import (
    AUDIO_TYPES,
    IMAGE_TYPES,
    ArchiveMedia,
    ImageInfo,
    raster_info,
    sha256,
    sniff,
    svg_problem,
    type_name,
)
from experiments.model import Arm, Consent, Image, Narration
from experiments.problems import Path, Problem
from experiments.rules.registry import Context, rule

#: The event the kiosk logs when a visitor plays a narration (declared as an outcome's event).
PLAYED_AUDIO = "played_audio"

#: What a file name's extension declares.
EXTENSION_TYPES: dict[str, str] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".webm": "audio/webm",
}


@dataclass(frozen=True)
class MediaEntry:
    """One image or narration of an arm, with where it is in the trial file."""

    arm: Arm
    path: Path
    item: Image | Narration
    role: str  # "image" | "audio"


def media_entries(ctx: Context) -> Iterator[MediaEntry]:
    """Every image and narration of every arm, in file order."""
    for i, arm in enumerate(ctx.trial.arms):
        for j, image in enumerate(arm.images):
            yield MediaEntry(arm, ("arms", i, "images", j), image, "image")
        for language, narration in arm.audio.items():
            yield MediaEntry(arm, ("arms", i, "audio", language), narration, "audio")


def read_bytes(ctx: Context, entry: MediaEntry) -> bytes | None:
    source = ctx.media if ctx.media is not None else ArchiveMedia({})
    return source.read(entry.item.file, entry.item.sha256)


@rule(
    "media-files",
    "every image and narration file exists beside the trial file, is pinned by its sha256, is "
    "a PNG, JPEG, WebP or SVG image or an MP3, Ogg or WebM sound by its bytes (matching its "
    "name), is under the size limits, and an SVG has no script, event attribute or outside "
    "reference",
)
def _media_files(ctx: Context) -> Iterator[Problem]:
    for entry in media_entries(ctx):
        yield from _file_problems(ctx, entry)


def _file_problems(ctx: Context, entry: MediaEntry) -> Iterator[Problem]:
    item, arm = entry.item, entry.arm
    what = f"arm {arm.id!r}: {entry.role} {item.file!r}"
    data = read_bytes(ctx, entry)
    if data is None:
        yield ctx.problem(
            (*entry.path, "file"),
            f"{what} not found; put the file beside the trial file (paths are relative to "
            "its folder; see docs/trial-format.md#media)",
            "media-files",
        )
        return
    actual = sha256(data)
    if item.sha256 is None:
        yield ctx.problem(
            (*entry.path, "file"),
            f"{what} is not pinned: add 'sha256: {actual}' so every version of the trial file "
            "names the exact bytes it shows",
            "media-files",
        )
    elif item.sha256 != actual:
        yield ctx.problem(
            (*entry.path, "sha256"),
            f"{what} has changed since it was pinned (its sha256 is now {actual}); if the "
            "change is meant, pin the new bytes. After the trial has started, a changed "
            "picture or sound is a new version and a deviation, like a changed sentence",
            "media-files",
        )
    allowed = IMAGE_TYPES if entry.role == "image" else AUDIO_TYPES
    found = sniff(data)
    declared = EXTENSION_TYPES.get(PurePosixPath(item.file).suffix.lower())
    if found not in allowed:
        yield ctx.problem(
            (*entry.path, "file"),
            f"{what}: its bytes are {type_name(found)}, not an allowed {entry.role} type "
            f"({', '.join(allowed.values())})",
            "media-files",
        )
        return
    if declared != found:
        named = type_name(declared) if declared else "no known type"
        yield ctx.problem(
            (*entry.path, "file"),
            f"{what}: its name says {named} but its bytes are {type_name(found)}; rename or "
            "convert it",
            "media-files",
        )
    limit = ctx.settings.max_image_bytes if entry.role == "image" else ctx.settings.max_audio_bytes
    if len(data) > limit:
        yield ctx.problem(
            (*entry.path, "file"),
            f"{what} is {len(data):,} bytes, over the limit of {limit:,} for a kiosk "
            f"{entry.role}; make it smaller (docs/trial-format.md#media)",
            "media-files",
        )
    if found == "image/svg+xml":
        reason = svg_problem(data)
        if reason:
            yield ctx.problem(
                (*entry.path, "file"),
                f"{what}: the SVG is refused: {reason}. The kiosk shows plain drawings only; "
                "remove it, or export the drawing as PNG",
                "media-files",
            )
    if found in ("image/png", "image/jpeg", "image/webp"):
        info = raster_info(data)
        if isinstance(info, str):
            yield ctx.problem((*entry.path, "file"), f"{what}: {info}", "media-files")
        elif max(info.width, info.height) > ctx.settings.max_image_pixels:
            yield ctx.problem(
                (*entry.path, "file"),
                f"{what} is {_size(info)} pixels; its longest side may be at most "
                f"{ctx.settings.max_image_pixels}",
                "media-files",
            )


def _size(info: ImageInfo) -> str:
    return f"{info.width}x{info.height}"


def _normalised(text: str) -> str:
    return " ".join(text.split())


@rule(
    "media-text",
    "every image has alt text in every trial language; a narration is in a trial language and "
    "its transcript is the material's text or declared a summary",
)
def _media_text(ctx: Context) -> Iterator[Problem]:
    languages = list(dict.fromkeys(ctx.trial.languages))
    for i, arm in enumerate(ctx.trial.arms):
        for j, image in enumerate(arm.images):
            path: Path = ("arms", i, "images", j, "alt")
            for language in languages:
                if language not in image.alt:
                    yield ctx.problem(
                        path,
                        f"arm {arm.id!r}: image {image.file!r} has no alt text in {language!r}; "
                        "a visitor who cannot see it is told what it shows in their language",
                        "media-text",
                        key=True,
                    )
            for language in image.alt:
                if language not in languages:
                    yield ctx.problem(
                        (*path, language),
                        f"arm {arm.id!r}: alt text in {language!r}, which is not in 'languages'",
                        "media-text",
                        key=True,
                    )
        for language, narration in arm.audio.items():
            path = ("arms", i, "audio", language)
            if language not in languages:
                yield ctx.problem(
                    path,
                    f"arm {arm.id!r}: a narration in {language!r}, which is not in 'languages'",
                    "media-text",
                    key=True,
                )
                continue
            yield from _transcript(ctx, arm, language, narration, path)


def _transcript(
    ctx: Context, arm: Arm, language: str, narration: Narration, path: Path
) -> Iterator[Problem]:
    if narration.summary and narration.transcript is None:
        yield ctx.problem(
            (*path, "summary"),
            f"arm {arm.id!r}: a narration declared a summary needs its 'transcript' (what it "
            "says, shown one tap away on the kiosk)",
            "media-text",
        )
        return
    if narration.transcript is None or narration.summary:
        return
    material = arm.material.get(language)
    if material is None:
        return
    said = _normalised(narration.transcript)
    if said not in (_normalised(material.body), _normalised(f"{material.title} {material.body}")):
        yield ctx.problem(
            (*path, "transcript"),
            f"arm {arm.id!r}: the {language!r} transcript differs from the material's text; a "
            "narration says what the page says (leave 'transcript' out to use the title and "
            "body), or declare 'summary: true' so the register and report call it a summary",
            "media-text",
        )


def _consent_needed(arm: Arm, entry: MediaEntry) -> str | None:
    item = entry.item
    if isinstance(item, Image):
        if item.shows_person:
            return "a picture of an identifiable person"
        if arm.element == "messenger" and item.kind == "photo":
            return "the messenger's photo"
        return None
    return "a recorded voice" if item.voice == "recorded" else None


@rule(
    "media-consent",
    "a photo of a person (a messenger's photo always) and a recorded voice carry a consent "
    "record for this trial: who, when, until when, and where the signed form is kept",
)
def _media_consent(ctx: Context) -> Iterator[Problem]:
    for entry in media_entries(ctx):
        needed = _consent_needed(entry.arm, entry)
        consent = entry.item.consent
        what = f"arm {entry.arm.id!r}: {entry.role} {entry.item.file!r}"
        if needed and consent is None:
            yield ctx.problem(
                entry.path,
                f"{what} is {needed} and has no 'consent' (who, given, trial, until, "
                "form_reference); a face or a voice is shown only with the person's recorded "
                "consent for this trial (see docs/ethics.md#faces-and-voices)",
                "media-consent",
            )
        if consent is not None:
            yield from _consent_problems(ctx, entry, consent, what)


def _consent_problems(
    ctx: Context, entry: MediaEntry, consent: Consent, what: str
) -> Iterator[Problem]:
    path = (*entry.path, "consent")
    trial = ctx.trial
    if consent.trial != trial.id:
        yield ctx.problem(
            (*path, "trial"),
            f"{what}: the consent is for trial {consent.trial!r}, not {trial.id!r}; consent "
            "covers one trial (see docs/ethics.md#faces-and-voices)",
            "media-consent",
        )
    if consent.given > ctx.settings.today:
        yield ctx.problem(
            (*path, "given"),
            f"{what}: consent given on {consent.given}, a date in the future",
            "media-consent",
        )
    if consent.until <= consent.given:
        yield ctx.problem(
            (*path, "until"),
            f"{what}: consent until {consent.until} is not after it was given ({consent.given})",
            "media-consent",
        )
    elif consent.until < trial.schedule.end:
        yield ctx.problem(
            (*path, "until"),
            f"{what}: consent ends on {consent.until}, before the trial's end on "
            f"{trial.schedule.end}; renew it or take the picture or voice off the arm by then "
            "(see docs/ethics.md#faces-and-voices)",
            "media-consent",
            "warning",
        )


@rule(
    "media-same",
    "with only_text_differs, every arm shows the same images and has narrations in the same "
    "languages; a trial with narrations declares the event played_audio",
)
def _media_same(ctx: Context) -> Iterator[Problem]:
    trial = ctx.trial
    if trial.only_text_differs and trial.arms:
        first = trial.arms[0]
        shown = [(image.sha256, image.file) for image in first.images]
        narrated = sorted(first.audio)
        for i, arm in enumerate(trial.arms[1:], start=1):
            if [(image.sha256, image.file) for image in arm.images] != shown:
                yield ctx.problem(
                    ("arms", i, "images"),
                    f"arm {arm.id!r} shows other images than arm {first.id!r}, but "
                    "'only_text_differs: true' says the arms differ only in their words",
                    "media-same",
                )
            if sorted(arm.audio) != narrated:
                yield ctx.problem(
                    ("arms", i, "audio"),
                    f"arm {arm.id!r} has narrations in {sorted(arm.audio) or 'no language'}, arm "
                    f"{first.id!r} in {narrated or 'no language'}; with 'only_text_differs: "
                    "true' every arm is narrated in the same languages",
                    "media-same",
                )
    if any(arm.audio for arm in trial.arms) and PLAYED_AUDIO not in trial.outcome_events:
        yield ctx.problem(
            ("outcomes",),
            f"the trial has narrations but no outcome with event {PLAYED_AUDIO!r}, so the "
            "kiosk does not record when one is played; declare it (without a label) to use "
            "it as an outcome or covariate",
            "media-same",
            "warning",
        )
