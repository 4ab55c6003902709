"""Unadjusted effects of each arm against control, from counts per arm.

:func:`compare_arms` is the one entry point: it turns ``(arm, n, successes)`` into a frozen
:class:`Comparison` with, per arm, the rate and its Clopper-Pearson interval, the difference from
control (Newcombe hybrid score or Wald interval) with its family-level interval (Bonferroni for
Holm and Bonferroni, FCR-adjusted for Benjamini–Hochberg), risk and odds ratios with log
intervals, a two-sided p-value (pooled z-test, or its exact unconditional version when an
expected cell count is small) and the p-value adjusted across arms; plus an omnibus chi-square
test across all arms.

Rates and differences are proportions (0.031, not 3.1). Problems that do not stop the estimate
(zero cells, small samples, an undefined omnibus test) are carried in ``warnings``; only invalid
input raises :class:`ValueError`. The formulas and references are in ``docs/statistics.md`` and in
:mod:`analysis.intervals`, :mod:`analysis.significance` and :mod:`analysis.corrections`.

>>> c = compare_arms([ArmCounts("control", 1000, 30), ArmCounts("gain", 1000, 45)], "control")
>>> round(c.arms[1].diff, 3), c.arms[1].test, c.correction, c.family_size
(0.015, 'z', 'holm', 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from analysis.corrections import (
    CONTROLS,
    CORRECTION_NAMES,
    CORRECTIONS,
    Correction,
    FamilyLevel,
    adjust_p_values,
    family_interval_level,
)
from analysis.intervals import (
    DIFF_INTERVALS,
    DiffInterval,
    clopper_pearson,
    newcombe,
    odds_ratio,
    relative_risk,
)
from analysis.intervals import wald as wald_interval
from analysis.significance import (
    SMALL_SAMPLE_TESTS,
    Omnibus,
    SmallSampleTest,
    Test,
    exact_z,
    expected_cells,
    fisher,
    omnibus,
    z_test,
)

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

    Every ``…_ci_low/high`` pair is a per-comparison (unadjusted) interval at ``1 − alpha`` except
    ``diff_simultaneous_ci_low/high``: the difference's family-level interval at
    ``simultaneous_level`` (see :func:`analysis.corrections.family_interval_level`), ``None``
    when the correction has none for this arm.
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
    diff_simultaneous_ci_low: float | None = None
    diff_simultaneous_ci_high: float | None = None
    simultaneous_level: float | None = None


@dataclass(frozen=True)
class Comparison:
    """Every arm against ``control``: control first, then the other arms in input order.

    ``family_size`` is the number of comparisons the correction ran over (arms with visits other
    than the control); ``simultaneous`` names the method of the family-level difference intervals
    (``"bonferroni"``, ``"benjamini-yekutieli"`` or ``None``) and ``simultaneous_level`` their
    level. ``small_sample`` is the test used for an arm when an expected cell count of its 2×2
    table with the control is below ``exact_below``.
    """

    control: str
    correction: Correction
    alpha: float
    interval: DiffInterval
    arms: tuple[ArmEstimate, ...]
    omnibus_chi2: float
    omnibus_df: int
    omnibus_p: float
    warnings: tuple[str, ...]
    exact_below: float = 5.0
    rate_interval: str = "clopper-pearson"
    small_sample: SmallSampleTest = "exact-z"
    family_size: int = 0
    simultaneous: str | None = None
    simultaneous_level: float | None = None

    def arm(self, name: str) -> ArmEstimate:
        """The estimate of the arm called ``name``."""
        for estimate in self.arms:
            if estimate.arm == name:
                return estimate
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: tuples become lists, NaN and infinities become ``None``.

        Besides the fields, ``family`` names the correction and the number of comparisons it ran
        over, ``intervals`` says what every interval field holds (level, method, adjustment),
        and each arm repeats its difference intervals as ``diff_ci_unadjusted`` and
        ``diff_ci_simultaneous`` objects with their levels and methods.
        """
        data = _json_ready(asdict(self))
        data["family"] = self.family()
        data["intervals"] = self.interval_fields()
        for arm, estimate in zip(data["arms"], self.arms, strict=True):
            arm.update(_json_ready(self.difference_intervals(estimate)))
        return data

    def family(self) -> dict[str, Any]:
        """The correction, what it controls, and the number of comparisons in its family."""
        return {
            "correction": self.correction,
            "correction_name": CORRECTION_NAMES[self.correction],
            "controls": CONTROLS[self.correction],
            "comparisons": self.family_size,
            "alpha": self.alpha,
        }

    def interval_fields(self) -> list[dict[str, Any]]:
        """What each ``…_ci_low/high`` pair of an arm holds: estimate, level, method, adjustment."""
        level = 1.0 - self.alpha
        unadjusted = "none: per comparison"
        described = [
            ("rate", level, self.rate_interval, unadjusted),
            ("diff", level, self.interval, unadjusted),
            ("relative_risk", level, "katz-log", unadjusted),
            ("odds_ratio", level, "woolf-log", unadjusted),
        ]
        fields = [
            {
                "fields": [f"{name}_ci_low", f"{name}_ci_high"],
                "estimate": name,
                "level": value,
                "method": method,
                "adjustment": adjustment,
            }
            for name, value, method, adjustment in described
        ]
        if self.simultaneous is not None:
            fields.append(
                {
                    "fields": ["diff_simultaneous_ci_low", "diff_simultaneous_ci_high"],
                    "estimate": "diff",
                    "level": self.simultaneous_level,
                    "method": self.interval,
                    "adjustment": self.simultaneous,
                    "family_size": self.family_size,
                    "applies_to": (
                        "comparisons selected by Benjamini-Hochberg"
                        if self.simultaneous == "benjamini-yekutieli"
                        else "every comparison"
                    ),
                }
            )
        return fields

    def difference_intervals(self, estimate: ArmEstimate) -> dict[str, Any]:
        """An arm's two difference intervals as labelled objects (``None`` where absent)."""
        unadjusted = None
        if estimate.diff_ci_low is not None and estimate.diff_ci_high is not None:
            unadjusted = {
                "low": estimate.diff_ci_low,
                "high": estimate.diff_ci_high,
                "level": 1.0 - self.alpha,
                "method": self.interval,
                "adjustment": "none",
            }
        simultaneous = None
        if estimate.diff_simultaneous_ci_low is not None:
            simultaneous = {
                "low": estimate.diff_simultaneous_ci_low,
                "high": estimate.diff_simultaneous_ci_high,
                "level": estimate.simultaneous_level,
                "method": self.interval,
                "adjustment": self.simultaneous,
                "family_size": self.family_size,
            }
        return {"diff_ci_unadjusted": unadjusted, "diff_ci_simultaneous": simultaneous}


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
    exact_below: float,
    small_sample: str,
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
    if not exact_below >= 0.0:
        raise ValueError(f"exact_below must be 0 or more, not {exact_below}")
    if small_sample not in SMALL_SAMPLE_TESTS:
        raise ValueError(
            f"unknown small-sample test {small_sample!r}; choose one of "
            f"{', '.join(SMALL_SAMPLE_TESTS)}"
        )
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
    low, high = clopper_pearson(c.successes, c.n, alpha)
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


