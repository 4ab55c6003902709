"""A trial's way into the event log: open the log, check the file, store it, give it kiosks.

These are the steps an operator takes, whether from the command line or the web console.
Each function but :func:`open_event_log` (which makes the engine) takes an ``Engine`` and owns
its transactions, prints nothing, and returns what the operator should be told. A trial that
cannot be used raises :class:`TrialRefused`, which carries the check's problems so that the
caller can show them before its message.

Every step that changes something takes the :class:`~experiments.store.Actor` who takes it and
writes an audit entry in the same transaction. A new version of a trial that has started is an
amendment: stored with when, who and why, and refused (:class:`ReasonRequired`) without a
reason when it changes the arms, materials, outcomes or analysis plan. A closed trial's file
no longer changes.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from experiments import store
from experiments.check import CheckResult, check_path, check_text
from experiments.eventlog import make_engine, upgrade
from experiments.model import Trial
from experiments.problems import Problem

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = [
    "DEMO_FILE",
    "DEMO_TRIAL",
    "STEPS",
    "DatabaseUrlError",
    "Demo",
    "LoadedTrial",
    "OpenedTrial",
    "ReasonRequired",
    "TrialRefused",
    "add_kiosk",
    "change_status",
    "close_trial",
    "load_trial_file",
    "load_trial_text",
    "open_event_log",
    "open_trial",
    "publish_results",
    "set_up_demo",
]

#: The example trial ``nudgelab serve --demo`` runs.
DEMO_TRIAL = "tearoom-return-info"
DEMO_FILE = Path(__file__).with_name("trials") / f"{DEMO_TRIAL}.yaml"


class DatabaseUrlError(Exception):
    """A database URL no engine can be made from: bad syntax, unknown database, missing driver."""


class TrialRefused(Exception):
    """A trial that cannot be used: a file with errors, or neither a file nor a loaded trial.

    ``problems`` are what the check found (errors and warnings), in the file's order.
    """

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class ReasonRequired(TrialRefused):
    """A new version of a started trial that changes its arms, materials, outcomes or analysis
    plan, loaded without a reason. ``changes`` names what changed."""

    def __init__(self, message: str, changes: Sequence[str]) -> None:
        super().__init__(message)
        self.changes = tuple(changes)


@dataclass(frozen=True)
class LoadedTrial:
    """A trial file stored as its trial's current version.

    ``new`` is false when exactly this text already was the current version. ``problems`` are
    the check's warnings; ``warnings`` what else the operator must know (a language the kiosk
    cannot show, a change to a trial that has started).
    """

    trial: Trial
    version: str
    new: bool
    problems: tuple[Problem, ...]
    warnings: tuple[str, ...]
    #: The amendment this load recorded (a new version of a started trial), or None.
    amendment: store.Amendment | None = None


@dataclass(frozen=True)
class OpenedTrial:
    """A trial to simulate or analyse, read from a file or from the event log.

    ``source`` is the file's text when the trial came from a file (a simulation loads it), else
    None. ``rule_errors`` are the rule errors that opening without ``strict`` let through.
    """

    trial: Trial
    source: str | None
    rule_errors: tuple[Problem, ...]


@dataclass(frozen=True)
class Demo:
    """The running example trial and the path (with its secret token) of a new kiosk."""

    loaded: LoadedTrial
    kiosk_path: str


@contextmanager
def open_event_log(url: str, *, upgrade_schema: bool = False) -> Iterator[Engine]:
    """An engine on the event log at ``url``, disposed on exit.

    ``upgrade_schema`` first creates the schema, or upgrades it to the newest migration. A URL
    no engine can be made from raises :class:`DatabaseUrlError`.
    """
    try:
        engine = make_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as error:
        raise DatabaseUrlError(str(error)) from error
    try:
        if upgrade_schema:
            upgrade(engine)
        yield engine
    finally:
        engine.dispose()


def load_trial_file(
    engine: Engine,
    path: str | Path,
    *,
    interface_languages: Collection[str],
    actor: store.Actor,
    reason: str | None = None,
) -> LoadedTrial:
    """Check the trial file at ``path`` and store it as its trial's current version.

    A file with any error is refused (:class:`TrialRefused`) and nothing is stored.
    ``interface_languages`` are the languages the kiosk has an interface translation for; a
    trial in another language is stored with a warning, as its kiosks would refuse to show it.
    See :func:`load_trial_text` for ``actor`` and ``reason``.
    """
    result = check_path(path)
    return _load_checked(
        engine, result, str(path), interface_languages=interface_languages, actor=actor,
        reason=reason,
    )  # fmt: skip


def load_trial_text(
    engine: Engine,
    source: str,
    name: str,
    *,
    interface_languages: Collection[str],
    actor: store.Actor,
    reason: str | None = None,
) -> LoadedTrial:
    """Check a trial file's text (``name``: what to call it in messages, e.g. the uploaded
    file's name) and store it as its trial's current version.

    A new version of a trial that has started is recorded as an amendment by ``actor`` with
    ``reason``; one that changes the arms, materials, outcomes or analysis plan is refused
    without a reason (:class:`ReasonRequired`). A closed trial is refused any new version.
    """
    result = check_text(source, name)
    return _load_checked(
        engine, result, name, interface_languages=interface_languages, actor=actor, reason=reason
    )


def _load_checked(
    engine: Engine,
    result: CheckResult,
    name: str,
    *,
    interface_languages: Collection[str],
    actor: store.Actor,
    reason: str | None,
) -> LoadedTrial:
    if not result.ok or result.trial is None:
        raise TrialRefused(
            f"refused {name}: {len(result.errors)} errors (fix them; `nudgelab check {name}` "
            "shows the same list)",
            result.problems,
        )
    trial = result.trial
    reason = (reason or "").strip() or None
    warnings = [
        _untranslated(language)
        for language in trial.languages
        if language not in interface_languages
    ]
    version = store.source_version(result.source)
    amendment = None
    with engine.begin() as conn:
        # Locked first: a start, close or another load of this trial waits for this one.
        before = store.lock_trial(conn, trial.id)
        new = before is None or before.current_version != version
        amending = new and before is not None and before.locked_version is not None
        changes: tuple[str, ...] = ()
        if amending:
            assert before is not None
            if before.status is store.TrialStatus.CLOSED:
                raise TrialRefused(f"trial {trial.id!r} is closed: its file can no longer change")
            changes = store.substantive_changes(store.current_trial(conn, before), trial)
            if changes and reason is None:
                raise ReasonRequired(
                    f"trial {trial.id!r} has started and this version changes its "
                    f"{', '.join(changes)}: give the reason for the amendment (--reason); it is "
                    "shown on the public register and listed in the report as a deviation",
                    changes,
                )
        before_locked = before.locked_version if before is not None else None
        store.load_trial(conn, trial, result.source)
        if amending:
            assert before is not None
            amendment = store.record_amendment(
                conn, trial.id, version, before.current_version, changes, reason, actor
            )
        elif new:
            store.audit(conn, actor, "trial.load", trial_id=trial.id, target=version)
    if amendment is not None and version != before_locked:
        warnings.append(
            f"trial {trial.id!r} has started; this version differs from the "
            "pre-registered one, and the report will list it as a deviation"
        )
    return LoadedTrial(trial, version, new, tuple(result.problems), tuple(warnings), amendment)


#: The lifecycle steps :func:`change_status` takes, by name.
STEPS = {
    "start": store.start_trial,
    "pause": store.pause_trial,
    "resume": store.resume_trial,
    "close": store.close_trial,
}


def change_status(
    engine: Engine, trial_id: str, step: str, actor: store.Actor
) -> store.TrialRecord:
    """Take one lifecycle step (``start``, ``pause``, ``resume``, ``close``) and audit it.

    Refused steps raise :class:`~experiments.store.TransitionRefused`."""
    with engine.begin() as conn:
        return STEPS[step](conn, trial_id, actor=actor)


def close_trial(
    engine: Engine,
    trial_id: str,
    actor: store.Actor,
    *,
    results_url: str | None = None,
    public_url: str | None = None,
) -> store.TrialRecord:
    """Close a trial and, with ``results_url``, publish where its results are, in one
    transaction (a bad address is refused before anything changes; see
    :func:`experiments.store.check_results_url`)."""
    if results_url is not None:
        store.check_results_url(results_url, public_url)
    with engine.begin() as conn:
        record = store.close_trial(conn, trial_id, actor=actor)
        if results_url is not None:
            record = store.publish_results(
                conn, trial_id, results_url, actor=actor, public_url=public_url
            )
        return record


def publish_results(
    engine: Engine,
    trial_id: str,
    url: str,
    actor: store.Actor,
    *,
    public_url: str | None = None,
) -> store.TrialRecord:
    """Set (or replace) the address of a closed trial's results, which the public register
    then links; audited as ``trial.publish``. Refused for a trial that is not closed
    (:class:`~experiments.store.TransitionRefused`) and for an address that is not ``https://``
    or a path under the platform's public address (:class:`~experiments.store.RecordingError`,
    field ``results_url``)."""
    with engine.begin() as conn:
        return store.publish_results(conn, trial_id, url, actor=actor, public_url=public_url)


def _untranslated(language: str) -> str:
    return (
        f"the kiosk has no interface translation for {language!r}, so its kiosks will "
        "refuse to show this trial (its disclosure names buttons that would not be there); "
        f"add app/translations/{language}/LC_MESSAGES/messages.po"
    )


def open_trial(spec: str, engine: Engine | None, *, strict: bool) -> OpenedTrial:
    """The trial ``spec`` names: a trial file, or the id of a trial loaded in ``engine``.

    A trial that does not parse is refused; so are rule errors when ``strict`` (a simulation
    writes new data). Otherwise rule errors come back in ``rule_errors``: analysing data that
    were collected already stays possible.
    """
    if Path(spec).is_file():
        result = check_path(spec)
        source: str | None = result.source
    else:
        stored = _stored_source(engine, spec) if engine is not None else None
        if stored is None:
            raise TrialRefused(
                f"{spec!r} is neither a trial file nor a trial loaded in the database"
            )
        result = check_text(stored, f"<{spec} as loaded>")
        source = None  # already stored: nothing to load
    if result.trial is None or (strict and result.errors):
        raise TrialRefused(
            f"{spec}: fix the trial file first ({len(result.errors)} errors)", result.problems
        )
    return OpenedTrial(result.trial, source, tuple(result.errors))


def _stored_source(engine: Engine, trial_id: str) -> str | None:
    """The text of the trial's current version, or None when it is not loaded."""
    with engine.connect() as conn:
        record = store.read_trial(conn, trial_id)
        if record is None:
            return None
        return store.version_source(conn, trial_id, record.current_version)


