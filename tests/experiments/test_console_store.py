"""The console's core in the store, on SQLite and PostgreSQL: accounts and sign-in, membership,
the lifecycle with its pauses, amendments, kiosks and the append-only audit log."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import DBAPIError

from experiments import store
from experiments.eventlog import audit_log, kiosks, trial_amendments, trial_pauses, users
from experiments.model import Trial
from tests.factories import make_trial, trial_yaml

ADMIN = store.Actor("admin@example.org", "console")
CLI = store.Actor("operator", "cli")
PASSWORD = "a long enough password"
NOW = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)


@pytest.fixture
def loaded(engine: Engine, trial: Trial) -> Trial:
    with engine.begin() as conn:
        store.load_trial(conn, trial, trial_yaml())
    return trial


def actions(engine: Engine, trial_id: str | None = None) -> list[tuple[str, str, str | None]]:
    with engine.connect() as conn:
        return [(e.action, e.interface, e.target) for e in store.read_audit(conn, trial_id)]


# -- accounts ----------------------------------------------------------------------------------


def test_an_account_stores_an_argon2_hash_and_signs_in(engine: Engine) -> None:
    with engine.begin() as conn:
        user = store.add_user(conn, " Res@Example.ORG ", "researcher", PASSWORD, ADMIN)
    assert (user.email, user.role, user.active, user.password_change_required) == (
        "res@example.org",
        store.Role.RESEARCHER,
        True,
        True,
    )
    with engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)  # an independent check of the hash
    with engine.begin() as conn:
        signed_in = store.authenticate(conn, "RES@example.org", PASSWORD, NOW)
    assert signed_in.ok and signed_in.user is not None and signed_in.user.id == user.id
    assert actions(engine) == [("user.add", "console", "res@example.org")]


@pytest.mark.parametrize(
    ("email", "role", "password", "field"),
    [
        ("not an address", "admin", PASSWORD, "email"),
        ("a@example.org", "boss", PASSWORD, "role"),
        ("a@example.org", "admin", "short", "password"),
    ],
)
def test_a_bad_account_is_refused(
    engine: Engine, email: str, role: str, password: str, field: str
) -> None:
    with engine.begin() as conn, pytest.raises(store.AccountError) as refused:
        store.add_user(conn, email, role, password, ADMIN)
    assert refused.value.field == field
    with engine.connect() as conn:
        assert store.list_users(conn) == []


def test_the_same_address_twice_is_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        store.add_user(conn, "a@example.org", "admin", PASSWORD, CLI)
    with engine.begin() as conn, pytest.raises(store.AccountError, match="exists already"):
        store.add_user(conn, "A@example.org", "evaluator", PASSWORD, CLI)


def test_failed_sign_ins_lock_the_account_and_the_lock_expires(engine: Engine) -> None:
    with engine.begin() as conn:
        store.add_user(conn, "a@example.org", "admin", PASSWORD, CLI)
    answers = []
    for _ in range(store.users.MAX_FAILED_ATTEMPTS):
        with engine.begin() as conn:
            answers.append(store.authenticate(conn, "a@example.org", "wrong", NOW))
    assert [a.reason for a in answers] == ["bad"] * (store.users.MAX_FAILED_ATTEMPTS - 1) + [
        "locked"
    ]
    until = NOW + store.users.LOCK_DURATION
    assert answers[-1].locked_until == until
    with engine.begin() as conn:  # the right password during the lock: still refused
        during = store.authenticate(conn, "a@example.org", PASSWORD, NOW + timedelta(minutes=1))
    assert (during.ok, during.reason, during.locked_until) == (False, "locked", until)
    with engine.begin() as conn:
        after = store.authenticate(conn, "a@example.org", PASSWORD, until + timedelta(seconds=1))
        assert after.ok and after.user is not None
        assert (after.user.failed_attempts, after.user.locked_until) == (0, None)
    assert ("user.locked", "console", "a@example.org") in actions(engine)


def test_a_success_resets_the_count_of_failures(engine: Engine) -> None:
    with engine.begin() as conn:
        store.add_user(conn, "a@example.org", "admin", PASSWORD, CLI)
        for _ in range(store.users.MAX_FAILED_ATTEMPTS - 1):
            store.authenticate(conn, "a@example.org", "wrong", NOW)
        assert store.authenticate(conn, "a@example.org", PASSWORD, NOW).ok
        assert store.authenticate(conn, "a@example.org", "wrong", NOW).reason == "bad"
        assert store.require_user(conn, "a@example.org").failed_attempts == 1


def test_unknown_and_disabled_accounts_cannot_sign_in(engine: Engine) -> None:
    with engine.begin() as conn:
        store.add_user(conn, "a@example.org", "evaluator", PASSWORD, CLI)
        assert store.authenticate(conn, "nobody@example.org", PASSWORD, NOW).reason == "bad"
        disabled = store.disable_user(conn, "a@example.org", CLI)
        assert not disabled.active
        assert store.authenticate(conn, "a@example.org", PASSWORD, NOW).reason == "disabled"
        assert store.authenticate(conn, "a@example.org", "wrong", NOW).reason == "bad"
        store.enable_user(conn, "a@example.org", CLI)
        assert store.authenticate(conn, "a@example.org", PASSWORD, NOW).ok
    assert [a for a, _, _ in actions(engine)] == ["user.add", "user.disable", "user.enable"]


def test_parallel_wrong_passwords_cannot_get_past_the_lock(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 attempts at once, each in its own transaction: the count is atomic, so exactly
    MAX_FAILED_ATTEMPTS passwords are checked, one lock is written, and the rest are refused
    without a check (before the fix every attempt read 0 failures and was checked)."""
    with engine.begin() as conn:
        store.add_user(conn, "a@example.org", "admin", PASSWORD, CLI)
    real = store.users._verify
    checked: list[str] = []
    guard = threading.Lock()

    def counting(password_hash: str, password: str) -> bool:
        if password_hash != store.users._DUMMY_HASH:
            with guard:
                checked.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(store.users, "_verify", counting)
    attempts = 20
    barrier = threading.Barrier(attempts)

    def attempt(number: int) -> str | None:
        barrier.wait()
        with engine.begin() as conn:
            return store.authenticate(conn, "a@example.org", f"wrong {number}", NOW).reason

    with ThreadPoolExecutor(attempts) as pool:
        reasons = list(pool.map(attempt, range(attempts)))
    limit = store.users.MAX_FAILED_ATTEMPTS
    assert len(checked) == limit
    assert sorted(reasons) == sorted(["bad"] * (limit - 1) + ["locked"] * (attempts - limit + 1))
    assert [a for a, _, _ in actions(engine)].count("user.locked") == 1
    with engine.begin() as conn:  # the right password is refused during the lock
        assert store.authenticate(conn, "a@example.org", PASSWORD, NOW).reason == "locked"


