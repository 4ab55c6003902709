"""The ``--db`` option: which database a command uses, and how its URL may be printed."""

from __future__ import annotations

import click

DB_OPTION = click.option(
    "--db",
    "db_url",
    metavar="URL",
    help="Database URL (default: NUDGELAB_DATABASE_URL, DATABASE_URL, or instance/nudgelab.db).",
)


def configured_url(db_url: str | None) -> str:
    """``--db`` when given, else the database the kiosk app is configured to use."""
    from app import configured_database_url

    return db_url or configured_database_url()


def shown(url: str) -> str:
    """The URL as it may be printed: without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
