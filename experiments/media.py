"""Media files of a trial (images, narrations): their type from their bytes, SVG safety, hashing,
and how a loaded version keeps its exact bytes.

A trial file names its media by a path relative to its own folder and pins each file by its
SHA-256 (``sha256:``), so the text of the trial file changes whenever a picture or a sound
does, and every material version hashed into an exposure covers the bytes shown.

When a checked trial file is stored (``nudgelab trial load``), its media go with it: the
stored text is the file's text followed by a *media archive*, a block of YAML comments that
holds each pinned file in base64 (:func:`with_media`). The archive needs no table of its own,
parses as part of the YAML (comments), and makes the stored version's hash cover the bytes as
well. The kiosk serves a picture from the version it shows, and the report shows the locked
version's picture, from that text alone (:func:`stored_media`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from experiments.model import Trial

#: Image types a kiosk shows, by the type their bytes have (never their name).
IMAGE_TYPES: dict[str, str] = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WebP",
    "image/svg+xml": "SVG",
}
#: Audio types a kiosk plays.
AUDIO_TYPES: dict[str, str] = {
    "audio/mpeg": "MP3",
    "audio/ogg": "Ogg",
    "audio/webm": "WebM",
}

ARCHIVE_START = "# --- nudgelab media archive"
ARCHIVE_END = "# --- end of nudgelab media archive ---"
_ARCHIVE_HEADER = (
    f"{ARCHIVE_START}: the files this version shows, stored with it when it was loaded "
    "(docs/trial-format.md#media) ---"
)
_FILE_LINE = re.compile(r"^# file (\S+) (\S+) (\d+) ([0-9a-f]{64})$")
_LINE_WIDTH = 96


def sha256(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 lower-case hex digits (what ``sha256:`` pins)."""
    return hashlib.sha256(data).hexdigest()


# -- what the bytes are -------------------------------------------------------------------------


