"""analysis.adjust on cells against statsmodels fitted on the expanded visits (one row each).

The point of the cell formulas is that they equal the visit-level estimators exactly, so the
reference is statsmodels' OLS (``cov_type="HC2"`` / ``"cluster"``) and Logit on the visits. This
file checks the additive fixed-effects fits (``interacted=False``; CR1 kept for comparison) and
the logit; Lin's interacted regression and CR2 are checked in test_adjust_design.py.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy.special import expit

from analysis.adjust import adjusted_effects, to_cells

TOL = 1e-9
ARMS = ["control", "gain", "norm"]


def make_cells(seed: int = 7, locations: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for a, arm in enumerate(ARMS):
        for i in range(locations):
            for language in ("nl", "en", "ar"):
                n = int(rng.integers(5, 40))
                p = 0.15 + 0.06 * a + 0.03 * i + (0.05 if language == "ar" else 0.0)
                rows.append((arm, f"L{i}", language, n, int(rng.binomial(n, p))))
    return pd.DataFrame(rows, columns=["arm", "location", "language", "n", "successes"])


def expand(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per visit with a 0/1 outcome ``y``."""
    visits = cells.loc[cells.index.repeat(cells["n"])].copy()
    rank = visits.groupby(level=0).cumcount()
    visits["y"] = (rank < visits["successes"]).astype(int)
    return visits.drop(columns=["n", "successes"]).reset_index(drop=True)


def design(visits: pd.DataFrame, covariates: tuple[str, ...]) -> pd.DataFrame:
    frame = visits[["arm", *covariates]].copy()
    frame["arm"] = pd.Categorical(frame["arm"], categories=ARMS)
    return sm.add_constant(pd.get_dummies(frame, drop_first=True).astype(float))


CELLS = make_cells()
VISITS = expand(CELLS)
COVARIATES = ("location", "language")
X = design(VISITS, COVARIATES)
Y = VISITS["y"].to_numpy(float)
GROUPS = pd.factorize(VISITS["location"])[0]


@pytest.mark.parametrize("cluster", [None, "location"])
def test_additive_lpm_matches_statsmodels_ols_on_visits(cluster: str | None) -> None:
    if cluster:
        fit = sm.OLS(Y, X).fit(cov_type="cluster", cov_kwds={"groups": GROUPS}, use_t=True)
    else:
        fit = sm.OLS(Y, X).fit(cov_type="HC2")
    intervals = fit.conf_int(alpha=0.05)
    estimates = adjusted_effects(
        CELLS, "y", "control", cluster=cluster, interacted=False, cluster_se="CR1"
    )
    for e in estimates:
        column = f"arm_{e.arm}"
        assert math.isclose(e.effect, fit.params[column], abs_tol=TOL)
        assert math.isclose(e.se, fit.bse[column], rel_tol=TOL)
        assert math.isclose(e.p_value, fit.pvalues[column], rel_tol=1e-8, abs_tol=1e-15)
        assert math.isclose(e.ci_low, intervals.loc[column, 0], abs_tol=TOL)
        assert math.isclose(e.ci_high, intervals.loc[column, 1], abs_tol=TOL)
        assert e.model == "lpm" and e.n == len(VISITS)
        assert e.se_type == ("CR1(location)" if cluster else "HC2")
        assert e.df == (5 if cluster else None)


def _ame(beta: np.ndarray, arm_column: str) -> float:
    """AME by counterfactual prediction: every visit moved to the arm, minus moved to control."""
    base = X.copy()
    base[[f"arm_{a}" for a in ARMS[1:]]] = 0.0
    moved = base.copy()
    moved[arm_column] = 1.0
    return float(np.mean(expit(moved.to_numpy() @ beta) - expit(base.to_numpy() @ beta)))


