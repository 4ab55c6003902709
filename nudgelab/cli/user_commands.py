"""`nudgelab user`: console accounts (add, list, disable, enable, grant, revoke-access).

Every change is written to the audit log with the command line's user (``NUDGELAB_ACTOR``,
else the login name) as actor and ``cli`` as interface (:func:`cli_actor`).
"""

from __future__ import annotations

import getpass
import os
import sys
from typing import TYPE_CHECKING

import click

from nudgelab.cli.database import DB_OPTION, configured_url

if TYPE_CHECKING:
    from experiments.store import Actor

ROLES = ("researcher", "evaluator", "admin")


def cli_actor() -> Actor:
    """Who runs this command, for the audit log: ``NUDGELAB_ACTOR`` or the login name."""
    from experiments.store import Actor

    name = os.environ.get("NUDGELAB_ACTOR", "").strip()
    if not name:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (e.g. in a container)
            name = f"uid {os.getuid()}"
    return Actor(name, "cli")


@click.group()
def user() -> None:
    """Console accounts: researchers, evaluators and admins."""


@user.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the account may do.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (first line) instead of printing a one-time "
    "password.",
)
@DB_OPTION
def user_add(email: str, role: str, password_stdin: bool, db_url: str | None) -> None:
    """Create an account; prints a one-time password to change at the first sign-in."""
    from experiments import store
    from experiments.lifecycle import open_event_log

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        change_required = False
    else:
        password = store.new_password()
        change_required = True
    with open_event_log(configured_url(db_url)) as engine, engine.begin() as conn:
        created = store.add_user(
            conn, email, role, password, cli_actor(), change_required=change_required
        )
    click.echo(f"added {created.email} ({created.role})")
    if not password_stdin:
        click.echo(f"one-time password (shown only now; to be changed at sign-in): {password}")


@user.command("list")
@DB_OPTION
def user_list(db_url: str | None) -> None:
    """List the accounts with role, state and the trials each was added to."""
    from experiments import store
    from experiments.lifecycle import open_event_log

    with open_event_log(configured_url(db_url)) as engine, engine.connect() as conn:
        accounts = store.list_users(conn)
        now = store.utcnow()
        rows = []
        for account in accounts:
            state = "active" if account.active else "disabled"
            if account.locked(now):
                state += f", locked until {account.locked_until:%Y-%m-%d %H:%M} UTC"
            trials = store.trials_for(conn, account) if account.role == "researcher" else ["all"]
            rows.append(
                f"{account.email}  {account.role}  {state}  trials: {', '.join(trials) or '-'}"
            )
    if not rows:
        click.echo("no accounts; add one with `nudgelab user add EMAIL --role admin`")
    for row in rows:
        click.echo(row)


@user.command("disable")
@click.argument("email")
@DB_OPTION
def user_disable(email: str, db_url: str | None) -> None:
    """Disable an account: it can no longer sign in, and its sessions end."""
    _account_step(email, db_url, "disable_user", "disabled")


@user.command("enable")
@click.argument("email")
@DB_OPTION
def user_enable(email: str, db_url: str | None) -> None:
    """Enable a disabled account again."""
    _account_step(email, db_url, "enable_user", "enabled")


def _account_step(email: str, db_url: str | None, function: str, done: str) -> None:
    from experiments import store
    from experiments.lifecycle import open_event_log

    with open_event_log(configured_url(db_url)) as engine, engine.begin() as conn:
        changed = getattr(store, function)(conn, email, cli_actor())
    click.echo(f"{done} {changed.email}")


@user.command("grant")
@click.argument("email")
@click.argument("trial_id")
@DB_OPTION
def user_grant(email: str, trial_id: str, db_url: str | None) -> None:
    """Add an account to a trial (a researcher then sees and runs it in the console)."""
    from experiments import store
    from experiments.lifecycle import open_event_log

    with open_event_log(configured_url(db_url)) as engine, engine.begin() as conn:
        added = store.add_member(conn, trial_id, email, cli_actor())
    click.echo(f"{email} {'added to' if added else 'was already on'} {trial_id}")


@user.command("revoke-access")
@click.argument("email")
@click.argument("trial_id")
@DB_OPTION
def user_revoke_access(email: str, trial_id: str, db_url: str | None) -> None:
    """Remove an account from a trial."""
    from experiments import store
    from experiments.lifecycle import open_event_log

    with open_event_log(configured_url(db_url)) as engine, engine.begin() as conn:
        removed = store.remove_member(conn, trial_id, email, cli_actor())
    click.echo(f"{email} {'removed from' if removed else 'was not on'} {trial_id}")


COMMANDS: list[click.Command] = [user]
