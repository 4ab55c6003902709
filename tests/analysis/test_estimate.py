"""analysis.estimate, intervals and significance against independent computations.

Every reference here is computed by other code than ours: statsmodels (``proportion_confint``,
``confint_proportions_2indep``, ``proportions_ztest``, ``Table2x2``), scipy
(``chi2_contingency``), or a hypergeometric sum written out in the test. Published examples are
in ``test_published.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom, binomtest, chi2_contingency, norm
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from analysis.estimate import ArmCounts, Comparison, compare_arms
from analysis.intervals import clopper_pearson, newcombe, odds_ratio, relative_risk, wald, wilson
from analysis.significance import fisher, omnibus, z_test

TOL = 1e-9
GRID = [(0, 7), (1, 7), (3, 7), (7, 7), (12, 50), (0, 200), (199, 200), (56, 70), (3085, 135665)]
ALPHAS = [0.05, 0.01, 0.1]


def close(a: float, b: float, tol: float = TOL) -> bool:
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


# -- single proportion: Wilson --------------------------------------------------------------


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize(("x", "n"), GRID)
def test_wilson_matches_statsmodels(x: int, n: int, alpha: float) -> None:
    low, high = proportion_confint(x, n, alpha=alpha, method="wilson")
    ours = wilson(x, n, alpha)
    assert close(ours[0], low) and close(ours[1], high)


@pytest.mark.parametrize("n", [1, 20, 1000])
def test_wilson_with_no_successes_has_the_closed_form_upper_limit(n: int) -> None:
    """x = 0: the lower limit is 0 and the upper limit is z²/(n + z²) (Wilson 1927)."""
    z = norm.ppf(0.975)
    assert wilson(0, n) == (0.0, pytest.approx(z * z / (n + z * z), abs=TOL))


# -- single proportion: Clopper-Pearson (the report's rate interval) ------------------------


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize(("x", "n"), GRID)
def test_clopper_pearson_matches_statsmodels_and_scipy(x: int, n: int, alpha: float) -> None:
    low, high = proportion_confint(x, n, alpha=alpha, method="beta")
    ours = clopper_pearson(x, n, alpha)
    assert close(ours[0], low, 1e-8) and close(ours[1], high, 1e-8)
    exact = binomtest(x, n).proportion_ci(confidence_level=1 - alpha, method="exact")
    assert close(ours[0], exact.low, 1e-8) and close(ours[1], exact.high, 1e-8)


def test_clopper_pearson_published_limits() -> None:
    """Newcombe (1998a) Table I, method 5 (exact): 81/263 -> 0.2527-0.3676; 15/148 ->
    0.0578-0.1617; 0/20 -> 0-0.1684."""
    for (x, n), (low, high) in {
        (81, 263): (0.2527, 0.3676),
        (15, 148): (0.0578, 0.1617),
        (0, 20): (0.0, 0.1684),
    }.items():
        ours = clopper_pearson(x, n)
        assert round(ours[0], 4) == low and round(ours[1], 4) == high


def test_clopper_pearson_covers_at_least_its_level_where_wilson_does_not() -> None:
    """Exact coverage (summed binomial probabilities, no simulation) at n = 50, p = 2%: the
    reason the report's rate interval is Clopper-Pearson, not Wilson."""
    n, p = 50, 0.02
    pmf = binom.pmf(range(n + 1), n, p)

    def coverage(interval) -> float:
        return sum(w for x, w in enumerate(pmf) if interval(x, n)[0] <= p <= interval(x, n)[1])

    assert coverage(clopper_pearson) >= 0.95
    assert coverage(wilson) < 0.93


