"""``visits.arm`` and ``visits.signature`` are kept by the database (migration 0006): after any
write of an assignment or an event, by the store or by hand-written SQL, they equal what a
plain recount of the raw rows gives, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection, Engine, delete, insert, select, update

from analysis.visit_classes import encode_signature
from experiments import store
from experiments.eventlog import assignments, events, visits
from tests.factories import race_events, running_trial_visits


def recount(conn: Connection) -> dict[str, tuple[str | None, str | None]]:
    """Each visit's (arm, signature) from the raw assignments and events rows, in Python."""
    arms = dict(conn.execute(select(assignments.c.visit_id, assignments.c.arm)).all())
    shown = (events.c.language, events.c.disclosure_version, events.c.material_version)
    by_visit: defaultdict[str, list[tuple[str, str | None, str | None, str | None]]]
    by_visit = defaultdict(list)
    for visit_id, *event in conn.execute(select(events.c.visit_id, events.c.type, *shown)):
        by_visit[visit_id].append(tuple(event))  # type: ignore[arg-type]
    return {
        visit: (arms.get(visit), encode_signature(by_visit.get(visit, ())))
        for visit in conn.execute(select(visits.c.id)).scalars()
    }


def kept(conn: Connection) -> dict[str, tuple[str | None, str | None]]:
    rows = conn.execute(select(visits.c.id, visits.c.arm, visits.c.signature)).all()
    return {visit: (arm, signature) for visit, arm, signature in rows}


def test_arm_and_signature_follow_every_write(engine: Engine) -> None:
    with engine.begin() as conn:
        trial, started = running_trial_visits(conn, 6, seed=5)
        assert kept(conn) == recount(conn)
        assert {arm for arm, _ in kept(conn).values()} <= {arm.id for arm in trial.arms}
        assert all(signature is None for _, signature in kept(conn).values())
    ids = [visit.id for visit in started]

    def spec(number: int, kind: str, key: str, **shown: str) -> store.EventSpec:
        return store.EventSpec(ids[number], kind, key, **shown)

    with engine.begin() as conn:
        store.record_events(
            conn,
            trial,
            [
                spec(
                    0,
                    "exposure",
                    "a",
                    language="en",
                    material_version="m1",
                    disclosure_version="d1",
                ),
                spec(0, "contact_requested", "b"),
                spec(0, "finish", "c"),  # changes no figure: not in the signature
                spec(1, "exposure", "d", language="ar"),  # versions missing: empty fields
                spec(1, "exposure", "e", language="en", material_version="m1"),
                spec(2, "country_info_opened", "f"),
                spec(2, "contact_requested", "g"),
                spec(3, "timeout", "h"),
            ],
        )
        assert kept(conn) == recount(conn)
        signature = kept(conn)[ids[0]][1]
        assert signature == "contact_requested\x1ex\x1f=en\x1f=d1\x1f=m1"
        assert kept(conn)[ids[3]][1] is None
    with engine.begin() as conn:  # the opt-out deletes the visit's outcome events
        store.record_events(conn, trial, [spec(2, "opt_out", "i")])
        assert kept(conn)[ids[2]][1] == "opt_out"
        assert kept(conn) == recount(conn)
    with engine.begin() as conn:  # hand-written repairs: updates and deletes of any row
        conn.execute(update(events).where(events.c.idempotency_key == "b").values(visit_id=ids[4]))
        conn.execute(update(events).where(events.c.idempotency_key == "d").values(language="xx"))
        conn.execute(delete(events).where(events.c.idempotency_key == "e"))
        conn.execute(delete(assignments).where(assignments.c.visit_id == ids[5]))
        other = next(arm.id for arm in trial.arms if arm.id != kept(conn)[ids[1]][0])
        conn.execute(update(assignments).where(assignments.c.visit_id == ids[1]).values(arm=other))
        assert kept(conn)[ids[5]][0] is None and kept(conn)[ids[1]][0] == other
        assert kept(conn)[ids[0]][1] == "x\x1f=en\x1f=d1\x1f=m1"
        assert kept(conn) == recount(conn)
    with engine.begin() as conn:  # a new assignment by hand
        row = conn.execute(select(assignments).where(assignments.c.visit_id == ids[1])).one()
        conn.execute(
            insert(assignments).values({**row._asdict(), "visit_id": ids[5], "arm": other})
        )
        conn.execute(delete(events).where(events.c.visit_id == ids[1]))
        assert kept(conn)[ids[5]][0] == other and kept(conn)[ids[1]][1] is None
        assert kept(conn) == recount(conn)


def test_downgrade_removes_the_summaries_and_upgrade_rebuilds_them(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import inspect

    from experiments.eventlog import MIGRATIONS_DIR, upgrade

    with engine.begin() as conn:
        trial, started = running_trial_visits(conn, 4, seed=2, exposed=True)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0005")
    with engine.begin() as conn:
        assert {"arm", "signature"}.isdisjoint(
            c["name"] for c in inspect(conn).get_columns("visits")
        )
        # Without the triggers, writes go on as before 0006.
        store.record_events(conn, trial, [store.EventSpec(started[0].id, "finish", "f", "en")])
    upgrade(engine)
    with engine.connect() as conn:
        assert kept(conn) == recount(conn)
        assert all(arm is not None and signature for arm, signature in kept(conn).values())


def test_concurrent_events_of_one_visit_all_reach_its_signature(engine: Engine) -> None:
    """Events of the same visit written at the same moment by several transactions: each
    trigger rewrites the signature after the others' events are committed, so none is lost
    (PostgreSQL: a statement's snapshot taken before another's commit would miss it)."""
    import threading

    with engine.begin() as conn:
        trial, started = running_trial_visits(conn, 12, seed=7)
    kinds = sorted(trial.outcome_events | {"exposure"})
    failures: list[BaseException] = []

    def send(visit_id: str, kind: str, barrier: threading.Barrier) -> None:
        try:
            barrier.wait(timeout=10)
            with engine.connect() as conn:
                spec = store.EventSpec(visit_id, kind, f"{kind}-{visit_id}", "en")
                store.record_events(conn, trial, [spec])
                conn.commit()
        except BaseException as error:  # collected and re-raised in the main thread
            failures.append(error)

    race_events([visit.id for visit in started], kinds, send)
    assert failures == []
    with engine.connect() as conn:
        assert kept(conn) == recount(conn)
        assert all(signature is not None for _, signature in kept(conn).values())
