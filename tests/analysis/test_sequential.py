"""analysis.sequential against published tables, an independent integrator and simulation.

Sources of the expected figures:

- gsDesign (Anderson) and rpact (Wassmer & Pahlke) boundaries of the two-sided symmetric design
  with 5 equally spaced looks, α = 0.05 (α/2 = 0.025 per side): Lan-DeMets O'Brien-Fleming type
  4.877, 3.357, 2.680, 2.290, 2.031; Pocock type 2.438, 2.427, 2.410, 2.397, 2.386.
- Jennison & Turnbull (2000), Group Sequential Methods with Applications to Clinical Trials,
  ch. 1–2: the type I error of naive repeated testing at 1.96 (from Armitage, McPherson & Rowe
  1969, J R Stat Soc A 132:235–244): 0.083, 0.107, 0.126, 0.142 for K = 2…5 equally spaced
  looks; the constants of the classical two-sided tests at α = 0.05, Pocock C_P(5) = 2.413 and
  O'Brien-Fleming C_B(5) = 2.040; their maximum-sample-size ratios at power 0.8,
  R_P(K=4) = 1.202 and R_B(K=5) = 1.028 (the same figures are checked in gsDesign's test suite).
- ``scipy.stats.multivariate_normal.cdf`` (Genz's algorithm, independent of the grid
  integration) with corr(Z_j, Z_k) = √(t_j/t_k) and E[Z_k] = η√t_k.

Monte Carlo checks use a fixed seed and 99% binomial bands: each has a 1% false-alarm rate for
a correct implementation (the seed makes the outcome reproducible).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import brentq
from scipy.stats import binom, multivariate_normal, norm

from analysis.sequential import (
    Decision,
    SequentialDesignError,
    boundaries,
    crossing_probabilities,
    decisions,
    drift_for_power,
    repeated_confidence_interval,
    spending_function,
)

FIVE = (0.2, 0.4, 0.6, 0.8, 1.0)
PUBLISHED = {
    "obrien-fleming": (4.877, 3.357, 2.680, 2.290, 2.031),
    "pocock": (2.438, 2.427, 2.410, 2.397, 2.386),
}


def _spend(t: float, alpha: float, spending: str) -> float:
    """The two-sided spending functions, written out independently of the module."""
    if spending == "obrien-fleming":
        return 2.0 * (2.0 - 2.0 * norm.cdf(norm.ppf(1.0 - alpha / 4.0) / math.sqrt(t)))
    return alpha * math.log(1.0 + (math.e - 1.0) * t)


def _inside(fractions, bounds, drift: float = 0.0, eps: float = 5e-6) -> float:
    """P(|Z_j| < c_j for every j), by scipy's multivariate normal cdf (error about ``eps``)."""
    t = np.asarray(fractions, dtype=float)
    c = np.asarray(bounds, dtype=float)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    return float(
        multivariate_normal.cdf(
            c,
            mean=drift * np.sqrt(t),
            cov=cov,
            lower_limit=-c,
            abseps=eps,
            releps=0.0,
            rng=np.random.default_rng(20240601),
        )
    )


def _z_paths(fractions, paths: int, seed: int, drift: float = 0.0) -> np.ndarray:
    """Simulated Z_k: S(t) a Brownian motion with drift, Z_k = S(t_k)/√t_k (paths × looks)."""
    t = np.asarray(fractions, dtype=float)
    steps = np.diff(t, prepend=0.0)
    rng = np.random.default_rng(seed)
    increments = rng.standard_normal((paths, t.size)) * np.sqrt(steps) + drift * steps
    return np.cumsum(increments, axis=1) / np.sqrt(t)


def _band(p: float, n: int) -> tuple[float, float]:
    low, high = binom.interval(0.99, n, p)
    return low / n, high / n


# -- published boundaries ----------------------------------------------------------------------


@pytest.mark.parametrize("spending", sorted(PUBLISHED))
def test_five_equal_looks_match_gsdesign_and_rpact(spending: str) -> None:
    design = boundaries(FIVE, 0.05, spending)
    assert design.fractions == FIVE
    for ours, published in zip(design.z_boundaries, PUBLISHED[spending], strict=True):
        assert abs(ours - published) < 5e-4, (ours, published)
    for look in design.looks:
        assert look.p_boundary == pytest.approx(2.0 * norm.sf(look.z_boundary), rel=1e-12)


