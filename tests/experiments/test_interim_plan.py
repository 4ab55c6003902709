"""`analysis.interim` in the trial file: the schema, the rule's errors with their lines."""

from __future__ import annotations

from typing import Any, get_args

import pytest
import yaml

from analysis.sequential import SPENDINGS
from experiments.check import check_text
from experiments.model import MAX_INTERIM_LOOKS, InterimSpending
from tests.factories import SETTINGS, make_trial, trial_dict


def _checked(interim: Any, **analysis: Any) -> list[str]:
    """Problems of the factory trial with ``analysis.interim`` set, as users see them."""
    data = trial_dict()
    data["analysis"].update(analysis)
    data["analysis"]["interim"] = interim
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    result = check_text(text, "test-trial.yaml", settings=SETTINGS)
    return [str(problem) for problem in result.problems]


def _line(key: str, text: str, after: str = "interim:") -> int:
    """1-based line of the first ``key`` after ``after`` in the dumped YAML."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(after))
    return next(i for i in range(start, len(lines)) if lines[i].strip().startswith(key)) + 1


def _dumped(interim: Any) -> str:
    data = trial_dict()
    data["analysis"]["interim"] = interim
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def test_the_spending_names_are_those_of_the_sequential_module() -> None:
    assert get_args(InterimSpending) == SPENDINGS


def test_fractions_and_visits_give_the_same_looks() -> None:
    by_fraction = make_trial(
        analysis={**trial_dict()["analysis"], "interim": {"fractions": [0.25, 0.5, 1.0]}}
    )
    by_visits = make_trial(
        analysis={**trial_dict()["analysis"], "interim": {"visits": [1500, 3000, 6000]}}
    )
    assert by_fraction.analysis.interim_fractions == (0.25, 0.5, 1.0)
    assert by_visits.analysis.interim_fractions == (0.25, 0.5, 1.0)
    assert by_visits.analysis.interim is not None
    assert by_visits.analysis.interim.spending == "obrien-fleming"
    assert make_trial().analysis.interim_fractions == ()


def test_a_valid_plan_is_clean() -> None:
    assert _checked({"fractions": [0.25, 0.5, 0.75, 1.0], "spending": "pocock"}) == []
    assert _checked({"visits": [2000, 4000, 6000]}) == []


@pytest.mark.parametrize(
    ("interim", "key", "message"),
    [
        (
            {"fractions": [0.5, 1.5]},
            "- 1.5",
            "analysis.interim.fractions.1: input should be less than or equal to 1 (got 1.5)",
        ),
        (
            {"fractions": [0.0, 1.0]},
            "- 0.0",
            "analysis.interim.fractions.0: input should be greater than 0 (got 0.0)",
        ),
        ({"visits": [-5, 6000]}, "- -5", "analysis.interim.visits.0: input should be greater"),
        (
            {"fractions": [0.5, 1.0], "spending": "haybittle"},
            "spending:",
            "analysis.interim.spending: 'haybittle' is not allowed here; use 'obrien-fleming' "
            "or 'pocock'",
        ),
        ({"fractions": [0.5, 1.0], "futility": True}, "futility:", "analysis.interim.futility:"),
    ],
)
def test_schema_errors_name_the_line(interim: Any, key: str, message: str) -> None:
    problems = _checked(interim)
    line = _line(key, _dumped(interim))
    assert any(p.startswith(f"test-trial.yaml:{line}: {message}") for p in problems), problems


@pytest.mark.parametrize(
    ("interim", "key", "message"),
    [
        (
            {"fractions": [0.5, 0.4, 1.0]},
            "- 0.4",
            "analysis.interim.fractions.1: look 2 (0.4) does not come after look 1 (0.5); list "
            "the looks in increasing order",
        ),
        (
            {"visits": [3000, 3000, 6000]},
            "- 3000",
            "analysis.interim.visits.1: look 2 (3000) does not come after look 1 (3000)",
        ),
        (
            {"fractions": [0.5, 0.9]},
            "- 0.9",
            "analysis.interim.fractions.1: the last look (0.9) must be the final analysis at 1 "
            "(the full planned sample size)",
        ),
        (
            {"visits": [3000, 5000]},
            "- 5000",
            "analysis.interim.visits.1: the last look (5000) must be the final analysis at "
            "planned_sample_size (6000)",
        ),
        (
            {"fractions": [0.5, 1.0], "visits": [3000, 6000]},
            "interim:",
            "analysis.interim: give the interim looks either as 'fractions'",
        ),
        ({"spending": "pocock"}, "interim:", "analysis.interim: give the interim looks either"),
        ({"fractions": []}, "fractions:", "analysis.interim.fractions: list at least one look"),
    ],
)
def test_rule_errors_name_the_line(interim: Any, key: str, message: str) -> None:
    problems = _checked(interim)
    text = _dumped(interim)
    # the second "- 3000" is the offending look
    line = _line(key, text, "- 3000") + 1 if key == "- 3000" else _line(key, text)
    assert any(p.startswith(f"test-trial.yaml:{line}: {message}") for p in problems), problems
    assert all("warning" not in p for p in problems)


def test_at_most_twenty_looks() -> None:
    fractions = [round((i + 1) / 21, 6) for i in range(20)] + [1.0]
    [problem] = _checked({"fractions": fractions})
    assert f"21 looks; at most {MAX_INTERIM_LOOKS} are allowed" in problem
    exactly = [round((i + 1) / 20, 6) for i in range(20)]
    assert _checked({"fractions": exactly}) == []


def test_one_look_and_benjamini_hochberg_are_warnings() -> None:
    [single] = _checked({"fractions": [1.0]})
    assert "warning: a single look at the end is the fixed design" in single
    [bh] = _checked({"fractions": [0.5, 1.0]}, correction="bh")
    assert "analysis.correction: warning: with interim looks the comparisons are tested" in bh
    assert "Benjamini-Hochberg is used only for the fixed-design p-values" in bh
