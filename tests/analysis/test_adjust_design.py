"""The adjusted estimate that follows the design: Lin's interacted regression (HC2) and CR2.

References are computed independently of analysis.adjust and analysis.sandwich:

- Lin (2013): statsmodels ``OLS(...).fit(cov_type="HC2")`` on the expanded visits with a design
  matrix built here with pandas (centred indicators with the *first* level as reference, where
  the code under test drops the level with most visits), and, on a tiny example, the
  post-stratified difference with its Neyman variance written out by hand.
- CR2 with Bell-McCaffrey degrees of freedom: the visit-level definition (``scipy.linalg.sqrtm``
  of ``I − H_gg`` per cluster, ``Γ'(I − H)Γ`` with the visits-by-visits hat matrix), and a closed
  form (two arms, equal clusters, no covariates: the variance of cluster means and
  ``ν = (1/G₁ + 1/G₀)² / (1/(G₁²(G₁ − 1)) + 1/(G₀²(G₀ − 1)))``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import statsmodels.api as sm
from scipy import stats

from analysis.adjust import adjusted_effects
from tests.analysis.test_adjust import ARMS, CELLS, expand

TOL = 1e-9


def lin_matrix(
    visits: pd.DataFrame, terms: list[str], arms: list[str], drop: str | None = None
) -> pd.DataFrame:
    """Intercept, arm dummies, centred term dummies (first level dropped, or the ``drop``
    column), arm × centred term."""
    frame = pd.DataFrame({"const": 1.0}, index=visits.index)
    for arm in arms[1:]:
        frame[f"arm_{arm}"] = (visits["arm"] == arm).astype(float)
    centred = pd.get_dummies(visits[terms].astype(str), drop_first=drop is None).astype(float)
    centred = centred.drop(columns=[drop] if drop else [])
    centred = centred - centred.mean()
    for column in centred:
        frame[column] = centred[column]
    for arm in arms[1:]:
        for column in centred:
            frame[f"{arm}:{column}"] = frame[f"arm_{arm}"] * centred[column]
    return frame


VISITS = expand(CELLS)
Y = VISITS["y"].to_numpy(float)


@pytest.mark.parametrize(
    ("strata", "covariates", "terms"),
    [
        (("location",), ("language",), ["location", "language"]),
        (("location",), (), ["location"]),
        (("location", "language"), (), ["stratum"]),
    ],
)
def test_lin_matches_statsmodels_hc2_on_visits_with_the_interacted_design(
    strata: tuple[str, ...], covariates: tuple[str, ...], terms: list[str]
) -> None:
    visits = VISITS.assign(stratum=VISITS["location"] + "/" + VISITS["language"])
    x = lin_matrix(visits, terms, ARMS)
    fit = sm.OLS(Y, x).fit(cov_type="HC2")
    intervals = fit.conf_int(alpha=0.05)
    estimates = adjusted_effects(CELLS, "y", "control", strata=strata, covariates=covariates)
    assert [e.arm for e in estimates] == ARMS[1:]
    for e in estimates:
        column = f"arm_{e.arm}"
        assert math.isclose(e.effect, fit.params[column], abs_tol=TOL)
        assert math.isclose(e.se, fit.bse[column], rel_tol=TOL)
        assert math.isclose(e.p_value, fit.pvalues[column], rel_tol=1e-8, abs_tol=1e-15)
        assert math.isclose(e.ci_low, intervals.loc[column, 0], abs_tol=TOL)
        assert math.isclose(e.ci_high, intervals.loc[column, 1], abs_tol=TOL)
        assert (e.se_type, e.df, e.strata, e.covariates) == ("HC2", None, strata, covariates)
        assert e.estimator.startswith("Lin (2013) interacted regression")
        assert e.warnings == ()


def test_lin_with_the_stratum_only_is_the_post_stratified_difference_with_neyman_variance() -> None:
    """A tiny example by hand: strata A (22 visits) and B (58), weights N_s/N; the HC2 variance
    of the saturated model is Σ w_s² (s²₁ₛ/n₁ₛ + s²₀ₛ/n₀ₛ), s² = p(1 − p)·n/(n − 1)."""
    cells = pd.DataFrame(
        {
            "arm": ["control", "gain", "control", "gain"],
            "location": ["A", "A", "B", "B"],
            "n": [10, 12, 30, 28],
            "successes": [2, 6, 3, 7],
        }
    )
    (e,) = adjusted_effects(cells, "y", "control", strata=("location",), covariates=())
    w_a, w_b = 22 / 80, 58 / 80
    assert math.isclose(e.effect, w_a * (6 / 12 - 2 / 10) + w_b * (7 / 28 - 3 / 30), abs_tol=1e-12)
    assert math.isclose(e.effect, 0.19125, abs_tol=1e-12)

    def s2(n: int, s: int) -> float:
        return (s / n) * (1 - s / n) * n / (n - 1)

    variance = w_a**2 * (s2(12, 6) / 12 + s2(10, 2) / 10) + w_b**2 * (
        s2(28, 7) / 28 + s2(30, 3) / 30
    )
    assert math.isclose(e.se, math.sqrt(variance), rel_tol=1e-12)
    assert math.isclose(e.p_value, 2 * stats.norm.sf(e.effect / e.se), rel_tol=1e-10)


def test_an_interaction_with_too_few_visits_is_left_out_and_said() -> None:
    cells = CELLS.copy()
    row = (cells["arm"] == "gain") & (cells["location"] == "L3")
    cells.loc[row, "n"] = [1, 0, 0]
    cells.loc[row, "successes"] = 0
    estimates = adjusted_effects(cells, "y", "control", strata=("location",), covariates=())
    gain = next(e for e in estimates if e.arm == "gain")
    assert any("gain:location=L3" in w and "level with most visits" in w for w in gain.warnings)
    assert math.isfinite(gain.se) and gain.ci_low < gain.effect < gain.ci_high
    # The arm's effect at L3 is tied to its effect at the reference level, the location with
    # most visits: the reference design here drops that level's dummy and the gain × L3 term.
    visits = expand(cells)
    largest = visits["location"].value_counts().idxmax()
    x = lin_matrix(visits, ["location"], ARMS, drop=f"location_{largest}")
    x = x.drop(columns="gain:location_L3")
    fit = sm.OLS(visits["y"].to_numpy(float), x).fit(cov_type="HC2")
    assert math.isclose(gain.effect, fit.params["arm_gain"], abs_tol=TOL)
    assert math.isclose(gain.se, fit.bse["arm_gain"], rel_tol=TOL)


# -- a cluster-randomized unit: CR2 with Bell-McCaffrey degrees of freedom -----------------------


def kiosk_days(per_arm: int, seed: int = 11) -> pd.DataFrame:
    """Kiosk-days randomized within two locations; visits in two languages per kiosk-day."""
    rng = np.random.default_rng(seed)
    rows = []
    for location, base in (("north", 0.10), ("south", 0.25)):
        for arm, lift in (("control", 0.0), ("gain", 0.05)):
            for day in range(per_arm):
                cluster = f"{location}-{arm}-{day}"
                shock = rng.normal(0, 0.05)
                for language in ("nl", "ar"):
                    n = int(rng.integers(3, 15))
                    p = min(max(base + lift + shock + (0.04 if language == "ar" else 0), 0), 1)
                    rows.append((arm, location, language, cluster, n, int(rng.binomial(n, p))))
    return pd.DataFrame(
        rows, columns=["arm", "location", "language", "kiosk_day", "n", "successes"]
    )


def cr2_on_visits(x: np.ndarray, y: np.ndarray, groups: np.ndarray, column: int, pinv: bool):
    """CR2 variance and Bell-McCaffrey df of coefficient ``column``, visit by visit."""
    bread = np.linalg.inv(x.T @ x)
    residuals = y - x @ bread @ x.T @ y
    hat = x @ bread @ x.T
    contrast = bread[:, column]
    meat = np.zeros_like(bread)
    gamma = np.zeros((len(y), groups.max() + 1))
    for g in range(groups.max() + 1):
        rows = np.flatnonzero(groups == g)
        with warnings.catch_warnings():
            if pinv:  # I - H_gg is singular on purpose; scipy >= 1.17 warns about it
                warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            root = np.real(scipy.linalg.sqrtm(np.eye(len(rows)) - hat[np.ix_(rows, rows)]))
        adjust = np.linalg.pinv(root, rcond=1e-6) if pinv else np.linalg.inv(root)
        score = x[rows].T @ adjust @ residuals[rows]
        meat += np.outer(score, score)
        gamma[rows, g] = adjust @ x[rows] @ contrast
    variance = (bread @ meat @ bread)[column, column]
    omega = gamma.T @ (np.eye(len(y)) - hat) @ gamma
    return variance, np.trace(omega) ** 2 / np.sum(omega * omega)


@pytest.mark.parametrize(("per_arm", "singular"), [(3, False), (1, True)])
def test_cr2_and_bell_mccaffrey_df_match_the_visit_level_definition(
    per_arm: int, singular: bool
) -> None:
    """With one kiosk-day per arm and location, that cluster alone fits its arm × location mean,
    so I − H_gg is singular and both sides use the Moore-Penrose inverse square root."""
    cells = kiosk_days(per_arm)
    visits = expand(cells)
    x = lin_matrix(visits, ["location", "language"], ["control", "gain"])
    groups = pd.factorize(visits["kiosk_day"])[0]
    variance, df = cr2_on_visits(
        x.to_numpy(), visits["y"].to_numpy(float), groups, list(x).index("arm_gain"), singular
    )
    (e,) = adjusted_effects(
        cells, "y", "control", strata=("location",), covariates=("language",), cluster="kiosk_day"
    )
    assert e.se_type == "CR2(kiosk_day)" and e.n_clusters == 4 * per_arm
    assert math.isclose(e.se, math.sqrt(variance), rel_tol=1e-8)
    assert math.isclose(e.df, df, rel_tol=1e-8)
    quantile = stats.t.ppf(0.975, df)
    assert math.isclose(e.ci_low, e.effect - quantile * math.sqrt(variance), rel_tol=1e-8)
    assert math.isclose(e.p_value, 2 * stats.t.sf(abs(e.effect) / math.sqrt(variance), df))
    assert "Bell-McCaffrey" in e.estimator
    assert any("Moore-Penrose" in w for w in e.warnings) == singular


def test_cr2_of_two_arms_with_equal_clusters_is_the_variance_of_cluster_means() -> None:
    """Three clusters of four visits per arm, no covariate: CR2 = s²₁/G₁ + s²₀/G₀ of the cluster
    means (successes/4) and ν = (1/3 + 1/3)² / (2 · 1/(9 · 2)) = 4 (Bell & McCaffrey 2002)."""
    successes = {"c1": 0, "c2": 1, "c3": 3, "g1": 2, "g2": 2, "g3": 4}
    cells = pd.DataFrame(
        {
            "arm": ["control" if c.startswith("c") else "gain" for c in successes],
            "day": list(successes),
            "n": 4,
            "successes": list(successes.values()),
        }
    )
    (e,) = adjusted_effects(cells, "y", "control", covariates=(), cluster="day")
    control, gain = np.array([0, 1, 3]) / 4, np.array([2, 2, 4]) / 4
    assert math.isclose(e.effect, gain.mean() - control.mean(), abs_tol=1e-12)
    variance = np.var(gain, ddof=1) / 3 + np.var(control, ddof=1) / 3
    assert math.isclose(e.se, math.sqrt(variance), rel_tol=1e-12)
    assert math.isclose(e.df, 4.0, rel_tol=1e-12)
    assert math.isclose(e.p_value, 2 * stats.t.sf(e.effect / e.se, 4), rel_tol=1e-10)


def test_cr1_stays_available_for_comparison_with_g_minus_1_df() -> None:
    cells = kiosk_days(3)
    (e,) = adjusted_effects(
        cells, "y", "control", strata=("location",), covariates=(), cluster="kiosk_day",
        cluster_se="CR1",
    )  # fmt: skip
    assert e.se_type == "CR1(kiosk_day)" and e.df == 11
    assert "G − 1 degrees of freedom" in e.estimator
