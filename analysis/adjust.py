"""Covariate-adjusted effects of each arm against control, computed exactly on aggregated cells.

Two models, named by a closed set of strings:

- ``"lpm"``: linear probability model ``y = β₀ + Σⱼ βⱼ·armⱼ + covariate dummies + ε`` by OLS.
  The effect of arm ``j`` is ``βⱼ`` with HC2 standard errors (MacKinnon & White 1985), or
  cluster-robust (CR1) standard errors when ``cluster`` is given.
- ``"logit"``: logistic regression with the same terms; the effect is the average marginal
  effect of arm ``j`` (Stata's ``margins r.arm``): ``AMEⱼ = (1/N) Σᵢ [Λ(xᵢ⁽ʲ⁾β) − Λ(xᵢ⁽⁰⁾β)]``,
  ``xᵢ⁽ʲ⁾`` being visit ``i`` moved to arm ``j`` (``⁽⁰⁾``: the control), with a delta-method
  standard error from the robust (HC0) or cluster-robust (CR1) covariance of ``β``.

Effects are proportion differences (0.012 = 1.2 percentage points), like the unadjusted ones.

**Why cells are exact.** Every visit in a cell (one arm × covariate combination) has the same
regressors ``x_c``, so each quantity in the estimators and their sandwich covariances is a sum
over visits that collapses to a sum over cells: with ``n_c`` visits, ``s_c`` successes and fitted
value ``f_c`` in cell ``c``, ``Σᵢ∈c eᵢ = s_c − n_c·f_c`` and
``Σᵢ∈c eᵢ² = s_c(1 − f_c)² + (n_c − s_c)f_c²``; a visit's leverage is
``h_c = x_c'(Σ n_c x_c x_c')⁻¹x_c``. So HC2 ``(X'X)⁻¹[Σ_c x_c x_c' Σᵢ∈c eᵢ²/(1 − h_c)](X'X)⁻¹``
and CR1 ``q·(X'X)⁻¹[Σ_g u_g u_g'](X'X)⁻¹`` with ``u_g = Σ_{c∈g} x_c Σᵢ∈c eᵢ`` and
``q = G/(G − 1)·(N − 1)/(N − K)`` are the visit-level values, computed from a few hundred cells
instead of 1.1 million rows (memory: O(cells × parameters)). The tests check this against
statsmodels run on the expanded visits. Point estimates come from statsmodels (WLS of cell rates
weighted by ``n_c``; binomial GLM on ``(s_c, n_c − s_c)``), which equal the visit-level OLS and
logit estimates.

p-values and intervals use the normal distribution, except with cluster-robust standard errors,
which use Student's t with ``G − 1`` degrees of freedom (as Stata and statsmodels'
``use_t=True`` do).

References: MacKinnon JG, White H (1985) J Econometrics 29:305–325. Cameron AC, Miller DL (2015)
A practitioner's guide to cluster-robust inference, J Human Resources 50:317–372. Lin W (2013)
Ann Appl Stat 7:295–318 (regression adjustment in experiments). Williams R (2012) Stata Journal
12:308–331 (average marginal effects).
"""

from __future__ import annotations

import math
import warnings as pywarnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm
from scipy.stats import t as student_t

__all__ = ["AdjustedEstimate", "Model", "adjusted_effects", "to_cells"]

Model = Literal["lpm", "logit"]
MODELS: tuple[str, ...] = get_args(Model)
FEW_CLUSTERS = 20
MISSING_LEVEL = "(missing)"


@dataclass(frozen=True)
class AdjustedEstimate:
    """Covariate-adjusted effect of ``arm`` against the control (a proportion difference).

    ``n`` is the number of visits in the model (all arms); ``se_type`` is ``"HC2"``, ``"HC0"`` or
    ``"cluster(<column>)"``. When the fit failed, ``effect`` and the interval are NaN and
    ``warnings`` says why.
    """

    arm: str
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    model: str
    se_type: str
    n: int
    warnings: tuple[str, ...]
    se: float = math.nan
    n_clusters: int | None = None
    covariates: tuple[str, ...] = ()


