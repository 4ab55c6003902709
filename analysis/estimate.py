"""Unadjusted effects of each arm against control, from counts per arm.

:func:`compare_arms` is the one entry point: it turns ``(arm, n, successes)`` into a frozen
:class:`Comparison` with, per arm, the rate and its Wilson interval, the difference from control
(Newcombe hybrid score or Wald interval), risk and odds ratios with log intervals, a two-sided
p-value (pooled z-test, or Fisher's exact test when an expected cell count is small) and the
p-value adjusted across arms; plus an omnibus chi-square test across all arms.

Rates and differences are proportions (0.031, not 3.1). Problems that do not stop the estimate
(zero cells, small samples, an undefined omnibus test) are carried in ``warnings``; only invalid
input raises :class:`ValueError`. The formulas and references are in ``docs/statistics.md`` and in
:mod:`analysis.intervals`, :mod:`analysis.significance` and :mod:`analysis.corrections`.

>>> c = compare_arms([ArmCounts("control", 1000, 30), ArmCounts("gain", 1000, 45)], "control")
>>> round(c.arms[1].diff, 3), c.arms[1].test, c.correction
(0.015, 'z', 'holm')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from analysis.corrections import CORRECTIONS, Correction, adjust_p_values
from analysis.intervals import (
    DIFF_INTERVALS,
    DiffInterval,
    newcombe,
    odds_ratio,
    relative_risk,
    wilson,
)
from analysis.intervals import wald as wald_interval
from analysis.significance import Omnibus, Test, expected_cells, fisher, omnibus, z_test

__all__ = ["ArmCounts", "ArmEstimate", "Comparison", "compare_arms"]

NAN = math.nan


@dataclass(frozen=True)
class ArmCounts:
    """Analysed visits ``n`` and visits with the outcome (``successes``) in one arm."""

    arm: str
    n: int
    successes: int


@dataclass(frozen=True)
class ArmEstimate:
    """One arm: its rate, and (unless it is the control) its effect against the control.

    ``diff`` is ``rate − control rate``; ratios are arm over control. Fields that do not apply
    (the control's effect, an arm without visits) are ``None``; an arm without visits has a NaN
    rate. ``significant`` is ``p_adjusted < alpha``.
    """

    arm: str
    n: int
    successes: int
    rate: float
    rate_ci_low: float
    rate_ci_high: float
    is_control: bool
    diff: float | None
    diff_ci_low: float | None
    diff_ci_high: float | None
    diff_method: str
    p_value: float | None
    p_adjusted: float | None
    test: Test | None
    relative_risk: float | None
    relative_risk_ci_low: float | None
    relative_risk_ci_high: float | None
    odds_ratio: float | None
    odds_ratio_ci_low: float | None
    odds_ratio_ci_high: float | None
    warnings: tuple[str, ...]
    significant: bool | None = None


@dataclass(frozen=True)
class Comparison:
    """Every arm against ``control``: control first, then the other arms in input order."""

    control: str
    correction: Correction
    alpha: float
    interval: DiffInterval
    arms: tuple[ArmEstimate, ...]
    omnibus_chi2: float
    omnibus_df: int
    omnibus_p: float
    warnings: tuple[str, ...]
    fisher_below: float = 5.0
    rate_interval: str = "wilson"

    def arm(self, name: str) -> ArmEstimate:
        """The estimate of the arm called ``name``."""
        for estimate in self.arms:
            if estimate.arm == name:
                return estimate
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: tuples become lists, NaN and infinities become ``None``."""
        return _json_ready(asdict(self))


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _validate(
    counts: Sequence[ArmCounts],
    control: str,
    correction: str,
    alpha: float,
    interval: str,
    fisher_below: float,
) -> None:
    if correction not in CORRECTIONS:
        raise ValueError(
            f"unknown correction {correction!r}; choose one of {', '.join(CORRECTIONS)}"
        )
    if interval not in DIFF_INTERVALS:
        raise ValueError(
            f"unknown interval {interval!r}; choose one of {', '.join(DIFF_INTERVALS)}"
        )
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha}")
    if not fisher_below >= 0.0:
        raise ValueError(f"fisher_below must be 0 or more, not {fisher_below}")
    if len(counts) < 2:
        raise ValueError("a comparison needs at least two arms (a control and one other)")
    seen: set[str] = set()
    for c in counts:
        if c.arm in seen:
            raise ValueError(f"arm {c.arm!r} appears more than once")
        seen.add(c.arm)
        for field in ("n", "successes"):
            value = getattr(c, field)
            if isinstance(value, bool) or int(value) != value:
                raise ValueError(f"arm {c.arm!r}: {field} must be a whole number, not {value!r}")
        if c.n < 0 or c.successes < 0:
            raise ValueError(f"arm {c.arm!r}: counts cannot be negative")
        if c.successes > c.n:
            raise ValueError(f"arm {c.arm!r}: successes ({c.successes}) exceed n ({c.n})")
    if control not in seen:
        raise ValueError(
            f"control arm {control!r} is not among the arms: {', '.join(sorted(seen))}"
        )


def _rate(c: ArmCounts, alpha: float) -> tuple[float, float, float]:
    if c.n == 0:
        return NAN, NAN, NAN
    low, high = wilson(c.successes, c.n, alpha)
    return c.successes / c.n, low, high


