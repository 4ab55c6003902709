"""Loading a trial file in the console: upload (a file, or a zip of its folder with its
pictures and narrations) or paste.

The file is checked exactly as ``nudgelab check`` checks it; a refused file shows the check's
messages and nothing is stored. A new version of a started trial that changes arms,
materials, outcomes or the analysis plan needs a reason and is recorded as an amendment
(:func:`experiments.lifecycle.load_trial_text`). The researcher who loads a new trial becomes a
member of it; nobody loads a version of a trial they are not a member of.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import yaml
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.wrappers import Response
from wtforms import TextAreaField
from wtforms.validators import Length, Optional

from app.console.access import Can, allowed, roles, trial_for
from app.console.blueprint import LARGE_BODIES, bp
from app.db import commit, get_connection, get_engine
from experiments import lifecycle, store
from experiments.store.users import Role, add_member

#: The largest trial file the console accepts (the example is about 30 kB).
MAX_TRIAL_BYTES = 512 * 1024
#: The largest upload of a trial file's folder as a zip (its pictures and narrations), the most
#: bytes it may unpack to, and the most files it may hold.
MAX_UPLOAD_BYTES = 32 * 2**20
MAX_ZIP_BYTES = 64 * 2**20
MAX_ZIP_FILES = 500


class LoadForm(FlaskForm):
    file = FileField("Trial file (YAML)")
    source = TextAreaField("…or paste the trial file", validators=[Optional()])
    reason = TextAreaField(
        "Reason for the change (needed once the trial has started and the change touches "
        "arms, materials, outcomes or the analysis plan)",
        validators=[Optional(), Length(max=2000)],
    )


@dataclass(frozen=True)
class Upload:
    """A trial file to load: its text and name, and the folder it was unpacked into when it
    came in a zip with its pictures and narrations (None for a single file or pasted text)."""

    text: str
    name: str
    folder: Path | None = None


def _source(form: LoadForm, folder: Path) -> Upload | str:
    """The uploaded (a file, or a zip unpacked into ``folder``) or pasted trial file, or what
    is wrong with the upload."""
    upload = form.file.data
    if upload is not None and getattr(upload, "filename", ""):
        if upload.filename.lower().endswith(".zip"):
            return _unpack(upload.stream, folder)
        raw = upload.read(MAX_TRIAL_BYTES + 1)
        if len(raw) > MAX_TRIAL_BYTES:
            return f"The file is larger than {MAX_TRIAL_BYTES // 1024} kB."
        try:
            return Upload(raw.decode("utf-8"), upload.filename)
        except UnicodeDecodeError:
            return "The file is not UTF-8 text: upload the trial file (YAML) or a zip."
    text = (form.source.data or "").strip()
    if not text:
        return "Choose a trial file (or a zip of its folder), or paste its text."
    return Upload(text + "\n", "pasted trial file")


def _unpack(stream: IO[bytes], folder: Path) -> Upload | str:
    """A zip of a trial file's folder (the file and its media), unpacked into ``folder``."""
    try:
        with zipfile.ZipFile(stream) as archive:
            entries = [entry for entry in archive.infolist() if not entry.is_dir()]
            if len(entries) > MAX_ZIP_FILES:
                return f"The zip holds more than {MAX_ZIP_FILES} files."
            if sum(entry.file_size for entry in entries) > MAX_ZIP_BYTES:
                return f"The zip unpacks to more than {MAX_ZIP_BYTES // 2**20} MB."
            for entry in entries:
                parts = PurePosixPath(entry.filename).parts
                if entry.filename.startswith("/") or ".." in parts:
                    return f"The zip holds a path outside its folder: {entry.filename!r}."
            archive.extractall(folder)
    except zipfile.BadZipFile:
        return "The file is not a zip archive."
    found = sorted(
        path
        for pattern in ("*.yaml", "*.yml", "*/*.yaml", "*/*.yml")
        for path in folder.glob(pattern)
    )
    top = min((len(path.relative_to(folder).parts) for path in found), default=0)
    found = [path for path in found if len(path.relative_to(folder).parts) == top]
    if len(found) != 1:
        return "The zip must hold exactly one trial file (.yaml) at its top, beside its media."
    try:
        text = found[0].read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return f"{found[0].name} is not UTF-8 text."
    return Upload(text, found[0].name, found[0].parent)


