"""The operator's steps: open the log, load a checked trial file, open a trial, add kiosks, demo."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from experiments import store
from experiments.lifecycle import (
    DEMO_TRIAL,
    DatabaseUrlError,
    TrialRefused,
    add_kiosk,
    load_trial_file,
    open_event_log,
    open_trial,
    set_up_demo,
)
from tests.factories import trial_dict, trial_yaml

LANGUAGES = ("en", "ar")
ACTOR = store.Actor("tester@example.org", "cli")


@pytest.fixture
def trial_file(tmp_path: Path) -> Path:
    path = tmp_path / "test-trial.yaml"
    path.write_text(trial_yaml())
    return path


def status(engine: Engine, trial_id: str) -> store.TrialRecord | None:
    with engine.connect() as conn:
        return store.read_trial(conn, trial_id)


def test_a_checked_file_is_stored_once(engine: Engine, trial_file: Path) -> None:
    first = load_trial_file(engine, trial_file, interface_languages=LANGUAGES, actor=ACTOR)
    assert (first.trial.id, first.new, first.problems, first.warnings) == (
        "test-trial",
        True,
        (),
        (),
    )
    record = status(engine, "test-trial")
    assert record is not None and record.current_version == first.version
    again = load_trial_file(engine, trial_file, interface_languages=LANGUAGES, actor=ACTOR)
    assert (again.version, again.new) == (first.version, False)


def test_the_checks_warnings_come_back_with_the_stored_trial(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "another-name.yaml"
    path.write_text(trial_yaml())
    loaded = load_trial_file(engine, path, interface_languages=LANGUAGES, actor=ACTOR)
    assert [p.rule for p in loaded.problems] == ["file-name"]
    assert all(p.severity == "warning" for p in loaded.problems)


def test_a_file_with_errors_is_refused_and_nothing_is_stored(
    engine: Engine, tmp_path: Path
) -> None:
    bad = trial_dict()
    bad["arms"][1]["element"] = "default"  # refused in a high-sensitivity trial
    path = tmp_path / "test-trial.yaml"
    path.write_text(trial_yaml(arms=bad["arms"]))
    with pytest.raises(TrialRefused, match=r"^refused .*test-trial\.yaml: 1 errors") as refused:
        load_trial_file(engine, path, interface_languages=LANGUAGES, actor=ACTOR)
    assert [p.path for p in refused.value.problems] == [("arms", 1, "element")]
    assert status(engine, "test-trial") is None
    with pytest.raises(TrialRefused) as missing:
        load_trial_file(
            engine, path.with_name("nowhere.yaml"), interface_languages=LANGUAGES, actor=ACTOR
        )
    assert "file not found" in str(missing.value.problems[0])


def test_a_language_without_an_interface_translation_is_a_warning(
    engine: Engine, trial_file: Path
) -> None:
    loaded = load_trial_file(engine, trial_file, interface_languages=["en"], actor=ACTOR)
    (warning,) = loaded.warnings
    assert warning.startswith("the kiosk has no interface translation for 'ar'")
    assert warning.endswith("add app/translations/ar/LC_MESSAGES/messages.po")
    assert status(engine, "test-trial") is not None  # stored all the same


def test_a_change_after_the_start_is_a_deviation(engine: Engine, trial_file: Path) -> None:
    locked = load_trial_file(engine, trial_file, interface_languages=LANGUAGES, actor=ACTOR).version
    with engine.begin() as conn:
        store.start_trial(conn, "test-trial")
    trial_file.write_text(trial_yaml(title="A new title"))
    changed = load_trial_file(engine, trial_file, interface_languages=LANGUAGES, actor=ACTOR)
    assert changed.new and changed.version != locked
    assert changed.warnings == (
        "trial 'test-trial' has started; this version differs from the pre-registered one, "
        "and the report will list it as a deviation",
    )
    assert (
        load_trial_file(engine, trial_file, interface_languages=LANGUAGES, actor=ACTOR).warnings
        == ()
    )
    trial_file.write_text(trial_yaml())  # back to the pre-registered text: no deviation
    back = load_trial_file(engine, trial_file, interface_languages=LANGUAGES, actor=ACTOR)
    assert back.warnings == ()
    assert back.amendment is not None  # but going back is recorded, like every change
    with engine.connect() as conn:
        assert [a.version for a in store.read_amendments(conn, "test-trial")] == [
            changed.version,
            locked,
        ]


def test_a_trial_opens_from_its_file_or_from_the_log(engine: Engine, trial_file: Path) -> None:
    from_file = open_trial(str(trial_file), None, strict=True)
    assert from_file.source == trial_file.read_text() and from_file.rule_errors == ()
    with pytest.raises(TrialRefused, match="neither a trial file nor a trial loaded"):
        open_trial("test-trial", engine, strict=False)
    load_trial_file(engine, trial_file, interface_languages=LANGUAGES, actor=ACTOR)
    from_log = open_trial("test-trial", engine, strict=True)
    assert from_log.trial == from_file.trial and from_log.source is None
    with pytest.raises(TrialRefused, match="neither"):
        open_trial("test-trial", None, strict=False)  # no database to look in


def test_rule_errors_are_refused_only_when_strict(tmp_path: Path) -> None:
    bad = trial_dict()
    bad["arms"][1]["element"] = "default"
    path = tmp_path / "test-trial.yaml"
    path.write_text(trial_yaml(arms=bad["arms"]))
    with pytest.raises(TrialRefused, match=r"fix the trial file first \(1 errors\)") as refused:
        open_trial(str(path), None, strict=True)
    assert len(refused.value.problems) == 1
    lenient = open_trial(str(path), None, strict=False)
    assert [p.path for p in lenient.rule_errors] == [("arms", 1, "element")]
    path.write_text("id: [\n")
    with pytest.raises(TrialRefused, match="fix the trial file first"):
        open_trial(str(path), None, strict=False)  # a file that does not parse: never


def test_a_kiosk_gets_a_path_with_its_token(engine: Engine, trial_file: Path) -> None:
    with pytest.raises(store.UnknownTrial):
        add_kiosk(engine, "test-trial", "loc-a")
    load_trial_file(engine, trial_file, interface_languages=LANGUAGES, actor=ACTOR)
    paths = [add_kiosk(engine, "test-trial", "loc-a") for _ in range(2)]
    assert paths[0] != paths[1] and all(p.startswith("/kiosk/test-trial/loc-a/") for p in paths)
    token = paths[0].rstrip("/").rsplit("/", 1)[1]
    with engine.connect() as conn:
        kiosk = store.find_kiosk(conn, token)
        assert kiosk is not None and kiosk.location == "loc-a"
        assert store.active_kiosk_counts(conn) == {"test-trial": 2}
    with pytest.raises(store.KioskError, match="choose one of"):
        add_kiosk(engine, "test-trial", "elsewhere")


def test_the_demo_can_be_set_up_again(tmp_path: Path) -> None:
    with open_event_log(f"sqlite:///{tmp_path / 'demo.db'}") as engine:
        first = set_up_demo(engine, interface_languages=["en", "nl", "ar"], actor=ACTOR)
        second = set_up_demo(engine, interface_languages=["en", "nl", "ar"], actor=ACTOR)
        record = status(engine, DEMO_TRIAL)
    assert first.loaded.new and not second.loaded.new
    assert first.loaded.version == second.loaded.version
    assert record is not None and record.running and record.locked_version == first.loaded.version
    location = first.loaded.trial.locations[0].id
    assert first.kiosk_path.startswith(f"/kiosk/{DEMO_TRIAL}/{location}/")
    assert first.kiosk_path != second.kiosk_path


def test_the_event_log_can_be_opened_with_its_schema_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with open_event_log(url) as engine:
        assert inspect(engine).get_table_names() == []
    with open_event_log(url, upgrade_schema=True) as engine:
        assert {"trials", "trial_versions", "kiosks"} <= set(inspect(engine).get_table_names())


@pytest.mark.parametrize(
    "url", ["nosuch://x", "sqlite://", "not a url", "postgresql+nosuchdriver://x/y"]
)
def test_a_url_no_engine_can_be_made_from(url: str) -> None:
    with pytest.raises(DatabaseUrlError), open_event_log(url):
        pass
