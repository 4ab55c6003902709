"""`nudgelab` subcommands of the kiosk side: db, trial, kiosk and serve.

Every command that changes something writes an audit entry with :func:`cli_actor` as actor.

Each command imports ``app`` (and Flask) inside its function, so other commands start fast.
The steps themselves are :mod:`experiments.lifecycle`'s; errors become one line in
:mod:`nudgelab.cli.errors`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from nudgelab.cli.database import DB_OPTION, configured_url, shown
from nudgelab.cli.user_commands import cli_actor

if TYPE_CHECKING:
    from experiments.lifecycle import LoadedTrial

#: experiments.lifecycle.DEMO_TRIAL, for the help text (importing it would load SQLAlchemy).
DEMO_TRIAL = "tearoom-return-info"
#: experiments.opening_hours.DEFAULT, for the help text.
OPENING_HOURS_DEFAULT = "mon-fri 09:00-17:00 Europe/Amsterdam"


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
    """Load, start, pause, resume, close and list trials (draft → running ⇄ paused → closed)."""


@trial.command("load")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--reason",
    help="Why a trial that has started is amended (required when the new version changes its "
    "arms, materials, outcomes or analysis plan); shown on the register and in the report.",
)
@DB_OPTION
def trial_load(path: str, reason: str | None, db_url: str | None) -> None:
    """Check a trial file and store it; a file with errors is refused."""
    from experiments.lifecycle import load_trial_file, open_event_log

    with open_event_log(configured_url(db_url)) as engine:
        loaded = load_trial_file(
            engine,
            path,
            interface_languages=_interface_languages(),
            actor=cli_actor(),
            reason=reason,
        )
    _warn(loaded)
    what = "loaded" if loaded.new else "unchanged"
    click.echo(f"{what} {loaded.trial.id} (version {loaded.version[:12]})")
    if loaded.amendment is not None:
        changes = ", ".join(loaded.amendment.changes)
        click.echo(f"amendment recorded: {changes}; reason: {loaded.amendment.reason or '-'}")


@trial.command("start")
@click.argument("trial_id")
@DB_OPTION
def trial_start(trial_id: str, db_url: str | None) -> None:
    """Start a draft trial: locks its pre-registered version (hash and time are printed)."""
    _change_status("start", trial_id, db_url)


@trial.command("pause")
@click.argument("trial_id")
@DB_OPTION
def trial_pause(trial_id: str, db_url: str | None) -> None:
    """Pause a running trial: kiosks show the control arm's plain information with the
    disclosure, randomize nobody and store nothing for the trial."""
    _change_status("pause", trial_id, db_url)


@trial.command("resume")
@click.argument("trial_id")
@DB_OPTION
def trial_resume(trial_id: str, db_url: str | None) -> None:
    """Resume a paused trial."""
    _change_status("resume", trial_id, db_url)


@trial.command("close")
@click.argument("trial_id")
@click.option(
    "--results-url",
    help="Where the results are published (https://…, or a path under NUDGELAB_PUBLIC_URL); "
    "the public register links it. Can be set later with `trial publish`.",
)
@DB_OPTION
def trial_close(trial_id: str, results_url: str | None, db_url: str | None) -> None:
    """Close a running or paused trial for good: kiosks stop; results may be released."""
    if results_url is None:
        _change_status("close", trial_id, db_url)
        return
    from experiments.lifecycle import close_trial, open_event_log

    with open_event_log(configured_url(db_url)) as engine:
        record = close_trial(
            engine, trial_id, cli_actor(), results_url=results_url, public_url=_public_url()
        )
    click.echo(f"{trial_id}: {record.status}; the register links {record.results_url}")


@trial.command("publish")
@click.argument("trial_id")
@click.argument("url")
@DB_OPTION
def trial_publish(trial_id: str, url: str, db_url: str | None) -> None:
    """Publish where a closed trial's results are (https://…, or a path under
    NUDGELAB_PUBLIC_URL): the public register links it. A new address replaces the old."""
    from experiments.lifecycle import open_event_log, publish_results

    with open_event_log(configured_url(db_url)) as engine:
        record = publish_results(engine, trial_id, url, cli_actor(), public_url=_public_url())
    click.echo(f"{trial_id}: the register links {record.results_url}")


def _public_url() -> str | None:
    """The platform's public address (``NUDGELAB_PUBLIC_URL``), if set."""
    return os.environ.get("NUDGELAB_PUBLIC_URL", "").strip() or None


