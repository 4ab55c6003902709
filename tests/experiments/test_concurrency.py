"""What the console's core promises when two processes act on one trial or kiosk at once: each
test releases its threads together (each with its own connection and transaction) on SQLite and
PostgreSQL, and checks the database afterwards.

Some tests slow down :func:`experiments.store.trials.read_trial` so that every thread has read
the row before any writes: a step that acted on what it read (rather than on a locked row or a
guarded UPDATE) then goes wrong every time, not once in a while.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, func, select

from experiments import lifecycle, store
from experiments.eventlog import audit_log, trial_pauses
from tests.factories import trial_dict, trial_yaml

ACTOR = store.Actor("operator", "cli")
LANGUAGES = ("en", "ar")


def together(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions in threads released at once; each one's result or exception."""
    barrier = threading.Barrier(len(actions))

    def run(action: Callable[[], Any]) -> Any:
        barrier.wait()
        try:
            return action()
        except Exception as error:  # the caller checks which failed and why
            return error

    with ThreadPoolExecutor(len(actions)) as pool:
        return list(pool.map(run, actions))


def variant(title: str) -> str:
    """The test trial with another title in its first arm's English material."""
    data = trial_dict()
    data["arms"][0]["material"]["en"]["title"] = title
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@pytest.fixture
def slow_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    real = store.trials.read_trial

    def slow(conn, trial_id):  # type: ignore[no-untyped-def]
        record = real(conn, trial_id)
        time.sleep(0.3)
        return record

    monkeypatch.setattr(store.trials, "read_trial", slow)


def load(engine: Engine, source: str, reason: str | None = None) -> lifecycle.LoadedTrial:
    return lifecycle.load_trial_text(
        engine, source, "trial.yaml", interface_languages=LANGUAGES, actor=ACTOR, reason=reason
    )


def count(engine: Engine, table, *where) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_a_load_and_a_start_at_once_never_lock_a_stale_version(
    engine: Engine, slow_reads: None
) -> None:
    """Either the load comes first (the start locks the new version) or the start does (the
    load is an amendment, refused here without a reason). Before the fix the start locked the
    version it had read while the load replaced it without an amendment."""
    first = load(engine, trial_yaml())
    trial_id = first.trial.id
    results = together(
        lambda: lifecycle.change_status(engine, trial_id, "start", ACTOR),
        lambda: load(engine, variant("A new title")),
    )
    assert isinstance(results[0], store.TrialRecord), results
    with engine.connect() as conn:
        record = store.require_trial(conn, trial_id)
        amendments = store.read_amendments(conn, trial_id)
    if isinstance(results[1], lifecycle.ReasonRequired):  # the start came first
        assert record.locked_version == record.current_version == first.version
    else:
        assert isinstance(results[1], lifecycle.LoadedTrial), results
        assert record.current_version == results[1].version
        assert record.locked_version == results[1].version or [a.version for a in amendments] == [
            results[1].version
        ]


def test_two_amendments_at_once_form_one_chain(engine: Engine, slow_reads: None) -> None:
    """Each amendment names the version it replaced: the second names the first's, not the
    version both read before either wrote."""
    first = load(engine, trial_yaml())
    lifecycle.change_status(engine, first.trial.id, "start", ACTOR)
    results = together(
        lambda: load(engine, variant("Title one"), "reason one"),
        lambda: load(engine, variant("Title two"), "reason two"),
    )
    assert all(isinstance(result, lifecycle.LoadedTrial) for result in results), results
    with engine.connect() as conn:
        amendments = store.read_amendments(conn, first.trial.id)
        record = store.require_trial(conn, first.trial.id)
    assert len(amendments) == 2
    assert amendments[0].previous_version == first.version
    assert amendments[1].previous_version == amendments[0].version
    assert record.current_version == amendments[1].version


@pytest.mark.parametrize("step", ["pause", "close"])
def test_one_of_several_identical_steps_at_once_succeeds(engine: Engine, step: str) -> None:
    loaded = load(engine, trial_yaml())
    trial_id = loaded.trial.id
    lifecycle.change_status(engine, trial_id, "start", ACTOR)
    results = together(
        *(lambda: lifecycle.change_status(engine, trial_id, step, ACTOR) for _ in range(6))
    )
    done = [r for r in results if isinstance(r, store.TrialRecord)]
    refused = [r for r in results if isinstance(r, store.TransitionRefused)]
    assert (len(done), len(refused)) == (1, 5), results
    assert count(engine, audit_log, audit_log.c.action == f"trial.{step}") == 1
    if step == "pause":
        assert count(engine, trial_pauses) == 1


def test_a_pause_and_a_close_at_once_leave_no_open_pause(engine: Engine) -> None:
    loaded = load(engine, trial_yaml())
    trial_id = loaded.trial.id
    lifecycle.change_status(engine, trial_id, "start", ACTOR)
    together(
        lambda: lifecycle.change_status(engine, trial_id, "pause", ACTOR),
        lambda: lifecycle.change_status(engine, trial_id, "close", ACTOR),
    )
    with engine.connect() as conn:
        record = store.require_trial(conn, trial_id)
        pauses = store.read_pauses(conn, trial_id)
    assert record.status is store.TrialStatus.CLOSED
    assert all(pause.resumed_at is not None for pause in pauses), pauses


def test_a_kiosk_revoked_twice_at_once_is_revoked_once(engine: Engine) -> None:
    loaded = load(engine, trial_yaml())
    lifecycle.change_status(engine, loaded.trial.id, "start", ACTOR)
    path = lifecycle.add_kiosk(engine, loaded.trial.id, "loc-a", ACTOR)
    token = path.rstrip("/").rsplit("/", 1)[1]
    with engine.connect() as conn:
        (kiosk,) = store.list_kiosks(conn)

    def revoke() -> store.Kiosk:
        with engine.begin() as conn:
            return store.revoke_kiosk(conn, kiosk.id, ACTOR)

    def replace() -> tuple[store.Kiosk, str]:
        with engine.begin() as conn:
            return store.replace_token(conn, kiosk.id, ACTOR)

    results = together(revoke, revoke, revoke, replace)
    assert all(isinstance(r, store.Kiosk) for r in results[:3]), results
    assert count(engine, audit_log, audit_log.c.action == "kiosk.revoke") == 1
    with engine.connect() as conn:
        assert store.require_kiosk(conn, kiosk.id).state == "revoked"
        assert not store.find_kiosk(conn, token) or not store.find_kiosk(conn, token).active
        if isinstance(results[3], tuple):  # the new token came first: revoked with the kiosk
            found = store.find_kiosk(conn, results[3][1])
            assert found is not None and not found.active
        else:
            assert isinstance(results[3], store.KioskError), results[3]