def test_every_refusal_has_the_same_message_and_control_characters_are_refused(
    engine: Engine,
) -> None:
    with engine.begin() as conn:
        store.add_user(conn, "a@example.org", "admin", PASSWORD, CLI)
        store.add_user(conn, "off@example.org", "admin", PASSWORD, CLI)
        store.disable_user(conn, "off@example.org", CLI)
        for _ in range(store.users.MAX_FAILED_ATTEMPTS):
            store.authenticate(conn, "a@example.org", "wrong", NOW)
    with engine.begin() as conn:
        refusals = [
            store.authenticate(conn, "nobody@example.org", PASSWORD, NOW),
            store.authenticate(conn, "a@example.org", PASSWORD, NOW),  # locked
            store.authenticate(conn, "off@example.org", PASSWORD, NOW),  # disabled
            store.authenticate(conn, "off@example.org", "wrong", NOW),
            store.authenticate(conn, "a\x00@example.org", PASSWORD, NOW),
        ]
    assert [r.reason for r in refusals] == ["bad", "locked", "disabled", "bad", "bad"]
    assert {r.message for r in refusals} == {store.users.SIGN_IN_REFUSED}
    with engine.begin() as conn:  # normalised: spaces and case do not matter
        assert store.authenticate(conn, "  OFF@Example.org ", "wrong", NOW).reason == "bad"
    for bad in ("a\x00b@example.org", "a@exa\x07mple.org", "a@example.org\x00"):
        with pytest.raises(store.AccountError):
            store.users.normalize_email(bad)
        with engine.begin() as conn:
            assert store.find_user(conn, bad) is None


