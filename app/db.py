"""The one module that owns the database: an engine per app, a connection per request.

Views call :func:`get_connection`; the first call opens a connection (and with it a
transaction), a view that writes calls :func:`commit` before it answers, and the teardown rolls
back whatever was not committed and closes the connection. Blueprints never build engines.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine

from experiments.eventlog import make_engine

ENGINE_KEY = "nudgelab.engine"


def init_app(app: Flask) -> None:
    """Create the app's engine (no connection is made yet) and register the teardown.

    Pooled connections are not pinged before use (``pool_pre_ping`` would cost a round trip
    per request): a connection the database dropped, e.g. in a restart, fails its request with
    a 503 (:mod:`app.errors`), SQLAlchemy then replaces every pooled connection, and the kiosk
    resends what was not acknowledged. Nothing is acknowledged before its commit.
    """
    options: dict[str, object] = {}
    if app.config["DATABASE_URL"].startswith("postgresql"):
        options["pool_size"] = 10
    app.extensions[ENGINE_KEY] = make_engine(app.config["DATABASE_URL"], **options)
    app.teardown_appcontext(close_connection)


def get_engine(app: Flask | None = None) -> Engine:
    return (app or current_app).extensions[ENGINE_KEY]


def get_connection() -> Connection:
    """The request's connection, opened on first use."""
    if "db" not in g:
        g.db = get_engine().connect()
    return g.db


def commit() -> None:
    """Commit the request's writes; call it before building the response."""
    if "db" in g:
        g.db.commit()


def close_connection(_error: BaseException | None = None) -> None:
    connection: Connection | None = g.pop("db", None)
    if connection is not None:
        try:
            if connection.in_transaction():
                connection.rollback()
        finally:
            connection.close()


def dispose(app: Flask) -> None:
    """Close every pooled connection of ``app`` (tests and shutdown)."""
    get_engine(app).dispose()
