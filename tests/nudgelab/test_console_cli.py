"""The console's command-line half: `nudgelab user`, `trial pause|resume|close` with amendments,
`kiosk list|off|on|revoke|replace`; output, exit codes, the database and the audit log."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from experiments import store
from nudgelab.cli import main
from tests.factories import trial_dict, trial_yaml

ENV = {"NUDGELAB_ACTOR": "operator@example.org", "NUDGELAB_PUBLIC_URL": "https://x.example"}


def run(*args: str, stdin: str | None = None) -> Result:
    result = CliRunner(env=ENV).invoke(main, list(args), input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def audit(engine: Engine, trial_id: str | None = None) -> list[tuple[str, str, str, str | None]]:
    with engine.connect() as conn:
        return [
            (e.action, e.actor, e.interface, e.target) for e in store.read_audit(conn, trial_id)
        ]


@pytest.fixture
def trial_file(tmp_path: Path) -> Path:
    path = tmp_path / "test-trial.yaml"
    path.write_text(trial_yaml())
    return path


def test_user_add_prints_a_one_time_password_that_signs_in(db_url: str, engine: Engine) -> None:
    added = run("user", "add", "Admin@Example.org", "--role", "admin", "--db", db_url)
    assert added.exit_code == 0, added.output
    password = re.search(r"one-time password .*: (\S+)$", added.output, re.M)
    assert password is not None
    with engine.begin() as conn:
        signed_in = store.authenticate(conn, "admin@example.org", password[1], store.utcnow())
    assert signed_in.ok and signed_in.user is not None
    assert signed_in.user.password_change_required
    assert audit(engine) == [("user.add", "operator@example.org", "cli", "admin@example.org")]


def test_user_add_reads_a_password_from_stdin(db_url: str, engine: Engine) -> None:
    added = run(
        "user", "add", "r@example.org", "--role", "researcher", "--password-stdin", "--db", db_url,
        stdin="my chosen long password\n",
    )  # fmt: skip
    assert added.exit_code == 0 and "password" not in added.output
    with engine.begin() as conn:
        signed_in = store.authenticate(
            conn, "r@example.org", "my chosen long password", store.utcnow()
        )
    assert signed_in.ok and signed_in.user is not None
    assert not signed_in.user.password_change_required
    short = run("user", "add", "s@example.org", "--role", "evaluator", "--password-stdin",
                "--db", db_url, stdin="short\n")  # fmt: skip
    assert short.exit_code == 1 and "at least 12 characters" in short.output


def test_user_list_disable_grant(db_url: str, engine: Engine, trial_file: Path) -> None:
    assert run("user", "list", "--db", db_url).output.startswith("no accounts")
    run("user", "add", "r@example.org", "--role", "researcher", "--db", db_url)
    run("user", "add", "e@example.org", "--role", "evaluator", "--db", db_url)
    run("trial", "load", str(trial_file), "--db", db_url)
    granted = run("user", "grant", "r@example.org", "test-trial", "--db", db_url)
    assert granted.output.strip() == "r@example.org added to test-trial"
    assert (
        "was already on"
        in run("user", "grant", "r@example.org", "test-trial", "--db", db_url).output
    )
    listed = run("user", "list", "--db", db_url).output.splitlines()
    assert listed == [
        "e@example.org  evaluator  active  trials: all",
        "r@example.org  researcher  active  trials: test-trial",
    ]
    assert run("user", "disable", "e@example.org", "--db", db_url).output.strip() == (
        "disabled e@example.org"
    )
    assert "e@example.org  evaluator  disabled" in run("user", "list", "--db", db_url).output
    unknown = run("user", "disable", "nobody@example.org", "--db", db_url)
    assert unknown.exit_code == 1 and "no account 'nobody@example.org'" in unknown.output
    assert ("member.add", "operator@example.org", "cli", "r@example.org") in audit(
        engine, "test-trial"
    )


def test_pause_resume_close_and_stop(db_url: str, engine: Engine, trial_file: Path) -> None:
    run("trial", "load", str(trial_file), "--db", db_url)
    started = run("trial", "start", "test-trial", "--db", db_url)
    with engine.connect() as conn:
        record = store.require_trial(conn, "test-trial")
    assert started.output.splitlines() == [
        "test-trial: running",
        f"pre-registered version {record.locked_version} "
        f"(locked {record.locked_at:%Y-%m-%d %H:%M:%S} UTC)",
    ]
    assert run("trial", "pause", "test-trial", "--db", db_url).output == "test-trial: paused\n"
    again = run("trial", "pause", "test-trial", "--db", db_url)
    assert again.exit_code == 1
    assert "Error: trial 'test-trial' is paused; only a running trial can be paused" in again.output
    assert run("trial", "resume", "test-trial", "--db", db_url).output == "test-trial: running\n"
    assert run("trial", "stop", "test-trial", "--db", db_url).output == "test-trial: closed\n"
    assert run("trial", "close", "test-trial", "--db", db_url).exit_code == 1
    assert "closed" in run("trial", "list", "--db", db_url).output
    assert [a[0] for a in audit(engine, "test-trial")] == [
        "trial.load", "trial.start", "trial.pause", "trial.resume", "trial.close",
    ]  # fmt: skip
    with engine.connect() as conn:
        (pause,) = store.read_pauses(conn, "test-trial")
    assert pause.resumed_at is not None


def test_an_amendment_needs_a_reason_when_it_changes_arms(
    db_url: str, engine: Engine, trial_file: Path
) -> None:
    run("trial", "load", str(trial_file), "--db", db_url)
    run("trial", "start", "test-trial", "--db", db_url)
    data = trial_dict()
    data["arms"][1]["material"]["en"]["title"] = "A clearer title"
    trial_file.write_text(trial_yaml(arms=data["arms"]))
    refused = run("trial", "load", str(trial_file), "--db", db_url)
    assert refused.exit_code == 1
    assert "this version changes its materials: give the reason" in refused.output
    with engine.connect() as conn:
        assert store.read_amendments(conn, "test-trial") == ()
    loaded = run("trial", "load", str(trial_file), "--reason", "clearer title", "--db", db_url)
    assert loaded.exit_code == 0, loaded.output
    assert "amendment recorded: materials; reason: clearer title" in loaded.output
    assert "the report will list it as a deviation" in loaded.output
    with engine.connect() as conn:
        (amendment,) = store.read_amendments(conn, "test-trial")
    assert (amendment.changes, amendment.reason, amendment.actor, amendment.interface) == (
        ("materials",),
        "clearer title",
        "operator@example.org",
        "cli",
    )
    trial_file.write_text(trial_yaml(arms=data["arms"], contact="Another contact, 010 123"))
    minor = run("trial", "load", str(trial_file), "--db", db_url)  # no reason needed
    assert minor.exit_code == 0 and "amendment recorded: other; reason: -" in minor.output
    run("trial", "close", "test-trial", "--db", db_url)
    trial_file.write_text(trial_yaml())
    closed = run("trial", "load", str(trial_file), "--reason", "too late", "--db", db_url)
    assert closed.exit_code == 1 and "is closed: its file can no longer change" in closed.output


def test_kiosk_list_off_on_replace_revoke(db_url: str, engine: Engine, trial_file: Path) -> None:
    run("trial", "load", str(trial_file), "--db", db_url)
    run("trial", "start", "test-trial", "--db", db_url)
    added = run("kiosk", "add", "--trial", "test-trial", "--location", "loc-a", "--db", db_url)
    token = added.output.splitlines()[0].rstrip("/").rsplit("/", 1)[1]
    with engine.connect() as conn:
        (kiosk,) = store.list_kiosks(conn)
    listed = run("kiosk", "list", "--db", db_url).output
    assert listed.startswith(f"{kiosk.id}  test-trial  loc-a  active  last contact never")
    assert run("kiosk", "off", kiosk.id, "--db", db_url).output.strip().endswith(": off")
    assert run("kiosk", "on", kiosk.id, "--db", db_url).output.strip().endswith(": active")
    replaced = run("kiosk", "replace", kiosk.id, "--db", db_url, "--base-url", "https://k.example")
    new_url = replaced.output.splitlines()[0]
    assert new_url.startswith("https://k.example/kiosk/test-trial/loc-a/") and token not in new_url
    with engine.connect() as conn:
        assert store.find_kiosk(conn, token) is None
    assert run("kiosk", "revoke", kiosk.id, "--db", db_url).output.strip().endswith(": revoked")
    on_again = run("kiosk", "on", kiosk.id, "--db", db_url)
    assert on_again.exit_code == 1 and "is revoked and cannot be switched on" in on_again.output
    assert f"{kiosk.id}  test-trial  loc-a  revoked" in run("kiosk", "list", "--db", db_url).output
    unknown = run("kiosk", "off", "nope", "--db", db_url)
    assert unknown.exit_code == 1 and "no kiosk 'nope'" in unknown.output
    assert [a[0] for a in audit(engine, "test-trial") if a[3] == kiosk.id] == [
        "kiosk.add", "kiosk.off", "kiosk.on", "kiosk.replace_token", "kiosk.revoke",
    ]  # fmt: skip


def test_kiosk_list_flags_a_silent_kiosk(db_url: str, engine: Engine, trial_file: Path) -> None:
    run("trial", "load", str(trial_file), "--db", db_url)
    run("trial", "start", "test-trial", "--db", db_url)
    run("kiosk", "add", "--trial", "test-trial", "--location", "loc-b", "--db", db_url)
    with engine.begin() as conn:
        (kiosk,) = store.list_kiosks(conn)
        store.note_contact(conn, kiosk.id, store.utcnow() - timedelta(days=8))
    always = ("--hours", "00:00-23:59")
    listed = run("kiosk", "list", "--trial", "test-trial", *always, "--db", db_url).output
    assert listed.rstrip().endswith("SILENT")
    patient = run("kiosk", "list", "--silent-after", str(60 * 24 * 30), *always, "--db", db_url)
    assert "SILENT" not in patient.output
    bad = run("kiosk", "list", "--hours", "nine to five", "--db", db_url)
    assert bad.exit_code == 2 and "HH:MM-HH:MM" in bad.output


def test_kiosk_list_follows_the_opening_hours_and_silent_minutes_settings(
    db_url: str, engine: Engine, trial_file: Path
) -> None:
    """NUDGELAB_OPENING_HOURS and NUDGELAB_SILENT_KIOSK_MINUTES are the defaults of --hours
    and --silent-after (the console reads the same settings)."""
    run("trial", "load", str(trial_file), "--db", db_url)
    run("trial", "start", "test-trial", "--db", db_url)
    run("kiosk", "add", "--trial", "test-trial", "--location", "loc-b", "--db", db_url)
    with engine.begin() as conn:
        (kiosk,) = store.list_kiosks(conn)
        store.note_contact(conn, kiosk.id, store.utcnow() - timedelta(days=3))

    def listed(**settings: str) -> str:
        result = CliRunner(env={**ENV, **settings}).invoke(main, ["kiosk", "list", "--db", db_url])
        assert result.exit_code == 0, result.output
        return result.output

    always = {"NUDGELAB_OPENING_HOURS": "daily 00:00-00:00 UTC"}
    assert listed(**always).rstrip().endswith("SILENT")  # 3 days of opening hours > 120 min
    patient = {**always, "NUDGELAB_SILENT_KIOSK_MINUTES": str(60 * 24 * 4)}
    assert "SILENT" not in listed(**patient)
    never = {"NUDGELAB_OPENING_HOURS": "sun 00:00-00:01 UTC"}  # a minute a week
    assert "SILENT" not in listed(**never)
    bad = CliRunner(env={**ENV, "NUDGELAB_OPENING_HOURS": "whenever"}).invoke(
        main, ["kiosk", "list", "--db", db_url]
    )
    assert bad.exit_code == 2 and "HH:MM-HH:MM" in bad.output
