"""`nudgelab` subcommands of the kiosk side: db, trial, kiosk and serve.

Each command imports ``app`` (and Flask) inside its function, so other commands start fast.
The steps themselves are :mod:`experiments.lifecycle`'s; errors become one line in
:mod:`nudgelab.cli.errors`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from nudgelab.cli.database import DB_OPTION, configured_url, shown

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Connection

    from experiments.lifecycle import LoadedTrial
    from experiments.store import TrialRecord

#: experiments.lifecycle.DEMO_TRIAL, for the help text (importing it would load SQLAlchemy).
DEMO_TRIAL = "tearoom-return-info"


def _interface_languages() -> list[str]:
    from app.i18n import catalogue_languages

    return catalogue_languages()


def _warn(loaded: LoadedTrial) -> None:
    for problem in loaded.problems:
        click.echo(str(problem), err=True)
    for warning in loaded.warnings:
        click.echo(f"warning: {warning}", err=True)


# -- db -----------------------------------------------------------------------------------


@click.group()
def db() -> None:
    """The event-log database."""


@db.command("upgrade")
@DB_OPTION
def db_upgrade(db_url: str | None) -> None:
    """Create the event-log schema, or upgrade it to the newest migration."""
    from experiments.lifecycle import open_event_log

    url = configured_url(db_url)
    with open_event_log(url, upgrade_schema=True):
        click.echo(f"database is up to date: {shown(url)}")


# -- trial --------------------------------------------------------------------------------


@click.group()
def trial() -> None:
    """Load, start, stop and list trials."""


@trial.command("load")
@click.argument("path", type=click.Path(dir_okay=False))
@DB_OPTION
def trial_load(path: str, db_url: str | None) -> None:
    """Check a trial file and store it; a file with errors is refused."""
    from experiments.lifecycle import load_trial_file, open_event_log

    with open_event_log(configured_url(db_url)) as engine:
        loaded = load_trial_file(engine, path, interface_languages=_interface_languages())
    _warn(loaded)
    what = "loaded" if loaded.new else "unchanged"
    click.echo(f"{what} {loaded.trial.id} (version {loaded.version[:12]})")


@trial.command("start")
@click.argument("trial_id")
@DB_OPTION
def trial_start(trial_id: str, db_url: str | None) -> None:
    """Start a loaded trial (the first start locks its pre-registered version)."""
    from experiments.store import start_trial

    _change_status(start_trial, trial_id, db_url)


@trial.command("stop")
@click.argument("trial_id")
@DB_OPTION
def trial_stop(trial_id: str, db_url: str | None) -> None:
    """Stop a running trial: its kiosks stop starting visits."""
    from experiments.store import stop_trial

    _change_status(stop_trial, trial_id, db_url)


def _change_status(
    change: Callable[[Connection, str], TrialRecord], trial_id: str, db_url: str | None
) -> None:
    from experiments.lifecycle import open_event_log

    with open_event_log(configured_url(db_url)) as engine, engine.begin() as conn:
        record = change(conn, trial_id)
    locked = record.locked_version
    click.echo(
        f"{trial_id}: {record.status}"
        + (f", pre-registered version {locked[:12]}" if locked else "")
    )


@trial.command("list")
@DB_OPTION
def trial_list(db_url: str | None) -> None:
    """List the loaded trials with their status, version and number of kiosks."""
    from experiments import store
    from experiments.lifecycle import open_event_log

    with open_event_log(configured_url(db_url)) as engine, engine.connect() as conn:
        kiosks = store.active_kiosk_counts(conn)
        records = store.list_trials(conn)
    if not records:
        click.echo("no trials loaded; run `nudgelab trial load PATH`")
    for record in records:
        started = record.started_at.date().isoformat() if record.started_at else "-"
        click.echo(
            f"{record.id}  {record.status}  version {record.current_version[:12]}  "
            f"started {started}  kiosks {kiosks.get(record.id, 0)}"
        )


# -- kiosk --------------------------------------------------------------------------------


@click.group()
def kiosk() -> None:
    """Register kiosks."""


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
def kiosk_add(trial_id: str, location: str, base_url: str, db_url: str | None) -> None:
    """Register a kiosk and print its URL with its secret token (shown only now)."""
    from experiments.lifecycle import add_kiosk, open_event_log

    with open_event_log(configured_url(db_url)) as engine:
        path = add_kiosk(engine, trial_id, location)
    click.echo(base_url.rstrip("/") + path)
    click.echo("Open this URL in the kiosk's browser. Keep it secret: it is the kiosk's key.")


# -- serve --------------------------------------------------------------------------------


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 32))
@click.option(
    "--base-url",
    help="The public address of this server (e.g. https://nudgelab.example.org): printed with "
    "the kiosk URL, and the address under which visitors and readers are told where the "
    "register is (NUDGELAB_PUBLIC_URL; default: http://HOST:PORT for the printed URL only).",
)
@click.option(
    "--demo",
    is_flag=True,
    help=f"Set up the database, load and start {DEMO_TRIAL}, register a kiosk, print its URL.",
)
@DB_OPTION
def serve(
    host: str, port: int, workers: int, base_url: str | None, demo: bool, db_url: str | None
) -> None:
    """Serve the kiosk app (and the public register at /register)."""
    from app import create_app
    from app.server import serve as run
    from experiments.lifecycle import open_event_log, set_up_demo

    url = configured_url(db_url)
    overrides: dict[str, object] = {"DATABASE_URL": url}
    if base_url:
        overrides["PUBLIC_URL"] = base_url.rstrip("/")
    create_app(overrides)  # check the settings now, before the workers start
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base_url = (base_url or f"http://{shown_host}:{port}").rstrip("/")
    if demo:
        with open_event_log(url) as engine:
            set_up = set_up_demo(engine, interface_languages=_interface_languages())
        _warn(set_up.loaded)
        click.echo(f"Demo: trial {set_up.loaded.trial.id} is running on {shown(url)}.")
        click.echo(f"Kiosk URL (open it in a browser):\n\n    {base_url}{set_up.kiosk_path}\n")
    click.echo(f"Public register: {base_url}/register   (Ctrl+C stops the server)")
    run(lambda: create_app(overrides), host, port, workers)


COMMANDS: list[click.Command] = [db, trial, kiosk, serve]