def test_a_new_password_replaces_the_one_time_one(engine: Engine) -> None:
    with engine.begin() as conn:
        store.add_user(conn, "a@example.org", "admin", PASSWORD, CLI)
        changed = store.set_password(conn, "a@example.org", "another long password", ADMIN)
        assert not changed.password_change_required
        assert not store.authenticate(conn, "a@example.org", PASSWORD, NOW).ok
        assert store.authenticate(conn, "a@example.org", "another long password", NOW).ok


def test_researchers_see_the_trials_they_were_added_to(engine: Engine, loaded: Trial) -> None:
    other = make_trial(id="other-trial")
    with engine.begin() as conn:
        store.load_trial(conn, other, trial_yaml(id="other-trial"))
        researcher = store.add_user(conn, "r@example.org", "researcher", PASSWORD, CLI)
        evaluator = store.add_user(conn, "e@example.org", "evaluator", PASSWORD, CLI)
        assert store.trials_for(conn, researcher) == []
        assert store.add_member(conn, loaded.id, "r@example.org", CLI) is True
        assert store.add_member(conn, loaded.id, "r@example.org", CLI) is False
        assert store.trials_for(conn, researcher) == [loaded.id]
        assert store.is_member(conn, loaded.id, researcher)
        assert not store.is_member(conn, other.id, researcher)
        assert store.trials_for(conn, evaluator) == sorted([loaded.id, other.id])
        assert [u.email for u in store.members(conn, loaded.id)] == ["r@example.org"]
        assert store.remove_member(conn, loaded.id, "r@example.org", CLI) is True
        assert store.trials_for(conn, researcher) == []
    assert [(a, t) for a, _, t in actions(engine, loaded.id)] == [
        ("member.add", "r@example.org"),
        ("member.remove", "r@example.org"),
    ]


# -- lifecycle ---------------------------------------------------------------------------------


def test_the_lifecycle_and_its_pauses(engine: Engine, loaded: Trial) -> None:
    hour = timedelta(hours=1)
    with engine.begin() as conn:
        assert store.require_trial(conn, loaded.id).status is store.TrialStatus.DRAFT
        started = store.start_trial(conn, loaded.id, actor=CLI, now=NOW)
        assert (started.status, started.locked_at) == (store.TrialStatus.RUNNING, NOW)
        assert started.locked_version == started.current_version
        paused = store.pause_trial(conn, loaded.id, actor=ADMIN, now=NOW + hour)
        assert paused.paused and paused.serving and not paused.running
        store.resume_trial(conn, loaded.id, actor=ADMIN, now=NOW + 2 * hour)
        store.pause_trial(conn, loaded.id, actor=ADMIN, now=NOW + 3 * hour)
        closed = store.close_trial(conn, loaded.id, actor=CLI, now=NOW + 4 * hour)
        assert (closed.status, closed.closed_at, closed.serving) == (
            store.TrialStatus.CLOSED,
            NOW + 4 * hour,
            False,
        )
        pauses = store.read_pauses(conn, loaded.id)
        history = store.read_history(conn, loaded.id)
    assert pauses == (
        store.Pause(NOW + hour, NOW + 2 * hour),
        store.Pause(NOW + 3 * hour, NOW + 4 * hour),  # the close ends the open pause
    )
    assert history.pauses == pauses
    assert store.TrialHistory.from_dict(history.to_dict()).pauses == pauses
    assert [(a, i) for a, i, _ in actions(engine, loaded.id)] == [
        ("trial.start", "cli"),
        ("trial.pause", "console"),
        ("trial.resume", "console"),
        ("trial.pause", "console"),
        ("trial.close", "cli"),
    ]


