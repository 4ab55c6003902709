"""Power and minimum detectable effect of a declared design, before any data.

The test is the two-sided two-sample z-test on Cohen's arcsine effect size
``h = 2·asin(√p1) − 2·asin(√p0)``, the same model as statsmodels' ``NormalIndPower``
(both tails counted). It is computed here with the standard library only, so the core stays
light; ``tests/experiments/test_design.py`` checks it against statsmodels.

Multiple comparisons: every treatment arm is compared with the control. Holm and Bonferroni
reach their per-comparison threshold of ``alpha / k`` in the worst case (the first Holm step);
for Benjamini–Hochberg ``alpha / k`` is likewise the threshold of the smallest p-value. The MDE
therefore uses ``alpha / k``, a conservative (never optimistic) choice for all three.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from experiments.model import Trial

_NORMAL = NormalDist()


def arcsine_effect(p_control: float, p_arm: float) -> float:
    """Cohen's h between two proportions."""
    return 2 * math.asin(math.sqrt(p_arm)) - 2 * math.asin(math.sqrt(p_control))


def power_two_proportions(
    p_control: float, p_arm: float, n_control: float, n_arm: float, alpha: float
) -> float:
    """Power of the two-sided z-test of ``p_arm`` against ``p_control`` at level ``alpha``."""
    h = arcsine_effect(p_control, p_arm)
    scale = math.sqrt(1 / n_control + 1 / n_arm)
    crit = _NORMAL.inv_cdf(1 - alpha / 2)
    shift = abs(h) / scale
    return _NORMAL.cdf(shift - crit) + _NORMAL.cdf(-shift - crit)


def minimum_detectable_effect(
    p_control: float, n_control: float, n_arm: float, alpha: float, power: float = 0.8
) -> float:
    """Smallest increase over ``p_control`` detected with ``power`` (a difference in proportions).

    Solved by bisection on Cohen's h to 1e-13 and mapped back to the proportion scale.
    Returns ``nan`` when even a jump to 100 % cannot reach the power.
    """
    scale = math.sqrt(1 / n_control + 1 / n_arm)
    crit = _NORMAL.inv_cdf(1 - alpha / 2)

    def achieved(h: float) -> float:
        return _NORMAL.cdf(h / scale - crit) + _NORMAL.cdf(-h / scale - crit)

    h_max = arcsine_effect(p_control, 1.0)
    if achieved(h_max) < power:
        return math.nan
    low, high = 0.0, h_max
    while high - low > 1e-13:
        middle = (low + high) / 2
        if achieved(middle) < power:
            low = middle
        else:
            high = middle
    p_arm = math.sin((high + 2 * math.asin(math.sqrt(p_control))) / 2) ** 2
    return p_arm - p_control


def comparison_alpha(alpha: float, comparisons: int) -> float:
    """The per-comparison level used for power: ``alpha / k`` (see the module docstring)."""
    return alpha / max(comparisons, 1)


@dataclass(frozen=True)
class ArmDesign:
    """Planned size and minimum detectable effect of one arm against the control."""

    arm: str
    n_control: float
    n_arm: float
    alpha: float
    mde: float
    power_for_expected: float | None


def planned_design(trial: Trial, sample_size: float | None = None) -> list[ArmDesign]:
    """MDE of each treatment arm against control at the planned (or given) total sample size.

    The total is split by the allocation weights.
    """
    plan = trial.analysis
    total = sample_size if sample_size is not None else plan.planned_sample_size
    weights = trial.weights
    weight_sum = sum(weights.values())
    control = trial.control_arm
    n_control = total * control.weight / weight_sum
    treated = [arm for arm in trial.arms if not arm.control]
    alpha = comparison_alpha(plan.alpha, len(treated))
    designs = []
    for arm in treated:
        n_arm = total * arm.weight / weight_sum
        mde = minimum_detectable_effect(plan.baseline_rate, n_control, n_arm, alpha, plan.power)
        expected = None
        if plan.expected_effect is not None and 0 < plan.baseline_rate + plan.expected_effect < 1:
            expected = power_two_proportions(
                plan.baseline_rate,
                plan.baseline_rate + plan.expected_effect,
                n_control,
                n_arm,
                alpha,
            )
        designs.append(ArmDesign(arm.id, n_control, n_arm, alpha, mde, expected))
    return designs