def _difference_interval(
    interval: str, x1: int, n1: int, x2: int, n2: int, alpha: float
) -> tuple[float, float]:
    """The difference's interval by ``interval`` (Newcombe or Wald) at level ``1 − alpha``."""
    if interval == "newcombe":
        return newcombe(x1, n1, x2, n2, alpha)
    return wald_interval(x1, n1, x2, n2, alpha)


def _test(
    x1: int, n1: int, x2: int, n2: int, exact_below: float, small_sample: SmallSampleTest
) -> tuple[Test, float]:
    """The z-test, or the small-sample test when an expected cell is below ``exact_below``."""
    if min(expected_cells(x1, n1, x2, n2)) < exact_below:
        if small_sample == "fisher":
            return "fisher", fisher(x1, n1, x2, n2)
        return "exact-z", exact_z(x1, n1, x2, n2)
    return "z", z_test(x1, n1, x2, n2)[1]


def _versus_control(
    c: ArmCounts,
    k: ArmCounts,
    alpha: float,
    interval: str,
    exact_below: float,
    small_sample: SmallSampleTest,
) -> ArmEstimate:
    """Arm ``c`` against control ``k`` (both with n > 0); ``p_adjusted`` is filled in later."""
    x1, n1, x2, n2 = int(c.successes), int(c.n), int(k.successes), int(k.n)
    notes: list[str] = []
    rate, rate_low, rate_high = _rate(c, alpha)
    diff_low, diff_high = _difference_interval(interval, x1, n1, x2, n2, alpha)
    if interval == "wald" and min(x1, n1 - x1, x2, n2 - x2) < 5:
        notes.append(
            f"arm {c.arm}: fewer than 5 successes or failures in an arm; the Wald interval "
            "can be badly off here; prefer the Newcombe interval"
        )
    test, p = _test(x1, n1, x2, n2, exact_below, small_sample)
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
    exact_below: float = 5.0,
    small_sample: SmallSampleTest = "exact-z",
) -> Comparison:
    """Each arm against ``control``, p-values adjusted across the arms with ``correction``.

    Intervals are two-sided at level ``1 − alpha``; the difference also gets its family-level
    interval (:func:`analysis.corrections.family_interval_level`). The small-sample test
    (``"exact-z"``, the exact unconditional z-test, or ``"fisher"``) replaces the z-test for an
    arm when any expected cell of its 2×2 table with the control is below ``exact_below`` (0
    turns it off). Arms with ``n = 0`` are listed with ``None`` effects and a warning and are left
    out of the correction and the omnibus test. Raises :class:`ValueError` for invalid input
    (duplicate arms, unknown control, successes > n, a control without visits, …).
    """
    _validate(counts, control, correction, alpha, interval, exact_below, small_sample)
    by_name = {c.arm: c for c in counts}
    k = by_name[control]
    if k.n == 0:
        raise ValueError(f"control arm {control!r} has no analysed visits")
    others = [c for c in counts if c.arm != control]
    estimates = [
        _versus_control(c, k, alpha, interval, exact_below, small_sample)
        if c.n
        else _empty(c, interval, alpha, False)
        for c in others
    ]
    adjusted = adjust_p_values([e.p_value for e in estimates], correction)
    estimates = [
        e if p is None else _with_adjusted(e, p, alpha)
        for e, p in zip(estimates, adjusted, strict=True)
    ]
    testable = sum(e.p_value is not None for e in estimates)
    selected = sum(bool(e.significant) for e in estimates)
    family = family_interval_level(correction, alpha, testable, selected)
    estimates = [_with_family_interval(e, k, family) for e in estimates]
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
        exact_below=exact_below,
        small_sample=small_sample,
        family_size=testable,
        simultaneous=family.method,
        simultaneous_level=family.level,
    )


def _with_adjusted(estimate: ArmEstimate, p_adjusted: float, alpha: float) -> ArmEstimate:
    return replace(estimate, p_adjusted=p_adjusted, significant=p_adjusted < alpha)


def _with_family_interval(
    estimate: ArmEstimate, control: ArmCounts, family: FamilyLevel
) -> ArmEstimate:
    """The arm's difference interval at the family level, where the correction gives one."""
    if estimate.p_value is None or family.alpha is None:
        return estimate
    if family.selected_only and not estimate.significant:
        return estimate
    low, high = _difference_interval(
        estimate.diff_method,
        estimate.successes,
        estimate.n,
        int(control.successes),
        int(control.n),
        family.alpha,
    )
    return replace(
        estimate,
        diff_simultaneous_ci_low=low,
        diff_simultaneous_ci_high=high,
        simultaneous_level=family.level,
    )
