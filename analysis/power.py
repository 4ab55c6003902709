"""Power at the achieved sample size, over :mod:`experiments.design` (same test, same alpha).

The minimum detectable effect (MDE) uses the pre-registered baseline rate and power, the
analysed visits per arm, and ``alpha / k`` for ``k`` comparisons with the control (see
:func:`experiments.design.comparison_alpha`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from analysis.consort import Flow
from experiments.design import (
    comparison_alpha,
    minimum_detectable_effect,
    planned_design,
    power_two_proportions,
)
from experiments.model import Trial


@dataclass(frozen=True)
class ArmPower:
    """One comparison with the control: planned and achieved size, MDE and power."""

    arm: str
    planned_n_control: float
    planned_n_arm: float
    planned_mde: float
    planned_power: float | None
    n_control: int
    n_arm: int
    mde: float
    power_for_expected: float | None


@dataclass(frozen=True)
class PowerSummary:
    """Power of every comparison at the analysed sample size, with warnings."""

    baseline_rate: float
    observed_control_rate: float | None
    expected_effect: float | None
    target_power: float
    alpha: float
    comparison_alpha: float
    comparisons: int
    planned_sample_size: int
    analysed: int
    arms: tuple[ArmPower, ...]
    underpowered: bool
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def power_summary(
    preregistered: Trial, flow: Flow, observed_control_rate: float | None = None
) -> PowerSummary:
    """MDE and power of each comparison at the analysed sample size (the pre-registered plan)."""
    plan = preregistered.analysis
    control = preregistered.control_arm.id
    treated = [arm.id for arm in preregistered.arms if not arm.control]
    alpha = comparison_alpha(plan.alpha, len(treated))
    planned = {design.arm: design for design in planned_design(preregistered)}
    n_control = _analysed(flow, control)
    rows, warnings = [], []
    for arm in treated:
        n_arm = _analysed(flow, arm)
        mde = power = math.nan
        if n_control and n_arm:
            mde = minimum_detectable_effect(plan.baseline_rate, n_control, n_arm, alpha, plan.power)
            if (
                plan.expected_effect is not None
                and 0 < plan.baseline_rate + plan.expected_effect < 1
            ):
                power = power_two_proportions(
                    plan.baseline_rate,
                    plan.baseline_rate + plan.expected_effect,
                    n_control,
                    n_arm,
                    alpha,
                )
        design = planned.get(arm)
        rows.append(
            ArmPower(
                arm,
                design.n_control if design else math.nan,
                design.n_arm if design else math.nan,
                design.mde if design else math.nan,
                design.power_for_expected if design else None,
                n_control,
                n_arm,
                mde,
                None if plan.expected_effect is None else power,
            )
        )
    analysed = flow.total.analysed
    underpowered = any(
        row.power_for_expected is not None
        and (math.isnan(row.power_for_expected) or row.power_for_expected < plan.power)
        for row in rows
    )
    if underpowered:
        weakest = min(
            (r for r in rows if r.power_for_expected is not None),
            key=lambda r: -1.0 if math.isnan(r.power_for_expected) else r.power_for_expected,  # type: ignore[arg-type]
        )
        warnings.append(
            f"underpowered: at the analysed sample size the power for the pre-registered effect "
            f"of {plan.expected_effect * 100:+.2f} pp is {_percent(weakest.power_for_expected)} "
            f"for {weakest.arm} (target {plan.power:.0%}); a null result is weak evidence of "
            "no effect"
        )
    if analysed < plan.planned_sample_size:
        warnings.append(
            f"analysed {analysed:,} visits of the {plan.planned_sample_size:,} planned "
            f"({analysed / plan.planned_sample_size:.0%})"
        )
    return PowerSummary(
        plan.baseline_rate,
        observed_control_rate,
        plan.expected_effect,
        plan.power,
        plan.alpha,
        alpha,
        len(treated),
        plan.planned_sample_size,
        analysed,
        tuple(rows),
        underpowered,
        tuple(warnings),
    )


def _analysed(flow: Flow, arm: str) -> int:
    try:
        return flow.arm(arm).analysed
    except StopIteration:
        return 0


def _percent(value: float | None) -> str:
    return "not computable" if value is None or math.isnan(value) else f"{value:.0%}"
