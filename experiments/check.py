"""Check a trial file: schema, design and ethics rules, and the minimum detectable effect."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from experiments.design import ArmDesign, planned_design
from experiments.load import Loaded, load_path, load_text
from experiments.media import (
    ArchiveMedia,
    FolderMedia,
    MediaSource,
    pinned_files,
    stored_media,
    with_media,
)
from experiments.model import Trial
from experiments.problems import Problem
from experiments.rules import Settings, run_rules


@dataclass
class CheckResult:
    """Everything ``nudgelab check`` reports about one file."""

    file: str
    #: The text checked; from :func:`check_path` without errors, the text to store (the
    #: file's text and its media archive).
    source: str
    trial: Trial | None
    problems: list[Problem] = field(default_factory=list)
    design: list[ArmDesign] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [problem for problem in self.problems if problem.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


def _finish(loaded: Loaded, settings: Settings | None, media: MediaSource) -> CheckResult:
    settings = settings or Settings(today=date.today())
    problems = list(loaded.problems)
    design: list[ArmDesign] = []
    if loaded.trial is not None:
        problems += run_rules(loaded.trial, loaded.file, loaded.lines, settings, media)
        if not any(p.severity == "error" for p in problems):
            design = planned_design(loaded.trial)
        expected = Path(loaded.file).stem
        if loaded.file.endswith((".yaml", ".yml")) and loaded.trial.id != expected:
            problems.append(
                Problem(
                    loaded.file,
                    loaded.lines.line(("id",)),
                    ("id",),
                    f"id {loaded.trial.id!r} differs from the file name; name the file "
                    f"{loaded.trial.id}.yaml",
                    "warning",
                    "file-name",
                )
            )
    problems.sort(key=lambda problem: (problem.line, problem.severity, str(problem.path)))
    trial = loaded.trial if not loaded.repaired else None
    return CheckResult(loaded.file, loaded.source, trial, problems, design)


def check_path(path: str | Path, settings: Settings | None = None) -> CheckResult:
    """Load and check the trial file at ``path``, its media files read from its folder.

    When the file has no errors, ``source`` is the text to store: the file's text followed by
    the archive of its media files (the text alone when it has none; see
    :mod:`experiments.media`).
    """
    media = FolderMedia(Path(path).resolve().parent)
    result = _finish(load_path(path), settings, media)
    if result.trial is not None and result.ok:
        result.source = with_media(result.source, pinned_files(result.trial, media))
    return result


def check_text(source: str, file: str = "<trial>", settings: Settings | None = None) -> CheckResult:
    """Check trial YAML given as text (e.g. a version stored in the event log); its media
    files are read from the text's media archive."""
    return _finish(load_text(source, file), settings, ArchiveMedia(stored_media(source)))