@pytest.mark.parametrize("spending", sorted(PUBLISHED))
def test_the_true_boundaries_lie_within_half_a_thousandth_of_ours(spending: str) -> None:
    """3-decimal accuracy, checked with scipy's integrator: moving c_k by ±0.0005 moves the
    probability of first crossing at look k to either side of what the spending allows."""
    design = boundaries(FIVE, 0.05, spending, power=None)
    c = list(design.z_boundaries)
    for k, look in enumerate(design.looks[:3]):  # 1–3 dimensions: fast and accurate
        before = _inside(FIVE[:k], c[:k], eps=1e-7) if k else 1.0

        def first_crossing(ck: float, k: int = k, before: float = before) -> float:
            return before - _inside(FIVE[: k + 1], [*c[:k], ck], eps=1e-7)

        assert first_crossing(look.z_boundary + 5e-4) < look.alpha_spent
        assert first_crossing(look.z_boundary - 5e-4) > look.alpha_spent


# -- alpha spent -----------------------------------------------------------------------------


@pytest.mark.parametrize("spending", sorted(PUBLISHED))
def test_the_boundaries_spend_the_spending_function(spending: str) -> None:
    design = boundaries(FIVE, 0.05, spending, power=None)
    before = 0.0
    for k, look in enumerate(design.looks):
        expected = _spend(look.fraction, 0.05, spending)
        assert look.alpha_cumulative == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert look.alpha_spent == pytest.approx(expected - before, rel=1e-9, abs=1e-15)
        # what the boundaries really spend, by scipy's independent integration
        spent = 1.0 - _inside(FIVE[: k + 1], design.z_boundaries[: k + 1])
        assert spent == pytest.approx(expected, abs=2e-5)
        before = expected
    assert design.looks[-1].alpha_cumulative == 0.05
    assert sum(crossing_probabilities(FIVE, design.z_boundaries)) == pytest.approx(0.05, abs=1e-8)


def test_two_looks_against_the_bivariate_normal() -> None:
    """P(first crossing at look 2) = P(|Z1| < c1) − P(|Z1| < c1, |Z2| < c2), corr √(t1/t2).

    scipy's bivariate cdf is exact to ~1e-15 here; Simpson's rule with steps ≤ 1/16 is within
    ~5e-8 (its h⁴ error), far below what 3-decimal boundaries need.
    """
    t = (0.35, 1.0)
    for c, drift in (((2.6, 2.0), 0.0), ((2.6, 2.0), 2.8), ((3.1, 1.97), -1.5)):
        p1 = norm.sf(c[0] - drift * math.sqrt(t[0])) + norm.cdf(-c[0] - drift * math.sqrt(t[0]))
        p2 = (1.0 - p1) - _inside(t, c, drift, eps=1e-10)
        ours = crossing_probabilities(t, c, drift)
        assert ours[0] == pytest.approx(p1, rel=1e-10)
        assert ours[1] == pytest.approx(p2, abs=1e-7)
    design = boundaries(t, 0.05, "obrien-fleming", power=None)
    assert 1.0 - _inside(t, design.z_boundaries, eps=1e-10) == pytest.approx(0.05, abs=1e-7)


# -- classical designs and naive testing (Jennison & Turnbull 2000) -----------------------------


def test_naive_repeated_testing_at_1_96() -> None:
    for looks, published in ((2, 0.083), (3, 0.107), (4, 0.126), (5, 0.142)):
        t = [k / looks for k in range(1, looks + 1)]
        assert round(sum(crossing_probabilities(t, [1.959964] * looks)), 3) == published


@pytest.mark.parametrize(
    ("looks", "shape", "constant", "ratio"),
    [
        (5, "pocock", 2.413, None),
        (4, "pocock", None, 1.202),
        (5, "obrien-fleming", 2.040, 1.028),
    ],
)
def test_classical_tests_and_their_sample_size_ratios(
    looks: int, shape: str, constant: float | None, ratio: float | None
) -> None:
    """Pocock: c_k = C_P; O'Brien-Fleming: c_k = C_B·√(K/k); α = 0.05 two-sided, power 0.8."""
    t = [k / looks for k in range(1, looks + 1)]
    profile = [1.0 if shape == "pocock" else math.sqrt(looks / k) for k in range(1, looks + 1)]

    def size(c: float) -> float:
        return sum(crossing_probabilities(t, [c * p for p in profile])) - 0.05

    solved = brentq(size, 1.5, 4.0, xtol=1e-10)
    if constant is not None:
        assert round(solved, 3) == constant
    if ratio is not None:
        fixed = drift_for_power([1.0], [norm.ppf(0.975)], 0.8)
        sequential = drift_for_power(t, [solved * p for p in profile], 0.8)
        assert round((sequential / fixed) ** 2, 3) == ratio