@pytest.mark.parametrize(
    ("steps", "refused"),
    [
        ((), "pause"),
        ((), "resume"),
        ((), "close"),
        (("start",), "start"),
        (("start",), "resume"),
        (("start", "pause"), "pause"),
        (("start", "close"), "start"),
        (("start", "close"), "resume"),
        (("start", "close"), "close"),
    ],
)
def test_steps_the_status_does_not_allow_are_refused(
    engine: Engine, loaded: Trial, steps: tuple[str, ...], refused: str
) -> None:
    from experiments.lifecycle import STEPS

    with engine.begin() as conn:
        for step in steps:
            STEPS[step](conn, loaded.id)
        before = store.require_trial(conn, loaded.id)
    with engine.begin() as conn, pytest.raises(store.TransitionRefused) as error:
        STEPS[refused](conn, loaded.id, actor=CLI)
    assert error.value.field == "status"
    with engine.connect() as conn:
        assert store.require_trial(conn, loaded.id) == before
    assert actions(engine, loaded.id) == []  # a refused step is not audited


def test_old_status_names_are_read_as_the_new_ones(engine: Engine, loaded: Trial) -> None:
    assert store.TrialStatus("loaded") is store.TrialStatus.DRAFT
    assert store.TrialStatus("stopped") is store.TrialStatus.CLOSED
    assert store.stop_trial is store.close_trial


# -- amendments --------------------------------------------------------------------------------


def test_substantive_changes_are_named(trial: Trial) -> None:
    same = make_trial()
    assert store.substantive_changes(trial, same) == ()
    assert store.substantive_changes(trial, make_trial(title="Another title")) == ()
    data = trial.model_dump(mode="json")
    data["arms"][1]["weight"] = 2
    data["arms"][0]["material"]["en"]["title"] = "Changed"
    data["analysis"]["alpha"] = 0.01
    changed = Trial.model_validate(data)
    assert store.substantive_changes(trial, changed) == ("arms", "materials", "analysis plan")
    data = trial.model_dump(mode="json")
    data["outcomes"][0]["description"] = "Another description"
    assert store.substantive_changes(trial, Trial.model_validate(data)) == ("outcomes",)


def _tearoom() -> Trial:
    from experiments.lifecycle import DEMO_FILE
    from experiments.load import load_text

    loaded = load_text(DEMO_FILE.read_text(encoding="utf-8"), str(DEMO_FILE))
    assert loaded.trial is not None
    return loaded.trial


def test_a_figure_value_and_the_randomization_are_substantive() -> None:
    """The Tea Room example: a figure's value changes what an arm shows (materials); block to
    simple changes the allocation (arms). Before the fix both went through as 'other'."""
    tearoom = _tearoom()
    data = tearoom.model_dump(mode="json")
    figure = next(iter(data["figures"].values()))
    location = next(iter(figure["values"]))
    figure["values"][location] += 7
    assert store.substantive_changes(tearoom, Trial.model_validate(data)) == ("materials",)
    data = tearoom.model_dump(mode="json")
    assert data["randomization"]["method"] == "block"
    data["randomization"] = {"method": "simple", "strata": ["location"], "unit": "visit"}
    assert store.substantive_changes(tearoom, Trial.model_validate(data)) == ("arms",)
    data = tearoom.model_dump(mode="json")
    data["randomization"]["block_size"] = 20
    assert store.substantive_changes(tearoom, Trial.model_validate(data)) == ("arms",)


def test_the_disclosure_wording_is_a_material_but_a_new_contact_is_not() -> None:
    tearoom = _tearoom()
    data = tearoom.model_dump(mode="json")
    data["disclosure"]["en"]["who"] += " (changed)"
    assert store.substantive_changes(tearoom, Trial.model_validate(data)) == ("materials",)
    data = tearoom.model_dump(mode="json")
    data["contact"] = "another-contact@example.org"
    assert store.substantive_changes(tearoom, Trial.model_validate(data)) == ()


def test_an_amendment_is_stored_and_audited(engine: Engine, loaded: Trial) -> None:
    with engine.begin() as conn:
        before = store.require_trial(conn, loaded.id).current_version
        amendment = store.record_amendment(
            conn, loaded.id, "v2" * 32, before, ("materials",), "a typo in the gain arm", ADMIN
        )
        stored = store.read_amendments(conn, loaded.id)
    assert stored == (amendment,)
    assert amendment.substantive and amendment.to_dict()["reason"] == "a typo in the gain arm"
    assert store.Amendment.from_dict(amendment.to_dict()) == amendment
    ((action, interface, target),) = actions(engine, loaded.id)
    assert (action, interface, target) == ("trial.amend", "console", "v2" * 32)