def to_cells(data: pd.DataFrame, outcome: str, keys: Sequence[str]) -> pd.DataFrame:
    """Visits and successes per combination of ``keys``: columns ``*keys, n, successes``.

    Accepts three shapes of ``data``: cells with ``n`` and ``successes`` (or ``n`` and the
    ``outcome`` column holding success counts); 0/1 ``outcome`` rows with a ``count`` column
    (frequency weights); or one 0/1 ``outcome`` row per visit. Missing key values become the
    level ``"(missing)"``; cells with ``n = 0`` are dropped.
    """
    missing = [k for k in keys if k not in data.columns]
    if missing:
        raise ValueError(f"column(s) {', '.join(missing)} not in the data")
    if "n" in data.columns:
        column = "successes" if "successes" in data.columns else outcome
        if column not in data.columns:
            raise ValueError(f"cell data need a 'successes' or {outcome!r} column beside 'n'")
        n, successes = data["n"], data[column]
    else:
        if outcome not in data.columns:
            raise ValueError(f"outcome column {outcome!r} not in the data")
        y = data[outcome]
        if not y.isin([0, 1]).all():
            raise ValueError(f"outcome {outcome!r} must be 0/1 (one row per visit)")
        n = data["count"] if "count" in data.columns else pd.Series(1, index=data.index)
        successes = n * y
    n, successes = _whole(n, "n"), _whole(successes, "successes")
    if (n < 0).any() or (successes < 0).any() or (successes > n).any():
        raise ValueError("counts must satisfy 0 ≤ successes ≤ n in every row")
    frame = pd.DataFrame({k: _labels(data[k]) for k in keys})
    frame["n"], frame["successes"] = n.to_numpy(), successes.to_numpy()
    cells = frame.groupby(list(keys), sort=True, observed=True).sum().reset_index()
    return cells[cells["n"] > 0].reset_index(drop=True)


def _whole(values: pd.Series, name: str) -> pd.Series:
    numeric = pd.to_numeric(values, errors="raise")
    if numeric.isna().any() or not np.all(np.equal(np.mod(numeric, 1), 0)):
        raise ValueError(f"{name} must hold whole numbers")
    return numeric.astype(np.int64)


def _labels(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), MISSING_LEVEL).astype(str)


@dataclass(frozen=True)
class _Design:
    x: np.ndarray  # cells × parameters
    arms: tuple[str, ...]  # non-control arms, column j + 1 of x
    dropped: tuple[str, ...]  # covariate columns left out as collinear


def _design(cells: pd.DataFrame, arms: Sequence[str], covariates: Sequence[str]) -> _Design:
    """Intercept, arm dummies (control = reference), covariate dummies (first level = reference).

    Covariate columns that are linear combinations of earlier ones are dropped (and reported).
    """
    arms = tuple(arms)
    columns = [np.ones(len(cells))] + [(cells["arm"] == a).to_numpy(float) for a in arms]
    names: list[str] = []
    extra: list[np.ndarray] = []
    for covariate in covariates:
        for level in sorted(set(cells[covariate]))[1:]:
            names.append(f"{covariate}={level}")
            extra.append((cells[covariate] == level).to_numpy(float))
    weights = np.sqrt(cells["n"].to_numpy(float))[:, None]
    x = np.column_stack(columns)
    dropped = []
    for name, column in zip(names, extra, strict=True):
        trial = np.column_stack([x, column])
        if np.linalg.matrix_rank(trial * weights) > x.shape[1]:
            x = trial
        else:
            dropped.append(name)
    return _Design(x, arms, tuple(dropped))


def _clusters(cells: pd.DataFrame, cluster: str | None) -> np.ndarray | None:
    if cluster is None:
        return None
    return pd.factorize(cells[cluster], sort=True)[0]


def _bread_and_meat(
    x: np.ndarray,
    n: np.ndarray,
    s: np.ndarray,
    fitted: np.ndarray,
    hessian_weights: np.ndarray,
    groups: np.ndarray | None,
    hc2: bool,
) -> np.ndarray:
    """Sandwich covariance from cell sums (see the module docstring for the formulas)."""
    bread = np.linalg.inv(x.T @ (x * hessian_weights[:, None]))
    if groups is not None:
        scores = x * (s - n * fitted)[:, None]
        sums = np.zeros((groups.max() + 1, x.shape[1]))
        np.add.at(sums, groups, scores)
        g, total, k = sums.shape[0], n.sum(), x.shape[1]
        factor = g / (g - 1) * (total - 1) / (total - k)
        return factor * bread @ (sums.T @ sums) @ bread
    squares = s * (1 - fitted) ** 2 + (n - s) * fitted**2
    if hc2:
        leverage = np.einsum("ij,jk,ik->i", x, bread, x)
        squares = squares / (1 - leverage)
    return bread @ (x.T @ (x * squares[:, None])) @ bread