# -- inflation factor --------------------------------------------------------------------------


@pytest.mark.parametrize("spending", sorted(PUBLISHED))
def test_the_inflation_factor_gives_the_power_asked_for(spending: str) -> None:
    """At the maximum information R·I_fix the design has power 0.8, by scipy's integrator."""
    design = boundaries(FIVE, 0.05, spending, power=0.8)
    assert design.inflation_factor is not None and design.complete
    fixed_drift = norm.ppf(0.975) + norm.ppf(0.8)  # the other tail adds ~1e-8
    drift = fixed_drift * math.sqrt(design.inflation_factor)
    power = 1.0 - _inside(FIVE, design.z_boundaries, drift)
    assert power == pytest.approx(0.8, abs=2e-5)
    # the fixed design (one look at t = 1) has inflation exactly 1
    assert boundaries([1.0], 0.05, spending).inflation_factor == pytest.approx(1.0, abs=1e-9)


# -- Monte Carlo -----------------------------------------------------------------------------


def test_monte_carlo_type_i_error_and_naive_testing() -> None:
    """200,000 paths under H0: both designs reject at 5% (99% band), naive 1.96 at ~14%."""
    z = np.abs(_z_paths(FIVE, 200_000, seed=7))
    low, high = _band(0.05, z.shape[0])
    for spending in PUBLISHED:
        c = np.array(boundaries(FIVE, 0.05, spending, power=None).z_boundaries)
        rate = float(np.mean(np.any(z >= c, axis=1)))
        assert low <= rate <= high, (spending, rate, low, high)
    naive = float(np.mean(np.any(z >= 1.959964, axis=1)))
    naive_low, naive_high = _band(sum(crossing_probabilities(FIVE, [1.959964] * 5)), z.shape[0])
    assert naive_low <= naive <= naive_high
    assert naive > 2.5 * high  # the simulation tells valid from naive testing apart


def test_unplanned_fractions_still_spend_exactly_alpha() -> None:
    fractions = (0.3, 0.45, 1.0)
    design = boundaries(fractions, 0.05, "obrien-fleming")
    planned = boundaries((1 / 3, 2 / 3, 1.0), 0.05, "obrien-fleming")
    assert design.z_boundaries != pytest.approx(planned.z_boundaries, abs=1e-2)
    for k in range(3):
        spent = 1.0 - _inside(fractions[: k + 1], design.z_boundaries[: k + 1])
        assert spent == pytest.approx(_spend(fractions[k], 0.05, "obrien-fleming"), abs=2e-5)
    z = np.abs(_z_paths(fractions, 200_000, seed=11))
    rate = float(np.mean(np.any(z >= np.array(design.z_boundaries), axis=1)))
    low, high = _band(0.05, z.shape[0])
    assert low <= rate <= high


def test_an_interim_depends_only_on_the_looks_taken() -> None:
    interim = boundaries([0.2, 0.4], 0.05, "pocock")
    full = boundaries(FIVE, 0.05, "pocock")
    assert interim.z_boundaries == pytest.approx(full.z_boundaries[:2], abs=1e-9)
    assert interim.inflation_factor is None and not interim.complete
    assert interim.looks[-1].alpha_cumulative < 0.05


def test_a_look_with_no_alpha_to_spend_never_rejects() -> None:
    """OBF type at t = 0.001 allows 4·Φ̄(70.9), which is 0 in double precision."""
    design = boundaries([0.001, 1.0], 0.05, "obrien-fleming")
    assert math.isinf(design.looks[0].z_boundary) and design.looks[0].p_boundary == 0.0
    assert design.looks[1].z_boundary == pytest.approx(norm.ppf(0.975), abs=1e-6)


# -- repeated confidence intervals and decisions ---------------------------------------------


def test_repeated_confidence_intervals_cover_simultaneously() -> None:
    """Estimates θ̂_k ~ N(θ, 1/I_k) along one trial; the RCIs of all 5 looks cover θ together in
    95% of 20,000 trials (99% band), naive 1.96 intervals in only ~86%."""
    design = boundaries(FIVE, 0.05, "obrien-fleming", power=None)
    theta, max_information, trials = 0.25, 120.0, 20_000
    se = [1.0 / math.sqrt(t * max_information) for t in FIVE]
    z = _z_paths(FIVE, trials, seed=3, drift=theta * math.sqrt(max_information))
    estimates = z * np.array(se)
    covered = naive_covered = 0
    for row in estimates:
        intervals = [
            repeated_confidence_interval(float(e), s, look)
            for e, s, look in zip(row, se, design.looks, strict=True)
        ]
        covered += all(i.low < theta < i.high for i in intervals)
        naive_covered += all(abs(e - theta) < 1.959964 * s for e, s in zip(row, se, strict=True))
    low, high = _band(0.95, trials)
    assert low <= covered / trials <= high
    assert naive_covered / trials < low - 0.05


