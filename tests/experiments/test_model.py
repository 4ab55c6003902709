"""The trial model's derived views: disclosure text and versions, strengths, directions."""

from __future__ import annotations

from experiments.model import DISCLOSURE_ELEMENTS
from experiments.vocabulary import ELEMENTS, RIGHT_TO_LEFT, STRENGTH, text_direction
from tests.factories import make_trial, trial_dict


def test_disclosure_fills_placeholders_from_the_trial_fields() -> None:
    trial = make_trial()
    parts = dict(trial.disclosure_parts("en"))
    assert list(parts) == list(DISCLOSURE_ELEMENTS)
    assert parts["who"] == "This study is run by Example Return Service."
    assert parts["read_more"] == "Read more in the public register at /register or ask staff."
    assert parts["contact"] == "Questions: info@example.org. Data protection: privacy@example.org."
    assert "{" not in trial.disclosure_text("ar")


def test_disclosure_version_changes_with_the_text_shown() -> None:
    trial = make_trial()
    other = make_trial(organisation="Another Organisation")
    assert trial.disclosure_version("en") != other.disclosure_version("en")
    assert trial.disclosure_version("en") != trial.disclosure_version("ar")
    assert trial.disclosure_version("en") == make_trial().disclosure_version("en")


def test_material_version_covers_text_claims_and_figure() -> None:
    trial = make_trial()
    data = trial_dict()
    data["figures"]["returns_last_year"]["values"]["loc-a"] = 35
    changed = make_trial(figures=data["figures"])
    assert trial.material_version("norm", "en") != changed.material_version("norm", "en")
    assert trial.material_version("gain", "en") == changed.material_version("gain", "en")


def test_right_to_left_languages_are_known() -> None:
    assert {"ar", "fa", "he", "ur", "ps"} == RIGHT_TO_LEFT
    assert text_direction("ar") == "rtl" and text_direction("nl") == "ltr"
    assert make_trial().direction("ar") == "rtl"


def test_every_element_has_a_strength_on_the_ladder() -> None:
    assert set(STRENGTH) == set(ELEMENTS)
    assert STRENGTH["control"] == "none"
    assert STRENGTH["opt_out"] == STRENGTH["default"] == "strongest"
    assert STRENGTH["forced_choice"] == "strong"
    assert make_trial().arm("gain").strength == "weak"
