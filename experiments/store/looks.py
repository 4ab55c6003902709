"""Looks at the results: each analysis or export of outcome counts is recorded and counted."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from experiments.eventlog import result_looks
from experiments.store.sql import aware


def record_look(
    conn: Connection, trial_id: str, data_hash: str, when: datetime, kind: str = "analyze"
) -> None:
    """Count one more look at the results (``kind``: ``analyze`` or ``export``)."""
    conn.execute(
        insert(result_looks).values(
            trial_id=trial_id, looked_at=when, data_hash=data_hash, kind=kind
        )
    )


def look_times(conn: Connection, trial_id: str) -> tuple[datetime, ...]:
    """When the results were looked at, oldest first (aware, UTC)."""
    rows = conn.execute(
        select(result_looks.c.looked_at)
        .where(result_looks.c.trial_id == trial_id)
        .order_by(result_looks.c.looked_at)
    ).scalars()
    return tuple(aware(moment) for moment in rows)  # type: ignore[misc]
