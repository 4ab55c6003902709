"""The kiosk commands as an operator runs them: output, exit codes, and never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from sqlalchemy import func, select

from app.db import get_engine
from experiments.eventlog import kiosks, trials
from nudgelab.cli import main
from tests.app.visitor import EXAMPLE, Visitor
from tests.factories import trial_dict, trial_yaml

TRIAL_ID = "tearoom-return-info"


#: The platform's public address, so a trial's relative register_url draws no warning.
PUBLIC = {"NUDGELAB_PUBLIC_URL": "https://nudgelab.example.org"}


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    result = CliRunner(env=PUBLIC if env is None else env).invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def test_db_upgrade_creates_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = run("db", "upgrade", "--db", url)
    assert result.exit_code == 0 and "database is up to date" in result.output
    assert run("trial", "list", "--db", url).output.startswith("no trials loaded")


def test_load_start_stop_list_and_add_a_kiosk(app: Flask, db_url: str) -> None:
    loaded = run("trial", "load", str(EXAMPLE), "--db", db_url)
    assert loaded.exit_code == 0 and re.search(
        rf"^loaded {TRIAL_ID} \(version \w{{12}}\)", loaded.output, re.M
    )
    again = run("trial", "load", str(EXAMPLE), "--db", db_url)
    assert re.search(rf"^unchanged {TRIAL_ID}", again.output, re.M)
    assert run("trial", "start", TRIAL_ID, "--db", db_url).output.startswith(f"{TRIAL_ID}: running")
    added = run("kiosk", "add", "--trial", TRIAL_ID, "--location", "azc-budel", "--db", db_url,
                "--base-url", "http://kiosk.example:8000/")  # fmt: skip
    url = added.output.splitlines()[0]
    assert re.fullmatch(
        rf"http://kiosk\.example:8000/kiosk/{TRIAL_ID}/azc-budel/[A-Za-z0-9_-]{{32}}/", url
    )
    visitor = Visitor(app, url.removeprefix("http://kiosk.example:8000"))
    assert visitor.arrives().status_code == 200 and visitor.sees("Nederlands")
    listed = run("trial", "list", "--db", db_url).output
    assert re.search(
        rf"^{TRIAL_ID}  running  version \w{{12}}  started \S+  kiosks 1$", listed, re.M
    )
    assert run("trial", "stop", TRIAL_ID, "--db", db_url).output.startswith(f"{TRIAL_ID}: closed")
    assert visitor.arrives().status_code == 403


def test_a_trial_with_errors_is_refused(tmp_path: Path, db_url: str, app: Flask) -> None:
    bad = trial_dict()
    bad["arms"][1]["element"] = "default"  # refused in a high-sensitivity trial
    path = tmp_path / "test-trial.yaml"
    path.write_text(trial_yaml(arms=bad["arms"]), encoding="utf-8")
    result = run("trial", "load", str(path), "--db", db_url)
    assert result.exit_code == 1
    assert re.search(r"test-trial\.yaml:\d+: arms\.1\.element: .*refused", result.output)
    assert "Error: refused" in result.output
    with get_engine(app).connect() as conn:
        assert conn.execute(select(func.count()).select_from(trials)).scalar_one() == 0


def test_load_prints_the_warnings_after_the_start(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "test-trial.yaml"
    path.write_text(trial_yaml(), encoding="utf-8")
    run("trial", "load", str(path), "--db", db_url)
    run("trial", "start", "test-trial", "--db", db_url)
    path.write_text(trial_yaml(title="Another title"), encoding="utf-8")
    result = run("trial", "load", str(path), "--db", db_url)
    assert result.exit_code == 0 and result.stdout.startswith("loaded test-trial (version ")
    assert result.stderr == (
        "warning: trial 'test-trial' has started; this version differs from the pre-registered "
        "one, and the report will list it as a deviation\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trial", "start", "no-such-trial"], "is not loaded"),
        (["kiosk", "add", "--trial", "no-such-trial", "--location", "x"], "is not loaded"),
        (["trial", "load", "missing.yaml"], "file not found"),
    ],
)
def test_mistakes_are_one_clear_line(db_url: str, args: list[str], message: str) -> None:
    result = run(*args, "--db", db_url)
    assert result.exit_code == 1 and message in result.output


def test_unknown_location_and_unreachable_database(db_url: str) -> None:
    run("trial", "load", str(EXAMPLE), "--db", db_url)
    result = run("kiosk", "add", "--trial", TRIAL_ID, "--location", "elsewhere", "--db", db_url)
    assert result.exit_code == 1 and "choose one of: gezinslocatie-katwijk" in result.output
    down = run("trial", "list", "--db", "postgresql+psycopg://nobody:secret@127.0.0.1:1/x")
    assert down.exit_code == 1 and "database error" in down.output and "secret" not in down.output
    assert "not a usable database URL" in run("trial", "list", "--db", "nosuch://x").output


def test_serve_demo_sets_everything_up_and_prints_the_kiosk_url(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nudgelab serve --demo` twice: the same trial version, still running, a working URL."""
    import app.server

    served: list[tuple] = []
    monkeypatch.setattr(app.server, "serve", lambda *args, **_kw: served.append(args))
    outputs = [run("serve", "--demo", "--port", "5099", "--db", db_url) for _ in range(2)]
    for result in outputs:
        assert result.exit_code == 0, result.output
        assert f"Demo: trial {TRIAL_ID} is running" in result.output
    urls = [re.search(r"http://127\.0\.0\.1:5099(/kiosk/\S+/)", r.output)[1] for r in outputs]  # type: ignore[index]
    factory, host, port, workers = served[-1]
    assert (host, port, workers) == ("127.0.0.1", 5099, 2)
    kiosk_app = factory()
    try:
        for path in urls:
            visitor = Visitor(kiosk_app, path)
            assert visitor.arrives().status_code == 200
            assert visitor.starts_in("ar").status_code == 200
        with get_engine(kiosk_app).connect() as conn:
            assert conn.execute(select(trials.c.status)).scalars().all() == ["running"]
            assert conn.execute(select(func.count()).select_from(kiosks)).scalar_one() == 2
    finally:
        get_engine(kiosk_app).dispose()