def test_repeated_interval_at_one_look() -> None:
    look = boundaries(FIVE, 0.05, "obrien-fleming").looks[2]  # c_3 = 2.680 (gsDesign)
    interval = repeated_confidence_interval(0.030, 0.010, look)
    assert interval.low == pytest.approx(0.030 - 0.02680, abs=1e-5)
    assert interval.high == pytest.approx(0.030 + 0.02680, abs=1e-5)
    assert interval.look == 3 and interval.z_boundary == look.z_boundary


def test_decisions_follow_the_boundaries() -> None:
    design = boundaries(FIVE, 0.05, "obrien-fleming")  # 4.877, 3.357, 2.680, 2.290, 2.031
    assert decisions([1.2, 3.0, -2.75], design) == (
        Decision.CONTINUE,
        Decision.CONTINUE,
        Decision.STOP_FOR_EFFICACY,
    )
    assert decisions([], design) == ()
    assert decisions([0.5, 1.0, 1.5, 2.0, 2.0], design)[-1] is Decision.STOP_NOT_SIGNIFICANT
    assert decisions([0.5, 1.0, 1.5, 2.0, 2.05], design)[-1] is Decision.STOP_FOR_EFFICACY
    # the RCI excludes 0 exactly when the design stops for efficacy
    for z in (2.67, 2.69):
        stop = decisions([0.0, 0.0, z], design)[-1] is Decision.STOP_FOR_EFFICACY
        interval = repeated_confidence_interval(z * 0.01, 0.01, design.looks[2])
        assert stop == (interval.low > 0.0)
    with pytest.raises(SequentialDesignError, match="should have stopped"):
        decisions([5.0, 1.0], design)
    with pytest.raises(SequentialDesignError, match="only 5 looks"):
        decisions([0.0] * 6, design)
    with pytest.raises(SequentialDesignError, match="not finite"):
        decisions([math.nan], design)


# -- input errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fractions", "alpha", "spending", "message"),
    [
        ([0.5, 0.5, 1.0], 0.05, "pocock", "strictly increasing"),
        ([0.6, 0.4], 0.05, "pocock", "strictly increasing"),
        ([0.0, 1.0], 0.05, "pocock", r"in \(0, 1\]"),
        ([0.5, 1.2], 0.05, "pocock", r"in \(0, 1\]"),
        ([math.nan], 0.05, "pocock", r"in \(0, 1\]"),
        ([], 0.05, "pocock", "at least one look"),
        (["half"], 0.05, "pocock", "must be numbers"),
        ([1.0], 0.0, "pocock", "alpha"),
        ([1.0], 0.5, "pocock", "alpha"),
        ([1.0], -0.1, "pocock", "alpha"),
        ([1.0], 0.05, "obf", "unknown spending function 'obf'"),
    ],
)
def test_input_errors(fractions, alpha, spending, message: str) -> None:
    with pytest.raises(SequentialDesignError, match=message) as error:
        boundaries(fractions, alpha, spending)
    assert isinstance(error.value, ValueError)


def test_other_input_errors() -> None:
    with pytest.raises(SequentialDesignError, match="power"):
        boundaries(FIVE, 0.05, "pocock", power=0.01)
    with pytest.raises(SequentialDesignError, match="power"):
        boundaries(FIVE, 0.05, "pocock", power=1.0)
    with pytest.raises(SequentialDesignError, match="one boundary per look"):
        crossing_probabilities(FIVE, [2.0, 2.0])
    with pytest.raises(SequentialDesignError, match="type I error"):
        drift_for_power([0.5, 1.0], [1.0, 1.0], 0.2)
    with pytest.raises(SequentialDesignError, match="standard error"):
        repeated_confidence_interval(0.1, 0.0, boundaries([1.0]).looks[0])
    with pytest.raises(SequentialDesignError, match=r"in \(0, 1\]"):
        spending_function(1.5)
    assert spending_function(0.5, 0.05, "pocock") == pytest.approx(_spend(0.5, 0.05, "pocock"))