def add_kiosk(
    engine: Engine, trial_id: str, location: str, actor: store.Actor | None = None
) -> str:
    """Register a kiosk of a loaded trial at ``location``; the path of its welcome page.

    The path holds the kiosk's secret token, which is stored only as a hash: this is the one
    time it can be shown.
    """
    with engine.begin() as conn:
        trial = store.current_trial(conn, store.require_trial(conn, trial_id))
        _, token = store.register_kiosk(conn, trial, location, actor)
    return store.kiosk_path(trial_id, location, token)


def set_up_demo(
    engine: Engine, *, interface_languages: Collection[str], actor: store.Actor
) -> Demo:
    """Create or upgrade the schema, load and start the example trial, and add a kiosk.

    Safe to repeat: the same file is the same version, a running trial stays running (a
    paused one is resumed), and each call adds a kiosk at the trial's first location.
    """
    upgrade(engine)
    loaded = load_trial_file(
        engine, DEMO_FILE, interface_languages=interface_languages, actor=actor
    )
    trial_id = loaded.trial.id
    with engine.connect() as conn:
        status = store.require_trial(conn, trial_id).status
    if status is store.TrialStatus.DRAFT:
        change_status(engine, trial_id, "start", actor)
    elif status is store.TrialStatus.PAUSED:
        change_status(engine, trial_id, "resume", actor)
    return Demo(loaded, add_kiosk(engine, trial_id, loaded.trial.locations[0].id, actor))