@pytest.mark.parametrize("bad", [(-1, 10), (11, 10), (0, 0)])
def test_clopper_pearson_refuses_impossible_counts(bad: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        clopper_pearson(*bad)


# -- difference of two proportions ----------------------------------------------------------

PAIRS = [(a, b) for a in GRID for b in GRID[::2]]


@pytest.mark.parametrize(("arm", "control"), PAIRS)
def test_newcombe_matches_statsmodels_newcomb(
    arm: tuple[int, int], control: tuple[int, int]
) -> None:
    low, high = confint_proportions_2indep(*arm, *control, method="newcomb", compare="diff")
    ours = newcombe(*arm, *control)
    assert close(ours[0], low) and close(ours[1], high)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_newcombe_and_wald_follow_alpha(alpha: float) -> None:
    args = (12, 50, 30, 60)
    expected = confint_proportions_2indep(*args, method="newcomb", alpha=alpha)
    assert all(close(a, b) for a, b in zip(newcombe(*args, alpha=alpha), expected, strict=True))
    expected = confint_proportions_2indep(*args, method="wald", alpha=alpha)
    assert all(close(a, b) for a, b in zip(wald(*args, alpha=alpha), expected, strict=True))


@pytest.mark.parametrize(("arm", "control"), PAIRS)
def test_wald_matches_statsmodels(arm: tuple[int, int], control: tuple[int, int]) -> None:
    low, high = confint_proportions_2indep(*arm, *control, method="wald", compare="diff")
    ours = wald(*arm, *control)
    assert close(ours[0], low) and close(ours[1], high)


# -- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("arm", "control"), [p for p in PAIRS if p[0][0] + p[1][0] > 0])
def test_z_test_matches_statsmodels_pooled_z(
    arm: tuple[int, int], control: tuple[int, int]
) -> None:
    x1, n1 = arm
    x2, n2 = control
    if x1 + x2 == n1 + n2:
        pytest.skip("every observation a success: the pooled variance is 0")
    z, p = proportions_ztest([x1, x2], [n1, n2])
    ours = z_test(x1, n1, x2, n2)
    assert close(ours[0], float(z)) and close(ours[1], float(p))


def test_z_squared_is_pearson_chi_square_without_correction() -> None:
    table = np.array([[45, 955], [30, 970]])
    statistic, p, _, _ = chi2_contingency(table, correction=False)
    z, ours_p = z_test(45, 1000, 30, 1000)
    assert close(z * z, statistic) and close(ours_p, p)


def _fisher_by_enumeration(a: int, b: int, c: int, d: int) -> float:
    """Two-sided Fisher p: sum of hypergeometric tables no more probable than the observed."""
    row1, col1, total = a + b, a + c, a + b + c + d

    def probability(x: int) -> float:
        return math.comb(col1, x) * math.comb(total - col1, row1 - x) / math.comb(total, row1)

    observed = probability(a)
    support = range(max(0, row1 + col1 - total), min(row1, col1) + 1)
    return sum(p for x in support if (p := probability(x)) <= observed * (1 + 1e-7))


@pytest.mark.parametrize(
    "table", [(3, 1, 1, 3), (0, 10, 4, 6), (1, 9, 6, 4), (7, 3, 2, 8), (2, 40, 9, 31)]
)
def test_fisher_matches_hypergeometric_enumeration(table: tuple[int, int, int, int]) -> None:
    a, b, c, d = table
    assert close(fisher(a, a + b, c, c + d), _fisher_by_enumeration(a, b, c, d))


def test_the_small_sample_test_is_used_when_an_expected_cell_is_small() -> None:
    # Expected successes in the arm: 20 * 6 / 220 < 5 -> the small-sample test.
    counts = [ArmCounts("c", 200, 2), ArmCounts("a", 20, 4)]
    assert compare_arms(counts, "c").arm("a").test == "exact-z"
    fisher_test = compare_arms(counts, "c", small_sample="fisher").arm("a")
    assert fisher_test.test == "fisher"
    assert close(fisher_test.p_value, _fisher_by_enumeration(4, 16, 2, 198))
    # Every expected cell >= 5 -> z-test, and exact_below=0 turns the small-sample test off.
    large = compare_arms([ArmCounts("c", 200, 20), ArmCounts("a", 200, 35)], "c")
    assert large.arm("a").test == "z"
    assert compare_arms(counts, "c", exact_below=0).arm("a").test == "z"


def test_the_small_sample_threshold_is_on_expected_not_observed_counts() -> None:
    # Observed 4 successes, but expected 100 * 10 / 200 = 5 in every success cell -> z-test.
    comparison = compare_arms([ArmCounts("c", 100, 6), ArmCounts("a", 100, 4)], "c")
    assert comparison.arm("a").test == "z"


# -- ratios ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arm", "control"), [(a, b) for a, b in PAIRS if 0 < a[0] < a[1] and 0 < b[0] < b[1]]
)
def test_ratios_match_statsmodels_table2x2(arm: tuple[int, int], control: tuple[int, int]) -> None:
    (x1, n1), (x2, n2) = arm, control
    table = Table2x2(np.array([[x1, n1 - x1], [x2, n2 - x2]]), shift_zeros=False)
    rr, odds = relative_risk(x1, n1, x2, n2), odds_ratio(x1, n1, x2, n2)
    assert close(rr.value, table.riskratio) and close(odds.value, table.oddsratio)
    assert all(
        close(a, b) for a, b in zip((rr.ci_low, rr.ci_high), table.riskratio_confint(), strict=True)
    )
    assert all(
        close(a, b)
        for a, b in zip((odds.ci_low, odds.ci_high), table.oddsratio_confint(), strict=True)
    )
    assert not rr.corrected and not odds.corrected


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"), [(0, 50, 4, 60), (3, 40, 0, 40), (0, 10, 0, 12), (10, 10, 12, 12)]
)
def test_zero_successes_use_haldane_and_match_statsmodels_on_the_shifted_table(
    x1: int, n1: int, x2: int, n2: int
) -> None:
    """Haldane–Anscombe adds 0.5 to all four cells (statsmodels' ``shift_zeros`` would add it
    to the zero cells only, so the shifted table is passed in explicitly)."""
    table = Table2x2(np.array([[x1, n1 - x1], [x2, n2 - x2]]) + 0.5, shift_zeros=False)
    rr, odds = relative_risk(x1, n1, x2, n2), odds_ratio(x1, n1, x2, n2)
    assert rr.corrected and odds.corrected
    assert close(rr.value, table.riskratio) and close(odds.value, table.oddsratio)
    assert all(
        close(a, b) for a, b in zip((rr.ci_low, rr.ci_high), table.riskratio_confint(), strict=True)
    )
    assert all(
        close(a, b)
        for a, b in zip((odds.ci_low, odds.ci_high), table.oddsratio_confint(), strict=True)
    )


