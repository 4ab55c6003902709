"""The trial model's derived views: disclosure text and versions, strengths, directions."""

from __future__ import annotations

from experiments.model import DISCLOSURE_ELEMENTS, joined, localized
from experiments.vocabulary import ELEMENTS, RIGHT_TO_LEFT, STRENGTH, text_direction
from tests.factories import make_trial, trial_dict


def test_disclosure_fills_placeholders_from_the_trial_fields() -> None:
    trial = make_trial()
    parts = dict(trial.disclosure_parts("en"))
    assert list(parts) == list(DISCLOSURE_ELEMENTS)
    assert parts["who"] == "This study is run by Example Return Service."
    assert parts["read_more"] == (
        "Read more in the public register at https://nudgelab.example.org/register or ask staff."
    )
    assert parts["contact"] == "Questions: info@example.org. Data protection: privacy@example.org."
    assert "{" not in trial.disclosure_text("ar")
    assert dict(trial.disclosure_parts("ar"))["who"] == (
        "This study is run by Example Return Service (ar). (ar)"
    )


def test_a_relative_register_path_is_shown_under_the_public_address() -> None:
    trial = make_trial(register_url="/register")
    assert trial.register_address() == "/register"
    assert trial.register_address("https://kiosk.example.org/") == (
        "https://kiosk.example.org/register"
    )
    read_more = dict(trial.disclosure_parts("en", "https://kiosk.example.org"))["read_more"]
    assert "at https://kiosk.example.org/register or" in read_more
    # The version recorded with an exposure does not depend on the server's address.
    same = make_trial(register_url="/register")
    assert trial.disclosure_version("en") == same.disclosure_version("en")
    absolute = make_trial(register_url="https://register.example.org/x")
    assert (
        absolute.register_address("https://kiosk.example.org") == "https://register.example.org/x"
    )


def test_localized_fields_give_each_language_its_own_text() -> None:
    trial = make_trial()
    assert localized(trial.organisation, "ar") == "Example Return Service (ar)"
    assert localized("Gezinslocatie Katwijk", "ar") == "Gezinslocatie Katwijk"
    assert joined(trial.organisation) == "Example Return Service / Example Return Service (ar)"


def test_disclosure_version_changes_with_the_text_shown() -> None:
    trial = make_trial()
    other = make_trial(organisation={"en": "Another Organisation", "ar": "Another (ar)"})
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