def sniff(data: bytes) -> str | None:
    """The media type of ``data`` from its first bytes, or None for anything not allowed.

    PNG, JPEG and WebP by their signatures; Ogg and WebM (an EBML header naming ``webm``) by
    theirs; MP3 by an ID3 tag or an MPEG audio frame header; SVG when the text's root element
    is ``<svg>``.
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"OggS"):
        return "audio/ogg"
    if data.startswith(b"\x1a\x45\xdf\xa3") and b"webm" in data[:64]:
        return "audio/webm"
    if data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if _svg_root(data):
        return "image/svg+xml"
    return None


def _svg_root(data: bytes) -> bool:
    try:
        text = data[:4096].decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    prologue = r"<\?xml[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(\[.*?\])?\s*>|\s+"
    text = re.sub(rf"^(?:{prologue})+", "", text, flags=re.S)
    return re.match(r"<(svg:)?svg[\s>/]", text) is not None


def type_name(media_type: str | None) -> str:
    """A media type as people name it (``PNG``), or ``unknown``."""
    if media_type is None:
        return "an unknown type"
    return {**IMAGE_TYPES, **AUDIO_TYPES}.get(media_type, media_type)


#: SVG elements that run code, embed other documents or reach outside: refused, not cleaned.
_SVG_REFUSED_ELEMENTS = frozenset(
    {"script", "foreignobject", "iframe", "embed", "object", "audio", "video", "handler"}
)


def svg_problem(data: bytes) -> str | None:
    """Why an SVG file is refused, or None when it is safe to show.

    An SVG is a program as much as a picture; the kiosk shows only plain drawings. Refused:
    a DOCTYPE or entities, scripts and other active or embedding elements, ``on…`` event
    attributes, and any reference that is not inside the file itself (``href`` or ``url()``
    other than ``#id``). The file is refused rather than cleaned, so what is checked is what is
    shown.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "it is not UTF-8 text"
    if re.search(r"<!DOCTYPE|<!ENTITY", text, re.I):
        return "it has a DOCTYPE or entity declarations"
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        return f"it is not well-formed XML ({error})"
    for element in root.iter():
        name = _local(element.tag).lower()
        if name in _SVG_REFUSED_ELEMENTS:
            return f"it contains a <{_local(element.tag)}> element (a script or embedded content)"
        for attribute, value in element.attrib.items():
            key = _local(attribute).lower()
            if key.startswith("on"):
                return f"it has an event attribute {key!r} (a script)"
            if key == "href" and not value.strip().startswith("#"):
                return f"it refers to {value.strip()[:60]!r} outside the file"
            if re.search(r"url\(\s*['\"]?(?!#)", value) or "javascript:" in value.lower():
                return f"attribute {key!r} refers to something outside the file"
        if name == "style" and re.search(r"url\(\s*['\"]?(?!#)|@import", element.text or ""):
            return "its style sheet refers to something outside the file"
    return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


@dataclass(frozen=True)
class ImageInfo:
    """What Pillow reads from a raster image: its format and size in pixels."""

    width: int
    height: int


def raster_info(data: bytes) -> ImageInfo | str:
    """Width and height of a PNG, JPEG or WebP image, or why its bytes do not decode."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            return ImageInfo(*image.size)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        return f"the image does not decode ({error.__class__.__name__}: {error})"
    except Image.DecompressionBombError:
        return "the image has too many pixels"


# -- where media come from -----------------------------------------------------------------------


def safe_relative(path: str) -> bool:
    """Whether ``path`` stays inside the trial's folder (relative, no ``..``, no backslash)."""
    pure = PurePosixPath(path)
    return bool(path) and not pure.is_absolute() and ".." not in pure.parts and "\\" not in path


class MediaSource(Protocol):
    """Where a trial's media files are read from: its folder, or a stored version's archive."""

    def read(self, path: str, pinned: str | None) -> bytes | None:
        """The bytes of ``path`` (``pinned``: the SHA-256 the trial file gives), or None."""


@dataclass(frozen=True)
class FolderMedia:
    """Media files beside a trial file (paths relative to its folder)."""

    root: Path

    def read(self, path: str, pinned: str | None) -> bytes | None:
        if not safe_relative(path):
            return None
        file = self.root / path
        try:
            return file.read_bytes() if file.is_file() else None
        except OSError:
            return None


@dataclass(frozen=True)
class StoredFile:
    """One media file of a stored trial version."""

    path: str
    media_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return sha256(self.data)


@dataclass(frozen=True)
class ArchiveMedia:
    """Media kept in a stored version's archive, found by their SHA-256."""

    files: Mapping[str, StoredFile]

    def read(self, path: str, pinned: str | None) -> bytes | None:
        stored = self.files.get(pinned or "")
        if stored is None:
            stored = next((f for f in self.files.values() if f.path == path), None)
        return stored.data if stored is not None else None


# -- the archive in a stored version ------------------------------------------------------------


def with_media(source: str, files: Iterable[StoredFile]) -> str:
    """The trial file's text followed by the archive of ``files`` (none: the text unchanged).

    The archive is deterministic (files in path order, fixed line width), so loading the same
    file and media twice gives the same stored text and the same version.
    """
    files = sorted({(f.path, f.sha256): f for f in files}.values(), key=lambda f: f.path)
    if not files:
        return source
    lines = [source if source.endswith("\n") else source + "\n", _ARCHIVE_HEADER + "\n"]
    for stored in files:
        lines.append(
            f"# file {stored.path} {stored.media_type} {len(stored.data)} {stored.sha256}\n"
        )
        encoded = base64.b64encode(stored.data).decode("ascii")
        lines += [
            f"# {encoded[i : i + _LINE_WIDTH]}\n" for i in range(0, len(encoded), _LINE_WIDTH)
        ]
    lines.append(ARCHIVE_END + "\n")
    return "".join(lines)


def trial_text(source: str) -> str:
    """A stored version's text without its media archive (the trial file as written)."""
    start = _archive_start(source)
    return source if start < 0 else source[:start]


def _archive_start(source: str) -> int:
    if source.startswith(ARCHIVE_START):
        return 0
    index = source.find("\n" + ARCHIVE_START)
    return index + 1 if index >= 0 else -1


@lru_cache(maxsize=8)
def stored_media(source: str) -> dict[str, StoredFile]:
    """The media files in a stored version's archive, by SHA-256 (empty without an archive).

    A file whose bytes do not match its recorded hash is left out: what is served or shown is
    always exactly what was pinned.
    """
    start = _archive_start(source)
    if start < 0:
        return {}
    found: dict[str, StoredFile] = {}
    current: tuple[str, str, int, str] | None = None
    chunks: list[str] = []

    def close() -> None:
        if current is None:
            return
        path, media_type, size, digest = current
        try:
            data = base64.b64decode("".join(chunks), validate=True)
        except (binascii.Error, ValueError):
            return
        if len(data) == size and sha256(data) == digest:
            found[digest] = StoredFile(path, media_type, data)

    for line in source[start:].splitlines()[1:]:
        match = _FILE_LINE.match(line)
        if match or line == ARCHIVE_END:
            close()
            chunks = []
            current = None
            if match:
                path, media_type, size, digest = match.groups()
                current = (path, media_type, int(size), digest)
            else:
                break
        elif current is not None and line.startswith("# "):
            chunks.append(line[2:])
    return found


def data_uri(stored: StoredFile) -> str:
    """The file as a ``data:`` URI (a report is one file that loads nothing)."""
    return f"data:{stored.media_type};base64,{base64.b64encode(stored.data).decode('ascii')}"


def pinned_files(trial: Trial, source: MediaSource) -> list[StoredFile]:
    """The media files ``trial`` shows, read from ``source`` (files not found are left out)."""
    items = [image for arm in trial.arms for image in arm.images]
    items += [narration for arm in trial.arms for narration in arm.audio.values()]
    found = []
    for item in items:
        data = source.read(item.file, item.sha256)
        if data is not None:
            found.append(StoredFile(item.file, sniff(data) or "application/octet-stream", data))
    return found