def test_all_successes_in_both_arms_give_an_interval_not_a_point() -> None:
    """10/10 vs 10/10: uncorrected, SE(log RR) = 0 and the interval would be [1, 1]."""
    rr = relative_risk(10, 10, 10, 10)
    half = 1.959963984540054 * math.sqrt(2 * (1 / 10.5 - 1 / 11))  # hand-computed, 0.5 added
    assert rr.corrected and rr.value == 1.0
    assert close(rr.ci_low, math.exp(-half)) and close(rr.ci_high, math.exp(half))
    assert rr.ci_low < 0.85 and rr.ci_high > 1.18


def test_haldane_only_where_needed() -> None:
    """All successes in one arm: the odds ratio needs 0.5 added, the risk ratio does not."""
    rr, odds = relative_risk(10, 10, 5, 10), odds_ratio(10, 10, 5, 10)
    assert not rr.corrected and rr.value == 2.0
    assert odds.corrected and close(odds.value, (10.5 / 0.5) / (5.5 / 5.5))
    comparison = compare_arms([ArmCounts("c", 10, 5), ArmCounts("a", 10, 10)], "c")
    notes = comparison.arm("a").warnings
    assert any("odds ratio adds 0.5" in w for w in notes)
    assert not any("risk ratio adds 0.5" in w for w in notes)


# -- omnibus --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "counts",
    [[(56730, 191243), (12021, 38218), (12316, 38204)], [(3, 20), (9, 21), (1, 30), (5, 25)]],
)
def test_omnibus_matches_scipy_chi2_contingency(counts: list[tuple[int, int]]) -> None:
    table = np.array([[x, n - x] for x, n in counts])
    statistic, p, dof, expected = chi2_contingency(table, correction=False)
    ours = omnibus(counts)
    assert close(ours.chi2, statistic) and close(ours.p_value, p) and ours.df == dof
    assert close(ours.min_expected, expected.min())


def test_omnibus_is_undefined_when_every_visit_has_the_same_outcome() -> None:
    comparison = compare_arms([ArmCounts("c", 30, 0), ArmCounts("a", 40, 0)], "c")
    assert math.isnan(comparison.omnibus_chi2) and math.isnan(comparison.omnibus_p)
    assert any("omnibus chi-square undefined" in w for w in comparison.warnings)
    assert comparison.to_dict()["omnibus_chi2"] is None