def _empty(c: ArmCounts, interval: str, alpha: float, is_control: bool) -> ArmEstimate:
    rate, low, high = _rate(c, alpha)
    notes = () if c.n else (f"arm {c.arm}: no analysed visits, so no estimate",)
    return ArmEstimate(
        arm=c.arm, n=int(c.n), successes=int(c.successes),
        rate=rate, rate_ci_low=low, rate_ci_high=high, is_control=is_control,
        diff=None, diff_ci_low=None, diff_ci_high=None, diff_method=interval,
        p_value=None, p_adjusted=None, test=None,
        relative_risk=None, relative_risk_ci_low=None, relative_risk_ci_high=None,
        odds_ratio=None, odds_ratio_ci_low=None, odds_ratio_ci_high=None,
        warnings=notes,
    )  # fmt: skip


def _versus_control(
    c: ArmCounts, k: ArmCounts, alpha: float, interval: str, fisher_below: float
) -> ArmEstimate:
    """Arm ``c`` against control ``k`` (both with n > 0); ``p_adjusted`` is filled in later."""
    x1, n1, x2, n2 = int(c.successes), int(c.n), int(k.successes), int(k.n)
    notes: list[str] = []
    rate, rate_low, rate_high = _rate(c, alpha)
    if interval == "newcombe":
        diff_low, diff_high = newcombe(x1, n1, x2, n2, alpha)
    else:
        diff_low, diff_high = wald_interval(x1, n1, x2, n2, alpha)
        if min(x1, n1 - x1, x2, n2 - x2) < 5:
            notes.append(
                f"arm {c.arm}: fewer than 5 successes or failures in an arm; the Wald interval "
                "can be badly off here; prefer the Newcombe interval"
            )
    if min(expected_cells(x1, n1, x2, n2)) < fisher_below:
        test: Test = "fisher"
        p = fisher(x1, n1, x2, n2)
    else:
        test = "z"
        p = z_test(x1, n1, x2, n2)[1]
    rr = relative_risk(x1, n1, x2, n2, alpha)
    odds = odds_ratio(x1, n1, x2, n2, alpha)
    if rr.corrected:
        notes.append(
            f"arm {c.arm}: no successes in this arm or in the control, or only successes in "
            "both; the risk ratio adds 0.5 "
            "to every cell (Haldane–Anscombe correction)"
        )
    if odds.corrected:
        notes.append(
            f"arm {c.arm}: a zero cell in the 2×2 table against the control; the odds ratio "
            "adds 0.5 to every cell (Haldane–Anscombe correction)"
        )
    return ArmEstimate(
        arm=c.arm, n=n1, successes=x1,
        rate=rate, rate_ci_low=rate_low, rate_ci_high=rate_high, is_control=False,
        diff=rate - x2 / n2, diff_ci_low=diff_low, diff_ci_high=diff_high, diff_method=interval,
        p_value=p, p_adjusted=None, test=test,
        relative_risk=rr.value, relative_risk_ci_low=rr.ci_low, relative_risk_ci_high=rr.ci_high,
        odds_ratio=odds.value, odds_ratio_ci_low=odds.ci_low, odds_ratio_ci_high=odds.ci_high,
        warnings=tuple(notes),
    )  # fmt: skip


def compare_arms(
    counts: Sequence[ArmCounts],
    control: str,
    *,
    correction: Correction = "holm",
    alpha: float = 0.05,
    interval: DiffInterval = "newcombe",
    fisher_below: float = 5.0,
) -> Comparison:
    """Each arm against ``control``, p-values adjusted across the arms with ``correction``.

    Intervals are two-sided at level ``1 − alpha``. Fisher's exact test replaces the z-test for
    an arm when any expected cell of its 2×2 table with the control is below ``fisher_below``
    (0 turns Fisher off). Arms with ``n = 0`` are listed with ``None`` effects and a warning and
    are left out of the correction and the omnibus test. Raises :class:`ValueError` for invalid
    input (duplicate arms, unknown control, successes > n, a control without visits, …).
    """
    _validate(counts, control, correction, alpha, interval, fisher_below)
    by_name = {c.arm: c for c in counts}
    k = by_name[control]
    if k.n == 0:
        raise ValueError(f"control arm {control!r} has no analysed visits")
    others = [c for c in counts if c.arm != control]
    estimates = [
        _versus_control(c, k, alpha, interval, fisher_below)
        if c.n
        else _empty(c, interval, alpha, False)
        for c in others
    ]
    adjusted = adjust_p_values([e.p_value for e in estimates], correction)
    estimates = [
        e if p is None else _with_adjusted(e, p, alpha)
        for e, p in zip(estimates, adjusted, strict=True)
    ]
    warnings: list[str] = []
    tested = [(int(c.successes), int(c.n)) for c in (k, *others) if c.n]
    test = omnibus(tested) if len(tested) > 1 else Omnibus(NAN, 0, NAN, 0.0)
    if len(tested) < 2:
        warnings.append("omnibus chi-square undefined: only the control has analysed visits")
    elif math.isnan(test.chi2):
        warnings.append("omnibus chi-square undefined: every analysed visit had the same outcome")
    elif test.min_expected < 5:
        warnings.append(
            f"omnibus chi-square: smallest expected count {test.min_expected:.2f} is below 5; "
            "the chi-square approximation may be poor"
        )
    testable = sum(e.p_value is not None for e in estimates)
    if correction == "none" and testable > 1:
        warnings.append(
            f"p-values are not adjusted for the {testable} comparisons with the control"
        )
    return Comparison(
        control=control,
        correction=correction,
        alpha=alpha,
        interval=interval,
        arms=(_empty(k, interval, alpha, True), *estimates),
        omnibus_chi2=test.chi2,
        omnibus_df=test.df,
        omnibus_p=test.p_value,
        warnings=tuple(warnings),
        fisher_below=fisher_below,
    )


def _with_adjusted(estimate: ArmEstimate, p_adjusted: float, alpha: float) -> ArmEstimate:
    return replace(estimate, p_adjusted=p_adjusted, significant=p_adjusted < alpha)
