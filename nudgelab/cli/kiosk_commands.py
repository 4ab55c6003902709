"""`nudgelab` subcommands of the kiosk side: db, trial, kiosk and serve.

Each command imports ``app`` (and Flask) inside its function, so other commands start fast.
Every failure is printed as one line that says what to do, never as a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DEMO_TRIAL = "tearoom-return-info"
DB_OPTION = click.option(
    "--db",
    "db_url",
    metavar="URL",
    help="Database URL (default: NUDGELAB_DATABASE_URL, DATABASE_URL, or instance/nudgelab.db).",
)


def _friendly(command: F) -> F:
    """Turn the errors a user can cause into one clear line and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

        from app import StartupError
        from experiments.store import KioskError, RecordingError

        try:
            return command(*args, **kwargs)
        except (StartupError, KioskError) as error:
            raise click.ClickException(str(error)) from None
        except RecordingError as error:
            raise click.ClickException(error.message) from None
        except (ArgumentError, NoSuchModuleError) as error:
            raise click.ClickException(f"not a usable database URL: {error}") from None
        except DBAPIError as error:
            reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            raise click.ClickException(
                f"database error: {reason}. Is the database running, and has "
                "`nudgelab db upgrade` been run?"
            ) from None

    return wrapper  # type: ignore[return-value]


def _url(db_url: str | None) -> str:
    from app import configured_database_url

    return db_url or configured_database_url()


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _engine(url: str):  # type: ignore[no-untyped-def]
    from experiments.eventlog import make_engine

    return make_engine(url)


# -- db -----------------------------------------------------------------------------------


@click.group()
def db() -> None:
    """The event-log database."""


@db.command("upgrade")
@DB_OPTION
@_friendly
def db_upgrade(db_url: str | None) -> None:
    """Create the event-log schema, or upgrade it to the newest migration."""
    from experiments.eventlog import upgrade

    url = _url(db_url)
    upgrade(url)
    click.echo(f"database is up to date: {_shown(url)}")


# -- trial --------------------------------------------------------------------------------


@click.group()
def trial() -> None:
    """Load, start, stop and list trials."""


def load_checked(path: str | Path, url: str) -> tuple[str, str, bool]:
    """Check a trial file and store it; return (trial id, version, whether it was new).

    Prints the warnings; refuses (ClickException) a file with any error.
    """
    from app.i18n import catalogue_languages
    from experiments import store
    from experiments.check import check_path

    result = check_path(path)
    for problem in result.problems:
        click.echo(str(problem), err=True)
    if not result.ok or result.trial is None:
        raise click.ClickException(
            f"refused {path}: {len(result.errors)} errors (fix them; `nudgelab check {path}` "
            "shows the same list)"
        )
    loaded = result.trial
    for language in loaded.languages:
        if language not in catalogue_languages():
            click.echo(
                f"warning: the kiosk has no interface translation for {language!r}, so its "
                "kiosks will refuse to show this trial (its disclosure names buttons that "
                f"would not be there); add app/translations/{language}/LC_MESSAGES/messages.po",
                err=True,
            )
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            before = _state(conn, loaded.id)
            version = store.load_trial(conn, loaded, result.source)
            state = store.require_trial(conn, loaded.id)
    finally:
        engine.dispose()
    new = before is None or before.current_version != version
    if new and state.locked_version and state.locked_version != version:
        click.echo(
            f"warning: trial {loaded.id!r} has started; this version differs from the "
            "pre-registered one, and the report will list it as a deviation",
            err=True,
        )
    return loaded.id, version, new


def _state(conn, trial_id: str):  # type: ignore[no-untyped-def]
    from experiments import store

    try:
        return store.require_trial(conn, trial_id)
    except store.UnknownTrial:
        return None


@trial.command("load")
@click.argument("path", type=click.Path(dir_okay=False))
@DB_OPTION
@_friendly
def trial_load(path: str, db_url: str | None) -> None:
    """Check a trial file and store it; a file with errors is refused."""
    trial_id, version, new = load_checked(path, _url(db_url))
    what = "loaded" if new else "unchanged"
    click.echo(f"{what} {trial_id} (version {version[:12]})")


def _lifecycle(action: str, trial_id: str, db_url: str | None) -> None:
    from experiments import store

    engine = _engine(_url(db_url))
    try:
        with engine.begin() as conn:
            change = store.start_trial if action == "start" else store.stop_trial
            state = change(conn, trial_id)
    finally:
        engine.dispose()
    locked = f", pre-registered version {state.locked_version[:12]}" if state.locked_version else ""
    click.echo(f"{trial_id}: {state.status}{locked}")