def _fit_lpm(x: np.ndarray, n: np.ndarray, s: np.ndarray, groups: np.ndarray | None, n_arms: int):
    import statsmodels.api as sm  # deferred on purpose: statsmodels loads only for a fit

    result = sm.WLS(s / n, x, weights=n).fit()
    beta = np.asarray(result.params)
    fitted = x @ beta
    cov = _bread_and_meat(x, n, s, fitted, n.astype(float), groups, hc2=True)
    unit = np.eye(x.shape[1])
    return beta, cov, [(j, beta[j], unit[j]) for j in range(1, 1 + n_arms)]


def _fit_logit(x: np.ndarray, n: np.ndarray, s: np.ndarray, groups: np.ndarray | None, n_arms: int):
    import statsmodels.api as sm  # deferred on purpose: statsmodels loads only for a fit

    model = sm.GLM(np.column_stack([s, n - s]), x, family=sm.families.Binomial())
    result = model.fit(tol=1e-12, maxiter=200)
    beta = np.asarray(result.params)
    p = expit(x @ beta)
    cov = _bread_and_meat(x, n, s, p, n * p * (1 - p), groups, hc2=False)
    total = n.sum()
    base = x.copy()
    base[:, 1 : 1 + n_arms] = 0.0
    p0 = expit(base @ beta)
    effects = []
    for j in range(1, 1 + n_arms):
        moved = base.copy()
        moved[:, j] = 1.0
        pj = expit(moved @ beta)
        ame = float(n @ (pj - p0) / total)
        gradient = (n * pj * (1 - pj)) @ moved / total - (n * p0 * (1 - p0)) @ base / total
        effects.append((j, ame, gradient))
    return beta, cov, effects


def _separation(cells: pd.DataFrame, columns: Sequence[str]) -> list[tuple[str, str, str]]:
    """``(column, level, kind)`` for every model term whose visits all failed or all succeeded."""
    found = []
    for column in columns:
        sums = cells.groupby(column, observed=True)[["n", "successes"]].sum()
        if column != "arm" and len(sums) < 2:
            continue  # a constant covariate is not in the model
        for level, row in sums.iterrows():
            if row["successes"] in (0, row["n"]):
                found.append((column, str(level), "no" if row["successes"] == 0 else "only"))
    return found


