"""The analysis follows the locked trial: its outcomes first, its arms kept."""

from __future__ import annotations

from analysis.counts import OutcomeSpec
from analysis.preregistered import arm_union, outcome_specs, preregistered_trial
from experiments.store import TrialHistory
from tests.factories import BASE, make_trial, trial_dict, trial_yaml


def test_the_locked_version_is_the_preregistered_trial() -> None:
    locked = trial_yaml(title="Locked title")
    analysed = make_trial(title="Edited title")
    found = preregistered_trial(TrialHistory(locked_source=locked), analysed)
    assert found.title == "Locked title" and found is not analysed


def test_without_a_readable_lock_of_this_trial_the_analysed_one_counts() -> None:
    analysed = make_trial()
    assert preregistered_trial(TrialHistory(), analysed) is analysed
    assert preregistered_trial(TrialHistory(locked_source="id: [broken"), analysed) is analysed
    other = trial_yaml(id="another-trial")
    assert preregistered_trial(TrialHistory(locked_source=other), analysed) is analysed


def test_outcomes_primary_first_then_the_ones_added_later() -> None:
    registered = trial_dict()["outcomes"]
    secondary_first = make_trial(outcomes=[registered[1], registered[0]])
    added = {**registered[1], "id": "added_later", "event": "finished"}
    analysed = make_trial(outcomes=[registered[0], added])
    assert outcome_specs(secondary_first, analysed) == [
        OutcomeSpec("requested_contact", "contact_requested"),
        OutcomeSpec("opened_country_info", "country_info_opened"),
        OutcomeSpec("added_later", "finished"),
    ]


def test_an_arm_dropped_after_the_lock_is_still_analysed() -> None:
    analysed = make_trial(arms=[arm for arm in BASE["arms"] if arm["id"] != "norm"])
    assert [arm.id for arm in arm_union(make_trial(), analysed)] == ["control", "gain", "norm"]
    assert [arm.id for arm in arm_union(analysed, make_trial())] == ["control", "gain", "norm"]