def _trial_id(text: str) -> str | None:
    """The ``id`` the file declares, read without checking the rest (None if unreadable)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


LARGE_BODIES.update(
    {"console.load_new": MAX_UPLOAD_BYTES, "console.load_version": MAX_UPLOAD_BYTES}
)


@bp.route("/load", methods=["GET", "POST"])
@roles(Role.RESEARCHER)
def load_new() -> str | Response:
    """Load a new trial (as a draft), by upload or paste."""
    return _load(None)


@bp.route("/trials/<trial_id>/load", methods=["GET", "POST"])
@roles(Role.RESEARCHER)
def load_version(trial_id: str) -> str | Response:
    """Load a new version of a trial this researcher works on."""
    trial_for(trial_id, Can.ACT)
    return _load(trial_id)


def _load(trial_id: str | None) -> str | Response:
    form = LoadForm()
    problems: list[str] = []
    error = None
    needs_reason: tuple[str, ...] = ()
    if form.validate_on_submit():
        with tempfile.TemporaryDirectory(prefix="nudgelab-upload-") as temporary:
            found = _source(form, Path(temporary))
            if isinstance(found, str):
                error = found
            else:
                outcome = _try_load(found, trial_id, (form.reason.data or "").strip())
                if isinstance(outcome, Response):
                    return outcome
                error, problems, needs_reason = outcome
    elif request.method == "POST":
        error = "The form was not complete; see below."
    status = 422 if error else 200
    return (
        render_template(
            "console/load.html",
            form=form,
            trial_id=trial_id,
            error=error,
            problems=problems,
            needs_reason=needs_reason,
        ),
        status,
    )


def _try_load(
    upload: Upload, trial_id: str | None, reason: str
) -> Response | tuple[str, list[str], tuple[str, ...]]:
    """Load the file; a redirect to the trial's page, or (error, problems, parts changed)."""
    conn = get_connection()
    declared = _trial_id(upload.text)
    if declared is not None:
        if trial_id is not None and declared != trial_id:
            return (f"This file is trial {declared!r}, not {trial_id!r}.", [], ())
        existing = store.read_trial(conn, declared)
        if existing is not None and not allowed(existing, Can.ACT):
            return (
                f"A trial {declared!r} exists already and you are not a member of it; ask an "
                "admin to add you, or give your trial another id.",
                [],
                (),
            )
    conn.rollback()  # the load below runs in its own transaction
    options = {
        "interface_languages": current_app.config["INTERFACE_LANGUAGES"],
        "actor": current_user.actor,
        "reason": reason or None,
    }
    try:
        if upload.folder is None:
            loaded = lifecycle.load_trial_text(get_engine(), upload.text, upload.name, **options)
        else:
            path = upload.folder / upload.name
            loaded = lifecycle.load_trial_file(get_engine(), path, **options)
    except lifecycle.ReasonRequired as missing:
        return (str(missing), _shown(missing.problems, upload), tuple(missing.changes))
    except lifecycle.TrialRefused as refused:
        return (_hide(str(refused), upload), _shown(refused.problems, upload), ())
    conn = get_connection()
    if store.read_trial(conn, loaded.trial.id) is not None:
        add_member(conn, loaded.trial.id, current_user.email, current_user.actor)
        commit()
    for warning in (*map(str, loaded.problems), *loaded.warnings):
        flash(f"warning: {warning}")
    flash(
        f"{'Loaded' if loaded.new else 'Unchanged:'} {loaded.trial.id}, version "
        f"{loaded.version[:12]}."
    )
    return redirect(url_for("console.trial", trial_id=loaded.trial.id))


def _hide(message: str, upload: Upload) -> str:
    """A message without the temporary folder a zip was unpacked into."""
    return message if upload.folder is None else message.replace(f"{upload.folder}/", "")


def _shown(problems: Iterable[object], upload: Upload) -> list[str]:
    return [_hide(str(problem), upload) for problem in problems]