# -- compare_arms as a whole ----------------------------------------------------------------

ARMS = [ArmCounts("gain", 1000, 45), ArmCounts("control", 1200, 36), ArmCounts("norm", 900, 40)]


def test_compare_arms_puts_control_first_and_keeps_input_order() -> None:
    comparison = compare_arms(ARMS, "control")
    assert [e.arm for e in comparison.arms] == ["control", "gain", "norm"]
    control = comparison.arms[0]
    assert control.is_control and control.diff is None and control.p_value is None
    assert control.rate == 36 / 1200


@pytest.mark.parametrize(
    ("ours", "theirs"), [("holm", "holm"), ("bonferroni", "bonferroni"), ("bh", "fdr_bh")]
)
def test_compare_arms_adjusts_like_multipletests(ours: str, theirs: str) -> None:
    comparison = compare_arms(ARMS, "control", correction=ours)  # type: ignore[arg-type]
    raw = [e.p_value for e in comparison.arms[1:]]
    expected = multipletests(raw, method=theirs)[1]
    assert all(close(e.p_adjusted, p) for e, p in zip(comparison.arms[1:], expected, strict=True))
    assert all(e.significant == (e.p_adjusted < 0.05) for e in comparison.arms[1:])


def test_compare_arms_fills_every_field_from_the_formulas() -> None:
    comparison = compare_arms(ARMS, "control", alpha=0.1, interval="wald")
    gain = comparison.arm("gain")
    assert gain.diff == 45 / 1000 - 36 / 1200 and gain.diff_method == "wald"
    assert (gain.diff_ci_low, gain.diff_ci_high) == wald(45, 1000, 36, 1200, 0.1)
    assert (gain.rate_ci_low, gain.rate_ci_high) == clopper_pearson(45, 1000, 0.1)
    assert gain.p_value == z_test(45, 1000, 36, 1200)[1] and gain.test == "z"
    assert comparison.interval == "wald" and comparison.alpha == 0.1


def test_an_arm_without_visits_is_listed_but_not_estimated() -> None:
    comparison = compare_arms([*ARMS, ArmCounts("empty", 0, 0)], "control")
    empty = comparison.arm("empty")
    assert empty.diff is None and empty.p_value is None and math.isnan(empty.rate)
    assert "no analysed visits" in empty.warnings[0]
    # left out of the family: Holm over the two arms that have visits
    expected = multipletests([e.p_value for e in comparison.arms[1:3]], method="holm")[1]
    assert close(comparison.arm("norm").p_adjusted, expected[1])
    assert comparison.omnibus_df == 2
    data = comparison.to_dict()
    assert data["arms"][-1]["rate"] is None


def test_to_dict_is_json_ready() -> None:
    import json

    data = compare_arms(ARMS, "control").to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["arms"][1]["arm"] == "gain"
    assert isinstance(data["arms"], list) and isinstance(data["warnings"], list)


def test_no_correction_with_several_arms_says_so() -> None:
    comparison = compare_arms(ARMS, "control", correction="none")
    assert any("not adjusted for the 2 comparisons" in w for w in comparison.warnings)
    assert all(e.p_adjusted == e.p_value for e in comparison.arms[1:])


def test_wald_with_few_events_warns() -> None:
    comparison = compare_arms(
        [ArmCounts("c", 100, 3), ArmCounts("a", 100, 9)], "c", interval="wald"
    )
    assert any("Wald interval can be badly off" in w for w in comparison.arm("a").warnings)


