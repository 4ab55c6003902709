"""Every error a user can cause ends a command with one line that says what to do, exit code 1.

One test per family of errors, each through a real command; then what stays a traceback (a
bug) and that getting ready to explain errors loads nothing heavy.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from experiments import store
from experiments.eventlog import make_engine, upgrade
from nudgelab.cli import main
from nudgelab.cli.errors import explain
from tests.factories import make_trial, trial_yaml

EXAMPLE = "experiments/trials/tearoom-return-info.yaml"
UNREACHABLE = "postgresql+psycopg://nobody:secret@127.0.0.1:1/x"


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'nudgelab.db'}"
    upgrade(url)
    return url


@pytest.fixture
def trial_file(tmp_path: Path) -> Path:
    path = tmp_path / "test-trial.yaml"
    path.write_text(trial_yaml())
    return path


def fails(*args: object) -> str:
    """Run a command that must fail with one explained line; that line, without 'Error: '."""
    result: Result = CliRunner().invoke(main, [str(arg) for arg in args])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if "Error" in line]
    assert len(errors) == 1 and errors[0] == result.stderr.splitlines()[-1], result.stderr
    assert errors[0].startswith("Error: ")
    return errors[0].removeprefix("Error: ")


def test_a_refused_trial_file_lists_its_problems_then_one_line(tmp_path: Path, db: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: [\n")
    assert fails("trial", "load", path, "--db", db) == (
        f"refused {path}: 1 errors (fix them; `nudgelab check {path}` shows the same list)"
    )
    result = CliRunner().invoke(main, ["trial", "load", str(path), "--db", db])
    assert result.stderr.splitlines()[0].startswith(f"{path}:2: <trial>: not valid YAML")
    assert fails("analyze", "no-such-trial", "--db", db, "--out", tmp_path / "r") == (
        "'no-such-trial' is neither a trial file nor a trial loaded in the database"
    )


def test_a_store_refusal(db: str) -> None:
    message = fails("trial", "start", "no-such-trial", "--db", db)
    assert message == "trial 'no-such-trial' is not loaded; run `nudgelab trial load`"


def test_a_kiosk_refusal(db: str) -> None:
    CliRunner().invoke(main, ["trial", "load", EXAMPLE, "--db", db])
    message = fails("kiosk", "add", "--trial", "tearoom-return-info", "--location", "x", "--db", db)
    assert message.startswith("location 'x' is not part of trial 'tearoom-return-info'; choose")


def test_a_stored_trial_that_no_longer_parses(db: str) -> None:
    engine = make_engine(db)
    with engine.begin() as conn:
        store.load_trial(conn, make_trial(), "id: test-trial\nfrom_an_older_version: true\n")
    engine.dispose()
    message = fails("kiosk", "add", "--trial", "test-trial", "--location", "loc-a", "--db", db)
    assert message.startswith("the stored trial no longer parses: ")
    assert message.endswith("`nudgelab trial load PATH` stores the file again)")


def test_a_startup_error_of_the_kiosk_app(monkeypatch: pytest.MonkeyPatch, db: str) -> None:
    monkeypatch.setenv("NUDGELAB_INACTIVITY_SECOND", "30")
    assert "did you mean NUDGELAB_INACTIVITY_SECONDS?" in fails("serve", "--db", db)


def test_an_analysis_that_cannot_start(tmp_path: Path, db: str, trial_file: Path) -> None:
    message = fails("analyze", trial_file, "--db", db, "--out", tmp_path / "r")
    assert "not in this database" in message


def test_an_export_that_cannot_start(tmp_path: Path, db: str, trial_file: Path) -> None:
    message = fails("export", trial_file, "--db", db, "--out", tmp_path / "e.csv")
    assert message == "trial 'test-trial' is not in this database"


def test_a_simulation_with_impossible_rates(db: str, trial_file: Path) -> None:
    message = fails("simulate", trial_file, "--visits", "5", "--rates", "gain=2", "--db", db)
    assert message == "rate in 'gain=2' must be a proportion between 0 and 1"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("nosuch://x", "Can't load plugin: sqlalchemy.dialects:nosuch"),
        ("sqlite://", "use a SQLite file (sqlite:///path.db), not an in-memory database"),
        ("not a url", "Could not parse SQLAlchemy URL"),
    ],
)
def test_a_database_url_no_engine_can_be_made_from(url: str, reason: str) -> None:
    message = fails("trial", "list", "--db", url)
    assert message.startswith("not a usable database URL: ") and reason in message


def test_a_database_that_is_down_or_has_no_schema(tmp_path: Path) -> None:
    down = fails("trial", "list", "--db", UNREACHABLE)
    assert down.startswith("database error: ") and "Connection refused" in down
    assert "secret" not in down and "[SQL" not in down
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    assert fails("trial", "list", "--db", empty) == (
        "database error: no such table: kiosks; is the database running, and has "
        "`nudgelab db upgrade --db URL` created its schema?"
    )


def test_an_output_path_that_cannot_be_written(tmp_path: Path, db: str) -> None:
    (tmp_path / "a-file").write_text("")
    message = fails("export", "x", "--db", db, "--out", tmp_path / "a-file" / "new" / "e.csv")
    where = tmp_path / "a-file" / "new"
    assert message == f"{where}: Not a directory (check the path and its permissions)"


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch, db: str) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(store, "list_trials", broken)
    result = CliRunner().invoke(main, ["trial", "list", "--db", db])
    assert isinstance(result.exception, RuntimeError)
    assert explain(ValueError("not ours")) is None and explain(KeyError("x")) is None


def test_explaining_loads_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from nudgelab.cli.errors import explain\n"
        "assert explain(FileNotFoundError(2, 'No such file or directory', 'x')) is not None\n"
        "assert explain(RuntimeError('bug')) is None\n"
        "print(sorted({'sqlalchemy', 'flask', 'pandas', 'app', 'analysis'} & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
