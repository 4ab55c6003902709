"""The pictures and narrations of a trial, served by the app itself from the stored versions.

A file is addressed by its SHA-256 (the ``sha256`` the trial file pins), so its address never
changes meaning: the kiosk's browser may keep it for good (the service worker does), and a
changed picture is a new address. The bytes come from the media archive stored with the trial
version (:mod:`experiments.media`), never from a folder on the server or another host.

- ``<kiosk>/media/<sha256>``: for a kiosk's pages (its token, its trial's versions);
- ``/register/<trial>/media/<sha256>``: for the public register (trials that have started).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable

from flask import Blueprint, Response, abort, current_app, g, request, url_for

from app.db import get_connection
from app.kiosk import bp
from app.kiosk import visit as visits
from experiments import store
from experiments.media import StoredFile, stored_media

register_bp = Blueprint("register_media", __name__)

#: How long a browser may keep a file: its address is its hash, so for good.
IMMUTABLE = 365 * 24 * 3600
#: An SVG opened on its own is a document: let it run nothing and load nothing.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


#: The media of the versions served lately, by (trial, version): a version never changes, so
#: its stored text is read from the database once per process, not once per file.
_KEPT: OrderedDict[tuple[str, str], dict[str, StoredFile]] = OrderedDict()
_KEPT_VERSIONS = 8
_LOCK = threading.Lock()


def _version_media(trial_id: str, version: str) -> dict[str, StoredFile]:
    key = (trial_id, version)
    with _LOCK:
        if key in _KEPT:
            _KEPT.move_to_end(key)
            return _KEPT[key]
    source = store.version_source(get_connection(), trial_id, version)
    files = stored_media(source) if source else {}
    with _LOCK:
        _KEPT[key] = files
        while len(_KEPT) > _KEPT_VERSIONS:
            _KEPT.popitem(last=False)
    return files


def _find(trial_id: str, versions: Iterable[str | None], digest: str) -> StoredFile | None:
    for version in dict.fromkeys(v for v in versions if v):
        found = _version_media(trial_id, version).get(digest)
        if found is not None:
            return found
    return None


def _send(stored: StoredFile) -> Response:
    """The file, with ranges (audio players ask for them) and a cache lifetime of a year."""
    response = current_app.response_class(stored.data, mimetype=stored.media_type)
    response.headers["Cache-Control"] = f"private, max-age={IMMUTABLE}, immutable"
    response.set_etag(stored.sha256)
    if stored.media_type == "image/svg+xml":
        response.headers["Content-Security-Policy"] = SVG_POLICY
    return response.make_conditional(request, accept_ranges=True, complete_length=len(stored.data))


@bp.get("/media/<digest>")
def media(digest: str) -> Response:
    """A file of the version this kiosk shows: the visit's, the current or the locked one."""
    visit = visits.current()
    versions = [
        _version_of(visit) if visit else None,
        g.record.current_version,
        g.record.locked_version,
    ]
    stored = _find(g.trial.id, versions, digest)
    if stored is None:
        abort(404)
    return _send(stored)


def _version_of(visit: visits.Visit) -> str | None:
    row = store.assigned_visit(get_connection(), g.trial.id, visit.id)
    return row.trial_version if row is not None else None


@register_bp.get("/register/<trial_id>/media/<digest>")
def register_media(trial_id: str, digest: str) -> Response:
    """A file of a trial on the public register (its current or its locked version)."""
    record = store.read_trial(get_connection(), trial_id)
    if record is None or not record.registered:
        abort(404)
    stored = _find(trial_id, [record.current_version, record.locked_version], digest)
    if stored is None:
        abort(404)
    return _send(stored)


def media_url(trial_id: str, digest: str | None) -> str:
    """Where a page finds a file: under the kiosk's own path on a kiosk page (its service
    worker keeps it), else on the public register."""
    if "token" in g:
        return url_for("kiosk.media", digest=digest or "none")
    return url_for("register_media.register_media", trial_id=trial_id, digest=digest or "none")


bp.add_app_template_global(media_url, "media_url")