@pytest.mark.parametrize(
    ("counts", "control", "kwargs", "message"),
    [
        ([ArmCounts("c", 10, 1)], "c", {}, "at least two arms"),
        ([ArmCounts("c", 10, 1), ArmCounts("c", 10, 2)], "c", {}, "more than once"),
        ([ArmCounts("c", 10, 1), ArmCounts("a", 10, 2)], "x", {}, "not among the arms"),
        ([ArmCounts("c", 10, 11), ArmCounts("a", 10, 2)], "c", {}, "exceed n"),
        ([ArmCounts("c", -1, 0), ArmCounts("a", 10, 2)], "c", {}, "negative"),
        ([ArmCounts("c", 10.5, 1), ArmCounts("a", 10, 2)], "c", {}, "whole number"),  # type: ignore[arg-type]
        ([ArmCounts("c", 0, 0), ArmCounts("a", 10, 2)], "c", {}, "control arm 'c' has no"),
        (
            [ArmCounts("c", 10, 1), ArmCounts("a", 10, 2)],
            "c",
            {"correction": "sidak"},
            "unknown correction",
        ),
        (
            [ArmCounts("c", 10, 1), ArmCounts("a", 10, 2)],
            "c",
            {"interval": "exact"},
            "unknown interval",
        ),
        ([ArmCounts("c", 10, 1), ArmCounts("a", 10, 2)], "c", {"alpha": 1.5}, "alpha"),
    ],
)
def test_invalid_input_raises_value_error(
    counts: list[ArmCounts], control: str, kwargs: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compare_arms(counts, control, **kwargs)


# -- properties -----------------------------------------------------------------------------


@st.composite
def arm_counts(draw: st.DrawFn, max_n: int = 5000) -> ArmCounts:
    n = draw(st.integers(min_value=1, max_value=max_n))
    return ArmCounts(draw(st.text("abcdefgh", min_size=1, max_size=6)), n, draw(st.integers(0, n)))


@st.composite
def trials(draw: st.DrawFn) -> tuple[list[ArmCounts], str]:
    arms = draw(st.lists(arm_counts(), min_size=2, max_size=8, unique_by=lambda c: c.arm))
    return arms, draw(st.sampled_from([c.arm for c in arms]))


@settings(max_examples=150, deadline=None)
@given(
    trial=trials(),
    correction=st.sampled_from(["holm", "bonferroni", "bh", "none"]),
    interval=st.sampled_from(["newcombe", "wald"]),
    alpha=st.sampled_from([0.01, 0.05, 0.2]),
)
def test_every_interval_contains_its_estimate_and_adjusted_p_is_not_smaller(
    trial: tuple[list[ArmCounts], str], correction: str, interval: str, alpha: float
) -> None:
    counts, control = trial
    comparison: Comparison = compare_arms(
        counts,
        control,
        correction=correction,
        interval=interval,
        alpha=alpha,  # type: ignore[arg-type]
    )
    eps = 1e-12
    for e in comparison.arms:
        assert e.rate_ci_low - eps <= e.rate <= e.rate_ci_high + eps
        assert e.rate_ci_low >= 0.0 and e.rate_ci_high <= 1.0
        if e.is_control:
            continue
        assert e.diff_ci_low - eps <= e.diff <= e.diff_ci_high + eps
        if interval == "newcombe":
            assert -1.0 - eps <= e.diff_ci_low and e.diff_ci_high <= 1.0 + eps
        assert e.relative_risk_ci_low <= e.relative_risk * (1 + eps)
        assert e.relative_risk <= e.relative_risk_ci_high * (1 + eps)
        assert e.odds_ratio_ci_low <= e.odds_ratio * (1 + eps)
        assert e.odds_ratio <= e.odds_ratio_ci_high * (1 + eps)
        assert 0.0 <= e.p_value <= e.p_adjusted <= 1.0
        assert e.test in ("z", "exact-z")
        if e.diff_simultaneous_ci_low is not None:  # the family level is never below 1 − alpha
            assert e.diff_simultaneous_ci_low <= e.diff_ci_low + eps
            assert e.diff_ci_high <= e.diff_simultaneous_ci_high + eps
    assert comparison.omnibus_df == len(counts) - 1
    assert comparison.family_size == sum(e.p_value is not None for e in comparison.arms)
    if correction == "none":
        assert comparison.simultaneous is None


@settings(max_examples=100, deadline=None)
@given(arm=arm_counts(), control=arm_counts())
def test_newcombe_property_matches_statsmodels(arm: ArmCounts, control: ArmCounts) -> None:
    low, high = confint_proportions_2indep(
        arm.successes, arm.n, control.successes, control.n, method="newcomb"
    )
    ours = newcombe(arm.successes, arm.n, control.successes, control.n)
    assert close(ours[0], low) and close(ours[1], high)