@trial.command("start")
@click.argument("trial_id")
@DB_OPTION
@_friendly
def trial_start(trial_id: str, db_url: str | None) -> None:
    """Start a loaded trial (the first start locks its pre-registered version)."""
    _lifecycle("start", trial_id, db_url)


@trial.command("stop")
@click.argument("trial_id")
@DB_OPTION
@_friendly
def trial_stop(trial_id: str, db_url: str | None) -> None:
    """Stop a running trial: its kiosks stop starting visits."""
    _lifecycle("stop", trial_id, db_url)


@trial.command("list")
@DB_OPTION
@_friendly
def trial_list(db_url: str | None) -> None:
    """List the loaded trials with their status, version and number of kiosks."""
    from experiments import store

    engine = _engine(_url(db_url))
    try:
        with engine.connect() as conn:
            counts = store.active_kiosk_counts(conn)
            rows = store.list_trials(conn)
    finally:
        engine.dispose()
    if not rows:
        click.echo("no trials loaded; run `nudgelab trial load PATH`")
        return
    for row in rows:
        started = row.started_at.date().isoformat() if row.started_at else "-"
        click.echo(
            f"{row.id}  {row.status}  version {row.current_version[:12]}  "
            f"started {started}  kiosks {counts.get(row.id, 0)}"
        )


# -- kiosk --------------------------------------------------------------------------------


@click.group()
def kiosk() -> None:
    """Register kiosks."""


def add_kiosk(url: str, trial_id: str, location: str, base_url: str) -> str:
    """Register a kiosk and return its URL (the only time the token is shown)."""
    from experiments import store

    engine = _engine(url)
    try:
        with engine.begin() as conn:
            record = store.read_trial(conn, trial_id)
            if record is None:
                raise click.ClickException(
                    f"trial {trial_id!r} is not loaded; run `nudgelab trial load PATH` first"
                )
            _, token = store.register_kiosk(conn, store.current_trial(conn, record), location)
    finally:
        engine.dispose()
    return base_url.rstrip("/") + store.kiosk_path(trial_id, location, token)


@kiosk.command("add")
@click.option("--trial", "trial_id", required=True, help="The trial the kiosk shows.")
@click.option("--location", required=True, help="The location slug, as in the trial file.")
@click.option(
    "--base-url",
    default="http://127.0.0.1:5000",
    show_default=True,
    help="Where the kiosk reaches this server.",
)
@DB_OPTION
@_friendly
def kiosk_add(trial_id: str, location: str, base_url: str, db_url: str | None) -> None:
    """Register a kiosk and print its URL with its secret token (shown only now)."""
    kiosk_url = add_kiosk(_url(db_url), trial_id, location, base_url)
    click.echo(kiosk_url)
    click.echo("Open this URL in the kiosk's browser. Keep it secret: it is the kiosk's key.")


# -- serve --------------------------------------------------------------------------------


def demo_setup(url: str, base_url: str) -> str:
    """Upgrade the database, load and start the example trial, register a kiosk; its URL."""
    import experiments
    from experiments import store
    from experiments.eventlog import upgrade

    upgrade(url)
    path = Path(experiments.__file__).with_name("trials") / f"{DEMO_TRIAL}.yaml"
    trial_id, _, _ = load_checked(path, url)
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            if store.require_trial(conn, trial_id).status != "running":
                store.start_trial(conn, trial_id)
    finally:
        engine.dispose()
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            trial = store.current_trial(conn, store.require_trial(conn, trial_id))
            location = trial.locations[0].id
    finally:
        engine.dispose()
    return add_kiosk(url, trial_id, location, base_url)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 32))
@click.option(
    "--base-url",
    help="Where kiosks reach this server, for the printed URL (default: http://HOST:PORT).",
)
@click.option(
    "--demo",
    is_flag=True,
    help=f"Set up the database, load and start {DEMO_TRIAL}, register a kiosk, print its URL.",
)
@DB_OPTION
@_friendly
def serve(
    host: str, port: int, workers: int, base_url: str | None, demo: bool, db_url: str | None
) -> None:
    """Serve the kiosk app (and the public register at /register)."""
    from app import create_app
    from app.server import serve as run

    url = _url(db_url)
    overrides = {"DATABASE_URL": url}
    create_app(overrides)  # check the settings now, before the workers start
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base_url = (base_url or f"http://{shown_host}:{port}").rstrip("/")
    if demo:
        kiosk_url = demo_setup(url, base_url)
        click.echo(f"Demo: trial {DEMO_TRIAL} is running on {_shown(url)}.")
        click.echo(f"Kiosk URL (open it in a browser):\n\n    {kiosk_url}\n")
    click.echo(f"Public register: {base_url}/register   (Ctrl+C stops the server)")
    run(lambda: create_app(overrides), host, port, workers)


COMMANDS: list[click.Command] = [db, trial, kiosk, serve]