@pytest.mark.parametrize("cluster", [None, "location"])
def test_logit_ame_matches_statsmodels_logit_on_visits_with_numeric_delta_method(
    cluster: str | None,
) -> None:
    """Reference: statsmodels Logit on the visits (HC0 or cluster covariance), the AME by
    counterfactual prediction, and its gradient by central differences (step 1e-6)."""
    kwargs = (
        {"cov_type": "cluster", "cov_kwds": {"groups": GROUPS}} if cluster else {"cov_type": "HC0"}
    )
    fit = sm.Logit(Y, X).fit(method="newton", tol=1e-12, maxiter=100, disp=0, **kwargs)
    beta, cov = fit.params.to_numpy(), fit.cov_params().to_numpy()
    for e in adjusted_effects(CELLS, "y", "control", model="logit", cluster=cluster):
        column = f"arm_{e.arm}"
        step = 1e-6 * np.eye(len(beta))
        gradient = np.array(
            [(_ame(beta + h, column) - _ame(beta - h, column)) / 2e-6 for h in step]
        )
        assert math.isclose(e.effect, _ame(beta, column), abs_tol=TOL)
        assert math.isclose(e.se, math.sqrt(gradient @ cov @ gradient), rel_tol=1e-7)
        assert e.se_type == ("CR1(location)" if cluster else "HC0")
        assert "logistic regression with fixed effects of location, language" in e.estimator


def test_the_three_input_shapes_give_the_same_estimates() -> None:
    weighted = VISITS.groupby(["arm", "location", "language", "y"]).size().rename("count")
    shapes = [CELLS, VISITS, weighted.reset_index()]
    results = [adjusted_effects(d, "y", "control", strata=("location",)) for d in shapes]
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert a.arm == b.arm and math.isclose(a.effect, b.effect, abs_tol=1e-12)
            assert math.isclose(a.se, b.se, rel_tol=1e-10)


def test_without_covariates_hc2_is_the_unbiased_two_sample_variance() -> None:
    """Arm dummies only: the LPM effect is the difference in rates and its HC2 variance is
    p₁q₁/(n₁ − 1) + p₀q₀/(n₀ − 1) (each arm's unbiased variance over its n)."""
    cells = pd.DataFrame({"arm": ["control", "gain"], "n": [400, 300], "successes": [60, 75]})
    (e,) = adjusted_effects(cells, "y", "control", covariates=())
    assert e.estimator.startswith("difference in means")
    p1, p0 = 75 / 300, 60 / 400
    assert math.isclose(e.effect, p1 - p0, abs_tol=1e-12)
    assert math.isclose(e.se, math.sqrt(p1 * (1 - p1) / 299 + p0 * (1 - p0) / 399), rel_tol=1e-10)


def test_too_few_outcomes_give_no_adjusted_interval_but_keep_the_effect() -> None:
    """Expected 2×2 counts (computed here from the totals) decide: 3 + 1 successes in 50 + 50
    visits give a smallest expected count of 2.0 < 5; 6 + 4 give exactly 5, which is enough."""
    def cells(x_control: int, x_gain: int) -> pd.DataFrame:
        return pd.DataFrame({
            "arm": ["control", "control", "gain", "gain"], "location": ["a", "b", "a", "b"],
            "n": [25, 25, 25, 25], "successes": [x_control - 1, 1, x_gain - 1, 1],
        })  # fmt: skip

    (sparse,) = adjusted_effects(cells(3, 1), "y", "control", strata=("location",), covariates=())
    assert math.isclose(sparse.effect, 1 / 50 - 3 / 50, abs_tol=1e-12)
    assert math.isnan(sparse.ci_low) and math.isnan(sparse.ci_high) and math.isnan(sparse.p_value)
    assert any("smallest expected count" in w and "2.00, below 5" in w for w in sparse.warnings)
    (enough,) = adjusted_effects(cells(6, 4), "y", "control", strata=("location",), covariates=())
    assert enough.ci_low < enough.effect < enough.ci_high and 0 < enough.p_value < 1
    assert not any("smallest expected count" in w for w in enough.warnings)


def test_few_clusters_warn_with_cr1_and_one_cluster_falls_back_to_hc2() -> None:
    options = {"interacted": False, "cluster_se": "CR1"}
    (e, *_) = adjusted_effects(CELLS, "y", "control", cluster="location", **options)  # type: ignore[arg-type]
    assert e.n_clusters == 6 and any("fewer than 20 clusters" in w for w in e.warnings)
    one = CELLS[CELLS["location"] == "L0"]
    (f, *_) = adjusted_effects(one, "y", "control", covariates=("language",), cluster="location")
    assert f.se_type == "HC2" and f.n_clusters is None and f.df is None
    assert any("only one location" in w for w in f.warnings)