# -- kiosks ------------------------------------------------------------------------------------


def test_kiosks_are_switched_off_on_revoked_and_given_new_tokens(
    engine: Engine, loaded: Trial
) -> None:
    with engine.begin() as conn:
        first, token = store.register_kiosk(conn, loaded, "loc-a", CLI)
        second, _ = store.register_kiosk(conn, loaded, "loc-b", CLI)
        assert [(k.id, k.state) for k in store.list_kiosks(conn, loaded.id)] == [
            (first.id, "active"),
            (second.id, "active"),
        ]
        assert [k.id for k in store.list_kiosks(conn, loaded.id, "loc-b")] == [second.id]
        assert store.switch_kiosk(conn, first.id, False, ADMIN).state == "off"
        found = store.find_kiosk(conn, token)
        assert found is not None and not found.active and found.state == "off"
        assert store.switch_kiosk(conn, first.id, True, ADMIN).state == "active"
        replaced, new_token = store.replace_token(conn, first.id, ADMIN)
        assert new_token != token and replaced.state == "active"
        assert store.find_kiosk(conn, token) is None  # the old token is dead at once
        assert store.find_kiosk(conn, new_token) is not None
        revoked = store.revoke_kiosk(conn, first.id, ADMIN)
        assert revoked.state == "revoked" and revoked.revoked_at is not None
        found = store.find_kiosk(conn, new_token)
        assert found is not None and not found.active and found.state == "revoked"
        assert store.active_kiosk_counts(conn) == {loaded.id: 1}
    for refused in (
        lambda conn: store.switch_kiosk(conn, first.id, True, ADMIN),
        lambda conn: store.replace_token(conn, first.id, ADMIN),
    ):
        with engine.begin() as conn, pytest.raises(store.KioskError, match="revoked"):
            refused(conn)
    with engine.begin() as conn:  # switching a revoked kiosk off changes nothing
        assert store.switch_kiosk(conn, first.id, False, ADMIN).state == "revoked"
        assert (
            conn.execute(select(kiosks.c.active).where(kiosks.c.id == first.id)).scalar() is False
        )
    assert [a for a, _, t in actions(engine, loaded.id) if t == first.id] == [
        "kiosk.add",
        "kiosk.off",
        "kiosk.on",
        "kiosk.replace_token",
        "kiosk.revoke",
    ]


def test_a_closed_trial_gets_no_new_kiosk(engine: Engine, loaded: Trial) -> None:
    with engine.begin() as conn:
        store.start_trial(conn, loaded.id)
        store.close_trial(conn, loaded.id)
    with engine.begin() as conn, pytest.raises(store.KioskError, match="closed"):
        store.register_kiosk(conn, loaded, "loc-a")


def test_the_last_contact_is_written_at_most_once_a_minute(engine: Engine, loaded: Trial) -> None:
    with engine.begin() as conn:
        kiosk, _ = store.register_kiosk(conn, loaded, "loc-a")
        assert store.note_contact(conn, kiosk.id, NOW) is True
        assert store.note_contact(conn, kiosk.id, NOW + timedelta(seconds=59)) is False
        assert store.note_contact(conn, kiosk.id, NOW + timedelta(seconds=60)) is True
        seen = store.require_kiosk(conn, kiosk.id).last_seen_at
    assert seen == NOW + timedelta(seconds=60)
    checked = store.Kiosk(kiosk.id, loaded.id, "loc-a", True, last_seen_at=seen)
    assert not checked.needs_contact_update(NOW + timedelta(seconds=90))
    assert checked.needs_contact_update(NOW + timedelta(seconds=120))


# -- the audit log -----------------------------------------------------------------------------


def test_the_audit_log_is_append_only_in_the_database(engine: Engine, loaded: Trial) -> None:
    with engine.begin() as conn:
        store.audit(conn, ADMIN, "console.look", trial_id=loaded.id, detail="unplanned")
    for statement in (update(audit_log).values(actor="someone else"), delete(audit_log)):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    assert actions(engine) == [("console.look", "console", None)]