def adjusted_effects(
    data: pd.DataFrame,
    outcome: str,
    control: str,
    *,
    covariates: Sequence[str] = ("location", "language"),
    cluster: str | None = None,
    model: Model = "lpm",
    alpha: float = 0.05,
) -> list[AdjustedEstimate]:
    """Adjusted effect of every non-control arm in ``data`` (in order of first appearance).

    ``data``: cells (``arm``, covariates, ``n``, ``successes``), 0/1 ``outcome`` rows with a
    ``count``, or one row per visit (see :func:`to_cells`). ``cluster`` names a column (e.g.
    ``"location"``) for cluster-robust standard errors. Problems of the fit (separation, too few
    clusters, collinear covariates, a failed fit) are returned in ``warnings``; invalid input
    (missing columns, unknown control or model, counts out of range) raises :class:`ValueError`.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha}")
    covariates = tuple(covariates)
    keys = ["arm", *covariates] + ([cluster] if cluster and cluster not in covariates else [])
    cells = to_cells(data, outcome, keys)
    if control not in set(cells["arm"]):
        raise ValueError(f"control arm {control!r} has no analysed visits in the data")
    notes: list[str] = []
    groups = _clusters(cells, cluster)
    n_clusters = None if groups is None else int(groups.max() + 1)
    if n_clusters is not None and n_clusters < 2:
        notes.append(f"only one {cluster}: cluster-robust standard errors impossible; HC2 used")
        groups, n_clusters = None, None
    elif n_clusters is not None and n_clusters < FEW_CLUSTERS:
        notes.append(
            f"only {n_clusters} clusters ({cluster}); cluster-robust standard errors are "
            f"unreliable with fewer than {FEW_CLUSTERS} clusters"
        )
    se_type = f"cluster({cluster})" if groups is not None else ("HC2" if model == "lpm" else "HC0")
    present = set(cells["arm"])
    order = list(dict.fromkeys(_labels(data["arm"])))
    design = _design(cells, [a for a in order if a in present and a != control], covariates)
    if design.dropped:
        notes.append(
            f"covariate terms collinear with earlier terms left out: {', '.join(design.dropped)}"
        )
    n = cells["n"].to_numpy(float)
    s = cells["successes"].to_numpy(float)
    total = int(n.sum())
    separated: set[str] = set()
    if model == "logit":
        for column, level, kind in _separation(cells, ["arm", *covariates]):
            notes.append(
                f"perfect separation: {column} {level} has {kind} successes; its logit "
                "coefficient diverges, so marginal effects are unreliable (compare with the LPM)"
            )
            if column == "arm":
                separated.add(level)
        if control in separated:
            separated.update(design.arms)
    effects, fit_notes = _fit(design, n, s, groups, model)
    notes += fit_notes
    if effects is None:
        effects = [(math.nan, math.nan)] * len(design.arms)
    df = None if n_clusters is None or groups is None else n_clusters - 1
    quantile = float(norm.ppf(1 - alpha / 2) if df is None else student_t.ppf(1 - alpha / 2, df))
    estimates = []
    for arm, (effect, se) in zip(design.arms, effects, strict=True):
        arm_notes = list(notes)
        low = high = p = math.nan
        if arm in separated:
            arm_notes.append(f"arm {arm}: no interval or p-value, the logit fit is separated")
        elif math.isfinite(se) and se > 0:
            low, high = effect - quantile * se, effect + quantile * se
            z = abs(effect) / se
            p = float(2 * (norm.sf(z) if df is None else student_t.sf(z, df)))
        elif math.isfinite(effect):
            why = (
                "HC2 is undefined when a visit is fitted exactly (leverage 1, e.g. a cell of one "
                "visit that no other term shares)"
                if se_type == "HC2" and not math.isfinite(se)
                else "every visit in the compared arms had the same outcome"
                if se == 0
                else "the covariance is not finite"
            )
            arm_notes.append(f"arm {arm}: no interval or p-value: {why}")
        estimates.append(
            AdjustedEstimate(
                arm=arm,
                effect=effect,
                ci_low=low,
                ci_high=high,
                p_value=p,
                model=model,
                se_type=se_type,
                n=total,
                warnings=tuple(arm_notes),
                se=se,
                n_clusters=n_clusters if groups is not None else None,
                covariates=covariates,
            )
        )
    return estimates


def _fit(
    design: _Design, n: np.ndarray, s: np.ndarray, groups: np.ndarray | None, model: str
) -> tuple[list[tuple[float, float]] | None, list[str]]:
    """``[(effect, se)]`` per arm, or ``None`` with the reason when the fit fails."""
    from statsmodels.tools.sm_exceptions import PerfectSeparationError  # deferred (see _fit_lpm)

    notes: list[str] = []
    with pywarnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        pywarnings.simplefilter("always")
        try:
            if model == "lpm":
                beta, cov, effects = _fit_lpm(design.x, n, s, groups, len(design.arms))
            else:
                beta, cov, effects = _fit_logit(design.x, n, s, groups, len(design.arms))
        except (np.linalg.LinAlgError, PerfectSeparationError, ValueError) as error:
            return None, [f"{model} fit failed: {error}"]
    for warning in caught:
        text = f"{model}: {warning.category.__name__}: {warning.message}"
        if text not in notes:
            notes.append(text)
    if not np.all(np.isfinite(beta)):
        return None, [*notes, f"{model} fit failed: non-finite coefficients"]
    results = []
    for _, effect, gradient in effects:
        variance = float(gradient @ cov @ gradient)
        results.append((float(effect), math.sqrt(variance) if variance >= 0 else math.nan))
    return results, notes
