"""Power and MDE of the declared design, checked against statsmodels' power functions."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from experiments.design import (
    comparison_alpha,
    minimum_detectable_effect,
    planned_design,
    power_two_proportions,
)
from tests.factories import make_trial

DESIGNS = [
    # (baseline, n control, n arm, alpha per comparison, power)
    (0.05, 800, 800, 0.05 / 4, 0.8),
    (0.023, 135_665, 135_665, 0.05 / 7, 0.8),
    (0.30, 50, 100, 0.05, 0.9),
    (0.50, 2_000, 1_000, 0.01, 0.8),
]


def _statsmodels_mde(p0: float, n1: float, n2: float, alpha: float, power: float) -> float:
    h = NormalIndPower().solve_power(
        effect_size=None,
        nobs1=n1,
        alpha=alpha,
        power=power,
        ratio=n2 / n1,
        alternative="two-sided",
    )
    return math.sin((h + 2 * math.asin(math.sqrt(p0))) / 2) ** 2 - p0


@pytest.mark.parametrize(("p0", "n1", "n2", "alpha", "power"), DESIGNS)
def test_power_equals_statsmodels(p0: float, n1: int, n2: int, alpha: float, power: float) -> None:
    for effect in (0.005, 0.02, 0.1):
        ours = power_two_proportions(p0, p0 + effect, n1, n2, alpha)
        theirs = NormalIndPower().power(
            proportion_effectsize(p0 + effect, p0),
            n1,
            alpha,
            ratio=n2 / n1,
            alternative="two-sided",
        )
        assert ours == pytest.approx(theirs, abs=1e-12)


@pytest.mark.parametrize(("p0", "n1", "n2", "alpha", "power"), DESIGNS)
def test_mde_equals_statsmodels(p0: float, n1: int, n2: int, alpha: float, power: float) -> None:
    ours = minimum_detectable_effect(p0, n1, n2, alpha, power)
    # statsmodels' power function, evaluated at our MDE, gives exactly the planned power ...
    h = proportion_effectsize(p0 + ours, p0)
    achieved = NormalIndPower().power(h, n1, alpha, ratio=n2 / n1, alternative="two-sided")
    assert achieved == pytest.approx(power, abs=1e-9)
    # ... and its own solver (a root finder with a looser tolerance) lands within 1e-4.
    assert ours == pytest.approx(_statsmodels_mde(p0, n1, n2, alpha, power), rel=1e-4)


def test_unreachable_power_is_nan() -> None:
    assert math.isnan(minimum_detectable_effect(0.9, 5, 5, 0.001, 0.99))


def test_planned_design_splits_by_weight_and_divides_alpha() -> None:
    trial = make_trial()  # 3 arms, 6000 visits, weights 1:1:1, holm, alpha 0.05
    designs = planned_design(trial)
    assert [d.arm for d in designs] == ["gain", "norm"]
    assert all(d.n_control == d.n_arm == 2000 for d in designs)
    assert designs[0].alpha == comparison_alpha(0.05, 2) == 0.025
    assert designs[0].mde == pytest.approx(_statsmodels_mde(0.05, 2000, 2000, 0.025, 0.8), rel=1e-5)
    expected = NormalIndPower().power(proportion_effectsize(0.08, 0.05), 2000, 0.025, ratio=1.0)
    assert designs[0].power_for_expected == pytest.approx(expected, abs=1e-12)