def test_serve_refuses_a_mistyped_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGELAB_INACTIVITY_SECOND", "30")
    result = run("serve", "--db", "sqlite:////tmp/never-opened.db")
    assert result.exit_code == 1
    assert "did you mean NUDGELAB_INACTIVITY_SECONDS?" in result.output


def test_docs_name_every_kiosk_command() -> None:
    import click

    from nudgelab.cli.kiosk_commands import COMMANDS

    docs = Path("docs/kiosk.md").read_text(encoding="utf-8")
    for command in COMMANDS:
        names = (
            [f"{command.name} {sub}" for sub in command.commands]
            if isinstance(command, click.Group)
            else [command.name]
        )
        for name in names:
            assert f"`nudgelab {name}" in docs, f"docs/kiosk.md does not describe {name}"


def test_serve_base_url_is_the_register_address_visitors_read(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.server

    served: list[tuple] = []
    monkeypatch.setattr(app.server, "serve", lambda *args, **_kw: served.append(args))
    result = run(
        "serve", "--demo", "--base-url", "https://kiosk.example.org/", "--db", db_url, env={}
    )
    assert result.exit_code == 0, result.output
    path = re.search(r"https://kiosk\.example\.org(/kiosk/\S+/)", result.output)[1]  # type: ignore[index]
    kiosk_app = served[-1][0]()
    try:
        assert kiosk_app.config["PUBLIC_URL"] == "https://kiosk.example.org"
        visitor = Visitor(kiosk_app, path)
        visitor.arrives()
        visitor.asks_why(lang="en")
        # The example names its register in full; the address of this server is in the why page.
        assert visitor.sees("https://nudgelab.example.org/register")
    finally:
        get_engine(kiosk_app).dispose()


def _register(app: Flask) -> str:
    return app.test_client().get(f"/register/{TRIAL_ID}?lang=en").get_data(as_text=True)


def test_close_with_a_results_address_and_publish_link_the_report_on_the_register(
    app: Flask, db_url: str
) -> None:
    run("trial", "load", str(EXAMPLE), "--db", db_url)
    run("trial", "start", TRIAL_ID, "--db", db_url)
    early = run("trial", "publish", TRIAL_ID, "https://example.org/r", "--db", db_url)
    assert early.exit_code != 0 and "only for a closed trial" in early.output
    for bad in ("http://example.org/report", "javascript:alert(1)", "//evil.example/r", "/a b"):
        refused = run("trial", "close", TRIAL_ID, "--results-url", bad, "--db", db_url)
        assert refused.exit_code != 0 and "results address must start with https://" in (
            refused.output
        ), refused.output
    with get_engine(app).connect() as conn:  # a refused address closed nothing
        assert conn.execute(select(trials.c.status)).scalar_one() == "running"
    closed = run(
        "trial", "close", TRIAL_ID, "--results-url", "https://example.org/report", "--db", db_url
    )
    assert closed.exit_code == 0, closed.output
    assert closed.output.startswith(f"{TRIAL_ID}: closed; the register links https://example.org")
    page = _register(app)
    assert '<a href="https://example.org/report">Read the results</a>' in page
    published = run("trial", "publish", TRIAL_ID, "/reports/tearoom.html", "--db", db_url)
    assert published.exit_code == 0, published.output
    assert '<a href="/reports/tearoom.html">Read the results</a>' in _register(app)
    under = run("trial", "publish", TRIAL_ID, "https://nudgelab.example.org/r.html", "--db", db_url)
    assert under.exit_code == 0
    with get_engine(app).connect() as conn:
        assert conn.execute(select(trials.c.results_url)).scalar_one() == (
            "https://nudgelab.example.org/r.html"
        )
        from experiments import store

        published_entries = [e for e in store.read_audit(conn) if e.action == "trial.publish"]
    assert [e.detail for e in published_entries] == [
        "results at https://example.org/report",
        "results at /reports/tearoom.html",
        "results at https://nudgelab.example.org/r.html",
    ]