def test_logit_separation_is_a_warning_not_an_error() -> None:
    cells = CELLS.copy()
    cells.loc[cells["arm"] == "norm", "successes"] = 0
    estimates = adjusted_effects(cells, "y", "control", model="logit")
    norm = next(e for e in estimates if e.arm == "norm")
    assert any("perfect separation: arm norm has no successes" in w for w in norm.warnings)
    assert norm.effect < 0 and math.isnan(norm.ci_low) and math.isnan(norm.p_value)
    gain = next(e for e in estimates if e.arm == "gain")
    assert gain.ci_low < gain.effect < gain.ci_high  # the control is not separated


def test_collinear_covariate_is_left_out_with_a_warning() -> None:
    cells = CELLS.copy()
    cells["region"] = cells["location"].map(lambda loc: "north" if loc in ("L0", "L1") else "south")
    estimates = adjusted_effects(cells, "y", "control", covariates=("location", "region"))
    reference = adjusted_effects(cells, "y", "control", covariates=("location",))
    # south (4 locations) has more visits than north, so it is the reference: north is collinear
    assert any("region=north" in w for w in estimates[0].warnings)
    assert math.isclose(estimates[0].effect, reference[0].effect, abs_tol=1e-12)


def test_missing_covariate_values_become_a_level() -> None:
    visits = VISITS.copy()
    visits.loc[visits.index[:50], "language"] = None
    cells = to_cells(visits, "y", ["arm", "language"])
    assert "(missing)" in set(cells["language"]) and cells["n"].sum() == len(visits)


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        (CELLS.drop(columns="location"), {}, "location"),
        (CELLS, {"control": "nobody"}, "control arm 'nobody'"),
        (CELLS, {"model": "probit"}, "unknown model"),
        (CELLS, {"cluster_se": "CR3"}, "unknown cluster_se"),
        (CELLS, {"model": "logit", "interacted": True}, "additive fixed effects only"),
        (CELLS, {"cluster": "location"}, "nested in the strata"),
        (VISITS.assign(y=2), {}, "must be 0/1"),
        (CELLS.assign(successes=CELLS["n"] + 1), {}, "successes ≤ n"),
        (CELLS.assign(n=CELLS["n"] + 0.5), {}, "whole numbers"),
    ],
)
def test_invalid_input_raises_value_error(data: pd.DataFrame, kwargs: dict, message: str) -> None:
    arguments = {"control": "control", **kwargs}
    control = arguments.pop("control")
    with pytest.raises(ValueError, match=message):
        adjusted_effects(data, "y", control, **arguments)


def test_a_bit_scale_trial_is_estimated_from_cells_without_expanding() -> None:
    """8 arms × 30 locations × 4 languages = 960 cells holding 1.1 million visits."""
    rng = np.random.default_rng(3)
    rows = []
    arms = [f"arm{i}" for i in range(8)]
    for a, arm in enumerate(arms):
        for i in range(30):
            for language in ("nl", "en", "ar", "ti"):
                n = 1146  # 960 cells × 1146 = 1,100,160 visits
                rows.append((arm, f"L{i}", language, n, int(rng.binomial(n, 0.02 + 0.002 * a))))
    cells = pd.DataFrame(rows, columns=["arm", "location", "language", "n", "successes"])
    tracemalloc.start()
    try:
        for model in ("lpm", "logit"):
            estimates = adjusted_effects(
                cells,
                "y",
                "arm0",
                strata=("location",),
                covariates=("language",),
                model=model,  # type: ignore[arg-type]
            )
            assert [e.arm for e in estimates] == arms[1:]
            assert estimates[0].n == 1_100_160
            assert all(e.ci_low < e.effect < e.ci_high for e in estimates)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the expanded design matrix would take 1.1 million × 264 columns × 8 bytes = 2.3 GB
    assert peak < 20_000_000