def test_amendments_are_append_only_in_the_database(engine: Engine, loaded: Trial) -> None:
    with engine.begin() as conn:
        before = store.require_trial(conn, loaded.id).current_version
        store.record_amendment(conn, loaded.id, "b" * 64, before, ("materials",), "why", ADMIN)
    statements = (
        update(trial_amendments).values(reason="another reason"),
        update(trial_amendments).values(changes="other"),
        delete(trial_amendments),
    )
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(statement)
    with engine.connect() as conn:
        (kept,) = store.read_amendments(conn, loaded.id)
    assert (kept.reason, kept.changes) == ("why", ("materials",))


def test_the_audit_log_reads_per_trial_or_globally_oldest_first(
    engine: Engine, loaded: Trial
) -> None:
    with engine.begin() as conn:
        for number in range(5):
            store.audit(conn, CLI, f"step.{number}", trial_id=loaded.id if number % 2 else None)
        everything = store.read_audit(conn)
        newest = store.read_audit(conn, limit=2)
        of_trial = store.read_audit(conn, loaded.id)
    assert [e.action for e in everything] == [f"step.{n}" for n in range(5)]
    assert [e.action for e in newest] == ["step.3", "step.4"]
    assert [e.action for e in of_trial] == ["step.1", "step.3"]
    assert everything[0].to_dict()["interface"] == "cli"


def test_an_actor_needs_a_name_and_a_known_interface() -> None:
    with pytest.raises(store.RecordingError):
        store.Actor("", "cli")
    with pytest.raises(store.RecordingError):
        store.Actor("someone", "web")  # type: ignore[arg-type]


def test_pauses_are_a_table_of_their_own(engine: Engine, loaded: Trial) -> None:
    with engine.begin() as conn:
        store.start_trial(conn, loaded.id)
        store.pause_trial(conn, loaded.id, now=NOW)
        rows = conn.execute(select(trial_pauses.c.paused_at, trial_pauses.c.resumed_at)).all()
    assert [(store.aware(a), b) for a, b in rows] == [(NOW, None)]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return request.getfixturevalue("postgres_url")


def test_migration_0003_renames_the_old_statuses_and_keeps_the_kiosks(empty_url: str) -> None:
    from sqlalchemy import insert, text

    from experiments.eventlog import make_engine, upgrade

    upgrade(empty_url, "0002")
    engine = make_engine(empty_url)
    try:
        with engine.begin() as conn:
            for trial_id, status in (("a", "loaded"), ("b", "stopped"), ("c", "running")):
                conn.execute(
                    text(
                        "INSERT INTO trials (id, title, status, current_version, allocation_secret,"
                        " created_at) VALUES (:id, :id, :status, 'v', 's', :now)"
                    ),
                    {"id": trial_id, "status": status, "now": NOW},
                )
            conn.execute(
                text(
                    "INSERT INTO kiosks (id, trial_id, location, token_hash, active, created_at) "
                    "VALUES ('k', 'c', 'loc-a', :hash, :on, :now)"
                ),
                {"hash": store.token_hash("t"), "on": True, "now": NOW},
            )
        upgrade(engine)
        with engine.begin() as conn:
            rows = conn.execute(text("SELECT id, status FROM trials"))
            raw = {row.id: row.status for row in rows}
            statuses = {r.id: r.status for r in store.list_trials(conn)}
            (kiosk,) = store.list_kiosks(conn)
            store.audit(conn, CLI, "migrated")
            conn.execute(insert(trial_pauses).values(trial_id="c", paused_at=NOW))
    finally:
        engine.dispose()
    # The stored strings themselves (the model would read "loaded" as draft anyway).
    assert raw == {"a": "draft", "b": "closed", "c": "running"}
    assert statuses == {
        "a": store.TrialStatus.DRAFT,
        "b": store.TrialStatus.CLOSED,
        "c": store.TrialStatus.RUNNING,
    }
    assert (kiosk.state, kiosk.last_seen_at, kiosk.revoked_at) == ("active", None, None)
