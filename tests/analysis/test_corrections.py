"""analysis.corrections against statsmodels' multipletests (method always passed explicitly)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from analysis.corrections import adjust_p_values, family_interval_level, level_text

STATSMODELS = {"holm": "holm", "bonferroni": "bonferroni", "bh": "fdr_bh"}
p_lists = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)  # multipletests("holm") takes ~70 ms a call
@given(p_values=p_lists, method=st.sampled_from(sorted(STATSMODELS)))
def test_matches_multipletests(p_values: list[float], method: str) -> None:
    expected = multipletests(p_values, method=STATSMODELS[method])[1]
    ours = adjust_p_values(p_values, method)  # type: ignore[arg-type]
    assert all(
        math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)
        for a, b in zip(ours, expected, strict=True)
    )


def test_hand_worked_example() -> None:
    """p = (0.01, 0.04, 0.03), m = 3. Sorted: 0.01, 0.03, 0.04.

    Holm: 3·0.01 = 0.03; max(0.03, 2·0.03) = 0.06; max(0.06, 1·0.04) = 0.06.
    Bonferroni: 0.03, 0.12, 0.09. BH: min over j ≥ i of 3·p₍ⱼ₎/j: 0.04 for the last two
    (3·0.04/3 = 0.04 < 3·0.03/2 = 0.045), then min(0.03, 0.04) = 0.03 for the first.
    """
    p = [0.01, 0.04, 0.03]
    assert adjust_p_values(p, "holm") == pytest.approx((0.03, 0.06, 0.06))
    assert adjust_p_values(p, "bonferroni") == pytest.approx((0.03, 0.12, 0.09))
    assert adjust_p_values(p, "bh") == pytest.approx((0.03, 0.04, 0.04))
    assert adjust_p_values(p, "none") == tuple(p)


def test_holm_is_not_statsmodels_default_holm_sidak() -> None:
    """multipletests defaults to Holm–Šidák; our "holm" is Holm (docs/statistics.md)."""
    p = [0.01, 0.02, 0.03]
    default = multipletests(p)[1]  # method="hs" by default
    assert adjust_p_values(p, "holm") == pytest.approx(multipletests(p, method="holm")[1])
    assert adjust_p_values(p, "holm")[0] == pytest.approx(0.03)
    assert default[0] == pytest.approx(1 - (1 - 0.01) ** 3)
    assert adjust_p_values(p, "holm")[0] != pytest.approx(default[0])


def test_untestable_arms_are_left_out_of_the_family() -> None:
    ours = adjust_p_values([0.01, None, 0.04, math.nan], "bonferroni")
    assert ours == pytest.approx((0.02, None, 0.08, None))
    assert adjust_p_values([None, None], "holm") == (None, None)


@pytest.mark.parametrize(
    ("p", "method", "message"), [([0.1], "hs", "unknown correction"), ([1.2], "holm", "outside")]
)
def test_invalid_input(p: list[float], method: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        adjust_p_values(p, method)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(p_values=p_lists)
def test_properties(p_values: list[float]) -> None:
    """Adjusted ≥ raw; ≤ 1; BH ≤ Holm ≤ Bonferroni; Holm keeps the order of the raw p-values."""
    holm = adjust_p_values(p_values, "holm")
    bonferroni = adjust_p_values(p_values, "bonferroni")
    bh = adjust_p_values(p_values, "bh")
    for raw, h, b, f in zip(p_values, holm, bonferroni, bh, strict=True):
        assert raw <= f <= h <= b <= 1.0
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    ranked = [holm[i] for i in order]
    assert ranked == sorted(ranked)


# -- family-level intervals ---------------------------------------------------------------------


@pytest.mark.parametrize("correction", ["holm", "bonferroni"])
def test_holm_and_bonferroni_intervals_are_at_one_minus_alpha_over_m(correction: str) -> None:
    family = family_interval_level(correction, 0.05, 4)  # type: ignore[arg-type]
    assert family.method == "bonferroni" and not family.selected_only
    assert family.alpha == pytest.approx(0.0125) and family.level == pytest.approx(0.9875)


def test_bh_intervals_are_at_one_minus_r_q_over_m_for_the_selected() -> None:
    """Benjamini & Yekutieli (2005): R = 2 selected of m = 5 at q = 0.05 -> 1 − 2·0.05/5 = 0.98."""
    family = family_interval_level("bh", 0.05, 5, selected=2)
    assert family.method == "benjamini-yekutieli" and family.selected_only
    assert family.level == pytest.approx(0.98)
    assert family_interval_level("bh", 0.05, 5, selected=0).level is None


def test_no_correction_or_no_comparison_has_no_family_level() -> None:
    assert family_interval_level("none", 0.05, 3).method is None
    assert family_interval_level("holm", 0.05, 0).alpha is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sidak", 0.05, 3), "unknown correction"),
        (("holm", 1.0, 3), "alpha"),
        (("bh", 0.05, 3, 4), "selected"),
    ],
)
def test_family_interval_level_refuses_bad_input(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        family_interval_level(*args)


@pytest.mark.parametrize(
    ("level", "text"), [(0.95, "95%"), (0.975, "97.5%"), (1 - 0.05 / 3, "98.33%"), (0.9, "90%")]
)
def test_levels_are_written_as_people_write_them(level: float, text: str) -> None:
    assert level_text(level) == text
