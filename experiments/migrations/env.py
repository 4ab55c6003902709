"""Alembic environment: the schema is :data:`experiments.eventlog.metadata`.

Run through :func:`experiments.eventlog.upgrade` (``nudgelab db upgrade``), which passes an
open connection in ``config.attributes["connection"]``.
"""

from alembic import context
from sqlalchemy import engine_from_config, pool

from experiments.eventlog import include_in_comparison, metadata

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_in_comparison,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # plain `alembic` command line with sqlalchemy.url set
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.begin() as conn:
        _run(conn)
