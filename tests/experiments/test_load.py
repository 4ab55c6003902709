"""Loading trial YAML: every failure is a Problem with a line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from experiments.check import check_path, check_text
from experiments.load import load_text
from experiments.model import Trial
from tests.factories import SETTINGS, trial_dict, trial_yaml

DATA = Path(__file__).with_name("data")


def test_ten_mistakes_are_all_reported_with_their_lines() -> None:
    result = check_path(DATA / "ten-mistakes.yaml", SETTINGS)
    name = str(DATA / "ten-mistakes.yaml")
    expected = [
        (5, "titel", "unknown key 'titel'; did you mean 'title'?"),
        (14, "randomization.block_size", "block_size 7 is not a multiple of 5"),
        (17, "disclosure.en.who", "must contain {organisation}"),
        (42, "arms.1.control", "exactly one arm must have 'control: true'"),
        (50, "arms.2.material", "missing ar (العربية) text for arm 'gain'"),
        (52, "arms.2.claims.0.illustrative", "input should be a valid boolean"),
        (60, "arms.4.element", "element 'default' is refused in a high-sensitivity trial"),
        (68, "figures.returns.values.loc-b", "below the small-count threshold of 10"),
        (72, "outcomes.1.primary", "exactly one outcome must have 'primary: true'"),
        (77, "schedule.end", "end 2027-01-01 is not after start 2027-03-01"),
    ]
    assert len(result.errors) == 10, "\n".join(map(str, result.problems))
    assert result.warnings == []
    for problem, (line, path, fragment) in zip(result.errors, expected, strict=True):
        assert str(problem).startswith(f"{name}:{line}: {path}: ")
        assert fragment in problem.message
    assert result.trial is None  # a repaired trial is never handed out as valid


@pytest.mark.parametrize(
    ("source", "line", "fragment"),
    [
        ("id: x\ntitle: [unclosed\n", 3, "not valid YAML"),
        ("id: a\nid: b\n", 2, "duplicate key 'id' (first on line 1)"),
        ("", 1, "the file is empty"),
        ("- a list\n- not a trial\n", 1, "the top level must be a mapping"),
        ("id: x\n\ttitle: tab\n", 2, "not valid YAML"),
    ],
)
def test_malformed_yaml_is_a_problem(source: str, line: int, fragment: str) -> None:
    loaded = load_text(source, "bad.yaml")
    [problem] = loaded.problems
    assert problem.line == line
    assert fragment in problem.message
    assert loaded.trial is None


def test_wrong_types_and_missing_keys_name_the_field_and_the_fix() -> None:
    data = trial_dict()
    data["analysis"].pop("planned_sample_size")
    data["arms"][1]["weight"] = "two"
    data["randomization"]["method"] = "coin"
    data["locations"][0]["id"] = "Location A"
    problems = {
        ".".join(map(str, p.path)): p.message
        for p in load_text(yaml.safe_dump(data, sort_keys=False), "t.yaml").problems
    }
    assert problems["analysis.planned_sample_size"].startswith(
        "required key 'planned_sample_size' is missing: state the planned number"
    )
    assert "valid integer" in problems["arms.1.weight"] and "'two'" in problems["arms.1.weight"]
    assert problems["randomization.method"] == (
        "'coin' is not allowed here; use 'simple', 'block' or 'hash'"
    )
    assert "must be a slug" in problems["locations.0.id"]


def test_missing_file_and_bad_encoding(tmp_path: Path) -> None:
    assert "file not found" in str(check_path(tmp_path / "nope.yaml").problems[0])
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("title: caf\xe9".encode("latin-1"))
    assert "not UTF-8" in check_path(latin).problems[0].message


def test_round_trip_dump_and_load_gives_the_same_trial() -> None:
    trial = load_text(trial_yaml()).trial
    assert trial is not None
    dumped = yaml.safe_dump(trial.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    assert Trial.model_validate(yaml.safe_load(dumped)) == trial
    assert check_text(dumped, "test-trial.yaml", settings=SETTINGS).problems == []