@trial.command("stop")
@click.argument("trial_id")
@DB_OPTION
def trial_stop(trial_id: str, db_url: str | None) -> None:
    """Same as `trial close` (kept for scripts): ends the trial for good. To interrupt it
    for a while, use `trial pause`."""
    _change_status("close", trial_id, db_url)


def _change_status(step: str, trial_id: str, db_url: str | None) -> None:
    from experiments.lifecycle import change_status, open_event_log

    with open_event_log(configured_url(db_url)) as engine:
        record = change_status(engine, trial_id, step, cli_actor())
    click.echo(f"{trial_id}: {record.status}")
    if step == "start" and record.locked_version and record.locked_at:
        click.echo(
            f"pre-registered version {record.locked_version} "
            f"(locked {record.locked_at:%Y-%m-%d %H:%M:%S} UTC)"
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
    """Register, list, switch off and on, revoke kiosks and replace their tokens."""


BASE_URL_OPTION = click.option(
    "--base-url",
    default="http://127.0.0.1:5000",
    show_default=True,
    help="Where the kiosk reaches this server.",
)


def _print_url(base_url: str, path: str) -> None:
    click.echo(base_url.rstrip("/") + path)
    click.echo("Open this URL in the kiosk's browser. Keep it secret: it is the kiosk's key.")


@kiosk.command("add")
@click.option("--trial", "trial_id", required=True, help="The trial the kiosk shows.")
@click.option("--location", required=True, help="The location slug, as in the trial file.")
@BASE_URL_OPTION
@DB_OPTION
def kiosk_add(trial_id: str, location: str, base_url: str, db_url: str | None) -> None:
    """Register a kiosk and print its URL with its secret token (shown only now)."""
    from experiments.lifecycle import add_kiosk, open_event_log

    with open_event_log(configured_url(db_url)) as engine:
        path = add_kiosk(engine, trial_id, location, cli_actor())
    _print_url(base_url, path)


@kiosk.command("list")
@click.option("--trial", "trial_id", help="Only this trial's kiosks.")
@click.option("--location", help="Only the kiosks at this location.")
@click.option(
    "--silent-after",
    default=120,
    show_default=True,
    envvar="NUDGELAB_SILENT_KIOSK_MINUTES",
    show_envvar=True,
    type=click.IntRange(1),
    help="Minutes of opening hours without contact after which a kiosk is flagged silent.",
)
@click.option(
    "--hours",
    default=OPENING_HOURS_DEFAULT,
    show_default=True,
    envvar="NUDGELAB_OPENING_HOURS",
    show_envvar=True,
    help="Opening hours in which kiosks should be heard: days, hours, time zone "
    "(overnight when they close before they open, e.g. 'daily 20:00-02:00 UTC').",
)
@DB_OPTION
def kiosk_list(
    trial_id: str | None, location: str | None, silent_after: int, hours: str, db_url: str | None
) -> None:
    """List kiosks by trial and location: state (active, off, revoked), last contact, and
    SILENT for a switched-on kiosk of a running or paused trial not heard from for too long."""
    from datetime import timedelta

    from experiments import store
    from experiments.lifecycle import open_event_log
    from experiments.monitoring import MonitorSettings, kiosk_contacts

    settings = MonitorSettings(
        silent_after=timedelta(minutes=silent_after), opening=_opening_hours(hours)
    )
    with open_event_log(configured_url(db_url)) as engine, engine.connect() as conn:
        records = [store.require_trial(conn, trial_id)] if trial_id else store.list_trials(conn)
        lines = []
        for record in records:
            contacts = kiosk_contacts(conn, record.id, settings=settings, serving=record.serving)
            for contact in contacts:
                if location and contact.location != location:
                    continue
                seen = (
                    f"{contact.last_seen_at:%Y-%m-%d %H:%M} UTC"
                    if contact.last_seen_at
                    else "never"
                )
                flag = "  SILENT" if contact.silent else ""
                lines.append(
                    f"{contact.id}  {record.id}  {contact.location}  {contact.state}  "
                    f"last contact {seen}{flag}"
                )
    if not lines:
        click.echo("no kiosks; add one with `nudgelab kiosk add --trial ID --location SLUG`")
    for line in lines:
        click.echo(line)


def _opening_hours(hours: str):  # type: ignore[no-untyped-def]
    from experiments.opening_hours import OpeningHours, OpeningHoursError

    try:
        return OpeningHours.parse(hours)
    except OpeningHoursError as error:
        raise click.BadParameter(str(error), param_hint="--hours") from None


@kiosk.command("off")
@click.argument("kiosk_id")
@DB_OPTION
def kiosk_off(kiosk_id: str, db_url: str | None) -> None:
    """Switch a kiosk off: its pages and API answer 403 until it is switched on."""
    _kiosk_step(kiosk_id, db_url, on=False)


@kiosk.command("on")
@click.argument("kiosk_id")
@DB_OPTION
def kiosk_on(kiosk_id: str, db_url: str | None) -> None:
    """Switch a kiosk on again (not a revoked one)."""
    _kiosk_step(kiosk_id, db_url, on=True)


def _kiosk_step(kiosk_id: str, db_url: str | None, *, on: bool) -> None:
    from experiments import store
    from experiments.lifecycle import open_event_log

    with open_event_log(configured_url(db_url)) as engine, engine.begin() as conn:
        changed = store.switch_kiosk(conn, kiosk_id, on, cli_actor())
    click.echo(f"kiosk {changed.id} ({changed.trial_id}, {changed.location}): {changed.state}")


@kiosk.command("revoke")
@click.argument("kiosk_id")
@DB_OPTION
def kiosk_revoke(kiosk_id: str, db_url: str | None) -> None:
    """Revoke a kiosk for good: its token stops working with the next request."""
    from experiments import store
    from experiments.lifecycle import open_event_log

    with open_event_log(configured_url(db_url)) as engine, engine.begin() as conn:
        revoked = store.revoke_kiosk(conn, kiosk_id, cli_actor())
    click.echo(f"kiosk {revoked.id} ({revoked.trial_id}, {revoked.location}): {revoked.state}")


@kiosk.command("replace")
@click.argument("kiosk_id")
@BASE_URL_OPTION
@DB_OPTION
def kiosk_replace(kiosk_id: str, base_url: str, db_url: str | None) -> None:
    """Give a kiosk a new token and print its new URL; the old URL stops working at once."""
    from experiments import store
    from experiments.lifecycle import open_event_log

    with open_event_log(configured_url(db_url)) as engine, engine.begin() as conn:
        replaced, token = store.replace_token(conn, kiosk_id, cli_actor())
    _print_url(base_url, store.kiosk_path(replaced.trial_id, replaced.location, token))


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
@click.option(
    "--behind-proxy",
    is_flag=True,
    help="Served through a front server (deploy/, docs/deploy.md): trust X-Forwarded-For and "
    "X-Forwarded-Proto from its address only (NUDGELAB_TRUSTED_PROXIES; default 127.0.0.1,::1, "
    "a front server on this machine).",
)
@DB_OPTION
def serve(
    host: str,
    port: int,
    workers: int,
    base_url: str | None,
    demo: bool,
    behind_proxy: bool,
    db_url: str | None,
) -> None:
    """Serve the kiosk app (and the public register at /register)."""
    from app import create_app
    from app.proxy import LOCAL_PROXY, forwarded_allow_ips
    from app.server import serve as run
    from experiments.lifecycle import open_event_log, set_up_demo
    from nudgelab.results import create_console_app

    url = configured_url(db_url)
    overrides: dict[str, object] = {"DATABASE_URL": url}
    if base_url:
        overrides["PUBLIC_URL"] = base_url.rstrip("/")
    checked = create_app(overrides)  # check the settings now, before the workers start
    proxies = checked.config["TRUSTED_PROXIES"]
    if behind_proxy and not proxies:
        overrides["TRUSTED_PROXIES"] = proxies = LOCAL_PROXY
    trusted = forwarded_allow_ips(proxies)
    if proxies == LOCAL_PROXY and host not in ("127.0.0.1", "::1", "localhost"):
        click.echo(
            f"warning: the front server is on this machine, but --host {host} lets clients "
            "bypass it: listen on 127.0.0.1",
            err=True,
        )
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base_url = (base_url or f"http://{shown_host}:{port}").rstrip("/")
    if demo:
        with open_event_log(url) as engine:
            set_up = set_up_demo(
                engine, interface_languages=_interface_languages(), actor=cli_actor()
            )
        _warn(set_up.loaded)
        click.echo(f"Demo: trial {set_up.loaded.trial.id} is running on {shown(url)}.")
        click.echo(f"Kiosk URL (open it in a browser):\n\n    {base_url}{set_up.kiosk_path}\n")
        database = f" --db {db_url}" if db_url else ""
        click.echo(
            f"Research console: {base_url}/console/\n"
            "Create its first account (an admin; the command prints a one-time password):\n\n"
            f"    nudgelab user add you@example.org --role admin{database}\n"
        )
    click.echo(f"Public register: {base_url}/register   (Ctrl+C stops the server)")
    run(lambda: create_console_app(overrides), host, port, workers, trusted_proxies=trusted)


COMMANDS: list[click.Command] = [db, trial, kiosk, serve]
