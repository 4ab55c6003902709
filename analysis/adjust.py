"""Covariate-adjusted effects of each arm against control that follow the trial's design.

The estimator follows how visits were randomized (Lin 2013; Imbens & Rubin 2015, ch. 9):

- **Visits randomized, within strata or not** (the nudgelab default: blocks of visits within
  location): ``"lpm"`` is **Lin's (2013) interacted regression**. OLS of the 0/1 outcome on arm
  indicators ``Dⱼ``, centred covariate indicators ``z̃ = z − z̄`` (the stratum of the
  randomization first, then other pre-treatment covariates such as language) and their
  interactions ``Dⱼ·z̃``; the effect of arm ``j`` is the coefficient of ``Dⱼ`` with **HC2**
  standard errors and normal intervals — the estimator of R estimatr's
  ``lm_lin(y ~ arm, covariates = ~ stratum, se_type = "HC2")``. A stratum is *not* a cluster: the
  visits of a location were randomized one by one, so cluster-robust errors by location answer
  a question the design did not ask (and with few, unequal locations they are far too small; see
  docs/statistics.md). With the stratum as the only covariate the model is saturated and the
  effect is the post-stratified difference ``Σₛ wₛ(ȳⱼₛ − ȳ₀ₛ)``, ``wₛ = Nₛ/N``, with HC2
  variance ``Σₛ wₛ²(s²ⱼₛ/nⱼₛ + s²₀ₛ/n₀ₛ)`` (unbiased within-cell variances; Miratrix, Sekhon &
  Yu 2013).
- **A cluster of visits randomized** (``cluster`` names the randomized unit, e.g. a kiosk-day):
  the same regression with **CR2** standard errors clustered by that unit and Student's t with
  **Bell-McCaffrey** degrees of freedom (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018),
  which stay calibrated with a handful of clusters. ``cluster_se="CR1"`` gives the classical
  CR1 with ``G − 1`` degrees of freedom, kept for comparison only.
- ``"logit"``: logistic regression with the covariate indicators as fixed effects (no
  interactions: in sparse strata they separate); the effect is the average marginal effect of
  arm ``j`` (Stata's ``margins r.arm``): ``AMEⱼ = (1/N) Σᵢ [Λ(xᵢ⁽ʲ⁾β) − Λ(xᵢ⁽⁰⁾β)]``, ``xᵢ⁽ʲ⁾``
  being visit ``i`` moved to arm ``j`` (``⁽⁰⁾``: the control), with a delta-method standard
  error from the HC0 covariance of ``β`` (CR1 with ``G − 1`` degrees of freedom when clustered).

The reference level of each covariate is its level with most visits; with every interaction in
the model the estimate does not depend on it (the centred columns span the same space). An
interaction ``Dⱼ·z̃_L`` is left out, with a note, when arm ``j`` or the control has fewer than two
visits at level ``L`` (one visit alone would be fitted exactly and make HC2 undefined): arm
``j``'s effect at ``L`` is then tied to its effect at the reference level. Effects are proportion
differences (0.012 = 1.2 percentage points).

**Too few outcomes.** An arm gets no interval and no p-value (its effect is still shown) when an
expected cell of its 2×2 table with the control is below :data:`MIN_EXPECTED` (5, the rule under
which the unadjusted comparison switches to its exact test): the sandwich variance, estimated from
a handful of successes spread over strata, is then too small (cells without a success contribute
none), and the normal intervals covered 0.926 instead of 0.95 at 50 visits per arm and a 2 % rate
(docs/calibration.md). The unadjusted comparison, exact at such counts, is the one to read.

**Why cells are exact.** Every visit in a cell (one arm × covariate combination) has the same
regressors ``x_c``, so each quantity in the estimators and their sandwich covariances is a sum
over visits that collapses to a sum over cells: with ``n_c`` visits, ``s_c`` successes and fitted
value ``f_c`` in cell ``c``, ``Σᵢ∈c eᵢ = s_c − n_c·f_c`` and
``Σᵢ∈c eᵢ² = s_c(1 − f_c)² + (n_c − s_c)f_c²``; a visit's leverage is
``h_c = x_c'(Σ n_c x_c x_c')⁻¹x_c``. So HC2, CR1 and CR2 (:mod:`analysis.sandwich`) are the
visit-level values, computed from a few hundred cells instead of 1.1 million rows (memory:
O(cells × parameters)). The tests check this against statsmodels run on the expanded visits.
Point estimates are weighted least squares of cell rates with weights ``n_c`` (numpy) and a
binomial GLM on ``(s_c, n_c − s_c)`` (statsmodels), which equal the visit-level OLS and logit.

References: Lin W (2013) Agnostic notes on regression adjustments to experimental data:
reexamining Freedman's critique, Ann Appl Stat 7:295–318. Miratrix LW, Sekhon JS, Yu B (2013)
Adjusting treatment effect estimates by post-stratification in randomized experiments, J R Stat
Soc B 75:369–396. MacKinnon JG, White H (1985) J Econometrics 29:305–325. Bell RM, McCaffrey DF
(2002) Survey Methodology 28:169–181. Pustejovsky JE, Tipton E (2018) J Bus Econ Stat
36:672–683. Imbens GW, Rubin DB (2015) Causal Inference for Statistics, Social, and Biomedical
Sciences, Cambridge University Press. Williams R (2012) Stata Journal 12:308–331 (average
marginal effects).
"""

from __future__ import annotations

import math
import warnings as pywarnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr, ndtri, stdtr, stdtrit

from analysis.sandwich import bell_mccaffrey_df, cr1, cr2, hc

__all__ = ["AdjustedEstimate", "ClusterSE", "Model", "adjusted_effects", "describe", "to_cells"]

Model = Literal["lpm", "logit"]
MODELS: tuple[str, ...] = get_args(Model)
ClusterSE = Literal["CR2", "CR1"]
CLUSTER_SE: tuple[str, ...] = get_args(ClusterSE)
#: CR1 (kept for comparison) warns below this many clusters (Cameron & Miller 2015).
FEW_CLUSTERS = 20
#: Below this smallest expected 2×2 cell count (arm vs control) no adjusted interval is given.
MIN_EXPECTED = 5.0
#: An interaction of an arm with a level needs this many visits of the arm and of the control.
MIN_INTERACTION_VISITS = 2
MISSING_LEVEL = "(missing)"
JOIN = " × "


@dataclass(frozen=True)
class AdjustedEstimate:
    """Covariate-adjusted effect of ``arm`` against the control (a proportion difference).

    ``n`` is the number of visits in the model (all arms); ``se_type`` is ``"HC2"``, ``"HC0"``,
    ``"CR2(<column>)"`` or ``"CR1(<column>)"``; ``df`` the degrees of freedom of the t
    distribution of the interval and p-value (``None``: normal). ``strata`` are the columns whose
    combination is the stratum of the randomization, ``covariates`` the other adjusted columns;
    ``estimator`` says in words what was computed. When the fit failed, ``effect`` and the
    interval are NaN and ``warnings`` says why.
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
    strata: tuple[str, ...] = ()
    df: float | None = None
    estimator: str = ""


def to_cells(data: pd.DataFrame, outcome: str, keys: Sequence[str]) -> pd.DataFrame:
    """Visits and successes per combination of ``keys``: columns ``*keys, n, successes``.

    Accepts three shapes of ``data``: cells with ``n`` and ``successes`` (or ``n`` and the
    ``outcome`` column holding success counts); 0/1 ``outcome`` rows with a ``count`` column
    (frequency weights); or one 0/1 ``outcome`` row per visit. Missing key values become the
    level ``"(missing)"``; cells with ``n = 0`` are dropped. Rows are sorted by the keys.
    """
    missing = [k for k in keys if k not in data.columns]
    if missing:
        raise ValueError(f"column(s) {', '.join(missing)} not in the data")
    n, successes = _counts(data, outcome)
    if (n < 0).any() or (successes < 0).any() or (successes > n).any():
        raise ValueError("counts must satisfy 0 ≤ successes ≤ n in every row")
    labels = [_labels(data[k]) for k in keys]
    coded = [np.unique(values, return_inverse=True) for values in labels]
    sizes = tuple(len(levels) for levels, _ in coded)
    combined = np.ravel_multi_index([codes.ravel() for _, codes in coded], sizes) if keys else 0
    cells, first, inverse = np.unique(
        np.broadcast_to(combined, len(n)), return_index=True, return_inverse=True
    )
    totals = np.bincount(inverse.ravel(), weights=n, minlength=len(cells)).astype(np.int64)
    wins = np.bincount(inverse.ravel(), weights=successes, minlength=len(cells)).astype(np.int64)
    keep = totals > 0
    columns = {k: values[first[keep]] for k, values in zip(keys, labels, strict=True)}
    return pd.DataFrame({**columns, "n": totals[keep], "successes": wins[keep]})


def _counts(data: pd.DataFrame, outcome: str) -> tuple[np.ndarray, np.ndarray]:
    """Visits and successes per row of any of the three shapes (whole numbers checked)."""
    if "n" in data.columns:
        column = "successes" if "successes" in data.columns else outcome
        if column not in data.columns:
            raise ValueError(f"cell data need a 'successes' or {outcome!r} column beside 'n'")
        return _whole(data["n"], "n"), _whole(data[column], "successes")
    if outcome not in data.columns:
        raise ValueError(f"outcome column {outcome!r} not in the data")
    y = _whole(data[outcome], outcome)
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"outcome {outcome!r} must be 0/1 (one row per visit)")
    n = _whole(data["count"], "count") if "count" in data.columns else np.ones_like(y)
    return n, n * y


def _whole(values: pd.Series, name: str) -> np.ndarray:
    array = values.to_numpy()
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    numeric = pd.to_numeric(values, errors="raise").to_numpy(float)
    if np.isnan(numeric).any() or not np.all(np.equal(np.mod(numeric, 1), 0)):
        raise ValueError(f"{name} must hold whole numbers")
    return numeric.astype(np.int64)


def _labels(values: pd.Series) -> np.ndarray:
    """Values as strings, missing ones as ``"(missing)"`` (an object array)."""
    array = values.to_numpy(dtype=object, copy=True)
    array[pd.isna(array)] = MISSING_LEVEL
    return array.astype(str).astype(object)


class _Span:
    """Orthonormal basis of the √n-weighted columns accepted so far (Gram-Schmidt, twice)."""

    def __init__(self, weights: np.ndarray, capacity: int) -> None:
        self.weights = weights
        self.basis = np.zeros((len(weights), capacity))
        self.size = 0

    def add(self, column: np.ndarray) -> bool:
        """Accept ``column`` if it is not a linear combination of the accepted ones."""
        vector = column * self.weights
        length = float(np.linalg.norm(vector))
        if length == 0.0 or self.size == self.basis.shape[1]:
            return False
        used = self.basis[:, : self.size]
        rest = vector - used @ (used.T @ vector)
        rest -= used @ (used.T @ rest)
        remaining = float(np.linalg.norm(rest))
        if remaining <= 1e-9 * length:
            return False
        self.basis[:, self.size] = rest / remaining
        self.size += 1
        return True


@dataclass(frozen=True)
class _Design:
    x: np.ndarray  # cells × parameters: intercept, arm indicators, covariate terms
    arms: tuple[str, ...]  # non-control arms, column j + 1 of x
    dropped: tuple[str, ...]  # covariate terms left out as collinear
    tied: tuple[str, ...]  # interactions left out for too few visits (tied to the reference)
    terms: tuple[str, ...]  # covariate columns with at least one indicator in the model


def _indicators(cells: pd.DataFrame, column: str, n: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Level masks of ``column`` but the reference (the level with most visits, then sorted)."""
    values = cells[column].to_numpy()
    levels = sorted(set(values))
    sizes = [float(n[values == level].sum()) for level in levels]
    reference = levels[int(np.argmax(sizes))]
    return [(f"{column}={level}", values == level) for level in levels if level != reference]


def _design(
    cells: pd.DataFrame, arms: Sequence[str], control: str, terms: Sequence[str], interacted: bool
) -> _Design:
    """Intercept, arm indicators (control = reference), centred covariate indicators and, if
    ``interacted``, their products with the arm indicators (Lin 2013)."""
    arms = tuple(arms)
    n = cells["n"].to_numpy(float)
    arm_of = cells["arm"].to_numpy()
    levels = [item for term in terms for item in _indicators(cells, term, n)]
    capacity = (1 + len(arms)) * (1 + len(levels))
    span = _Span(np.sqrt(n), capacity)
    columns = [np.ones(len(cells))] + [(arm_of == a).astype(float) for a in arms]
    for column in columns:
        span.add(column)
    kept, dropped, tied = [], [], []
    for name, mask in levels:
        centred = mask - float(n @ mask) / n.sum()
        if span.add(centred):
            kept.append((name, mask, centred))
            columns.append(centred)
        else:
            dropped.append(name)
    in_control = arm_of == control
    for arm in arms if interacted else ():
        in_arm = arm_of == arm
        for name, mask, centred in kept:
            few = min(n[in_arm & mask].sum(), n[in_control & mask].sum())
            product = in_arm * centred
            if few < MIN_INTERACTION_VISITS:
                tied.append(f"{arm}:{name}")
            elif span.add(product):
                columns.append(product)
            else:
                dropped.append(f"{arm}:{name}")
    used = tuple(t for t in terms if any(name.startswith(f"{t}=") for name, _, _ in kept))
    return _Design(np.column_stack(columns), arms, tuple(dropped), tuple(tied), used)


def _clusters(cells: pd.DataFrame, cluster: str | None) -> np.ndarray | None:
    if cluster is None:
        return None
    return pd.factorize(cells[cluster], sort=True)[0]


@dataclass(frozen=True)
class _Fit:
    effects: list[tuple[float, float, float | None]]  # (effect, se, df) per arm
    notes: list[str]


def _fit_lpm(
    x: np.ndarray, n: np.ndarray, s: np.ndarray, groups: np.ndarray | None, n_arms: int,
    cluster_se: str,
) -> _Fit:  # fmt: skip
    """OLS on cells (weighted least squares of the rates), HC2, CR1 or CR2 covariance."""
    root = np.sqrt(n)
    beta = np.linalg.lstsq(x * root[:, None], s / root, rcond=None)[0]
    fitted = x @ beta
    bread = np.linalg.inv(x.T @ (x * n[:, None]))
    arms = range(1, 1 + n_arms)
    notes: list[str] = []
    if groups is None:
        cov = hc(x, n, s, fitted, bread, hc2=True)
        return _Fit([(float(beta[j]), _root(cov[j, j]), None) for j in arms], notes)
    if cluster_se == "CR1":
        cov = cr1(x, n, s, fitted, bread, groups)
        df = float(groups.max())
        return _Fit([(float(beta[j]), _root(cov[j, j]), df) for j in arms], notes)
    cov, blocks = cr2(x, n, s, fitted, bread, groups)
    if any(block.singular for block in blocks):
        notes.append(
            "CR2: some clusters alone determine a term of the model (I − H_gg singular); their "
            "adjustment uses the Moore-Penrose inverse square root (Pustejovsky & Tipton 2018)"
        )
    unit = np.eye(x.shape[1])
    effects = [
        (float(beta[j]), _root(cov[j, j]), bell_mccaffrey_df(blocks, bread, unit[j])) for j in arms
    ]
    return _Fit(effects, notes)


def _root(variance: float) -> float:
    return math.sqrt(variance) if math.isfinite(variance) and variance >= 0 else math.nan


def _fit_logit(x: np.ndarray, n: np.ndarray, s: np.ndarray, groups: np.ndarray | None, n_arms: int):
    import statsmodels.api as sm  # deferred on purpose: statsmodels loads only for a logit fit

    model = sm.GLM(np.column_stack([s, n - s]), x, family=sm.families.Binomial())
    result = model.fit(tol=1e-12, maxiter=200)
    beta = np.asarray(result.params)
    if not np.all(np.isfinite(beta)):
        raise ValueError("non-finite coefficients")
    p = expit(x @ beta)
    bread = np.linalg.inv(x.T @ (x * (n * p * (1 - p))[:, None]))
    if groups is None:
        cov, df = hc(x, n, s, p, bread, hc2=False), None
    else:
        cov, df = cr1(x, n, s, p, bread, groups), float(groups.max())
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
        effects.append((ame, _root(float(gradient @ cov @ gradient)), df))
    return _Fit(effects, [])


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


def describe(
    model: str, interacted: bool, terms: Sequence[str], se_type: str, n_clusters: int | None = None
) -> str:
    """The estimator in words, for the report (e.g. Lin's regression with HC2 errors)."""
    adjusted = ", ".join(terms)
    if model == "logit":
        what = (
            f"logistic regression with fixed effects of {adjusted}, average marginal effect "
            "(delta method)"
            if terms
            else "logistic regression on the arms, average marginal effect (delta method)"
        )
    elif not terms:
        what = "difference in means (OLS on the arm indicators)"
    elif interacted:
        what = (
            f"Lin (2013) interacted regression (arm indicators, centred indicators of {adjusted} "
            "and their interactions)"
        )
    else:
        what = f"OLS with fixed effects of {adjusted}"
    column = se_type[4:-1] if "(" in se_type else ""
    errors = {
        "HC2": "HC2 standard errors, normal intervals",
        "HC0": "HC0 robust standard errors, normal intervals",
        "CR2": f"CR2 standard errors clustered by {column} ({n_clusters} clusters), t intervals "
        "with Bell-McCaffrey degrees of freedom",
        "CR1": f"CR1 standard errors clustered by {column} ({n_clusters} clusters), t intervals "
        "with G − 1 degrees of freedom",
    }[se_type[:3]]
    return f"{what}; {errors}"


def adjusted_effects(
    data: pd.DataFrame,
    outcome: str,
    control: str,
    *,
    covariates: Sequence[str] = ("location", "language"),
    strata: Sequence[str] = (),
    cluster: str | None = None,
    model: Model = "lpm",
    interacted: bool | None = None,
    cluster_se: ClusterSE = "CR2",
    alpha: float = 0.05,
) -> list[AdjustedEstimate]:
    """Adjusted effect of every non-control arm in ``data`` (in order of first appearance).

    ``data``: cells (``arm``, strata, covariates, ``n``, ``successes``), 0/1 ``outcome`` rows
    with a ``count``, or one row per visit (see :func:`to_cells`). ``strata``: columns whose
    level combinations are the strata of the randomization (one covariate); ``covariates``:
    further pre-treatment columns, each a covariate (columns in ``strata`` are skipped).
    ``cluster`` names the randomized unit when it is a group of visits (never a stratum).
    ``interacted`` (default: ``True`` for ``"lpm"``) adds Lin's interactions; the logit is
    always additive. Problems of the fit (separation, collinear terms, a failed fit) are
    returned in ``warnings``; invalid input raises :class:`ValueError`.
    """
    interacted = _check(model, interacted, cluster_se, alpha)
    strata = tuple(strata)
    covariates = tuple(c for c in covariates if c not in strata)
    if cluster and interacted and cluster in (*strata, *covariates):
        raise ValueError(
            f"{cluster!r} is both the cluster and an interacted covariate, so its cluster scores "
            "vanish; the randomized cluster is nested in the strata, not one of them"
        )
    keys = list(dict.fromkeys(["arm", *strata, *covariates, *([cluster] if cluster else [])]))
    cells = to_cells(data, outcome, keys)
    if control not in set(cells["arm"]):
        raise ValueError(f"control arm {control!r} has no analysed visits in the data")
    terms = list(covariates)
    if strata:
        stratum = JOIN.join(strata)
        if len(strata) > 1:
            cells[stratum] = cells[list(strata)].agg(JOIN.join, axis=1)
        terms.insert(0, stratum)
    notes: list[str] = []
    groups = _clusters(cells, cluster)
    n_clusters = None if groups is None else int(groups.max() + 1)
    if n_clusters is not None and n_clusters < 2:
        notes.append(f"only one {cluster}: cluster-robust standard errors impossible; HC used")
        groups, n_clusters = None, None
    elif n_clusters is not None and cluster_se == "CR1" and n_clusters < FEW_CLUSTERS:
        notes.append(
            f"only {n_clusters} clusters ({cluster}); CR1 standard errors are unreliable with "
            f"fewer than {FEW_CLUSTERS} clusters"
        )
    se_type = _se_type(model, cluster if groups is not None else None, cluster_se)
    present = set(cells["arm"])
    order = [a for a in pd.unique(_labels(data["arm"])) if a in present and a != control]
    design = _design(cells, order, control, terms, interacted)
    notes += _design_notes(design)
    n = cells["n"].to_numpy(float)
    s = cells["successes"].to_numpy(float)
    separated: set[str] = set()
    if model == "logit":
        separated = _separation_notes(cells, ["arm", *terms], control, design.arms, notes)
    fit = _fit(design, n, s, groups, model, cluster_se)
    notes += fit.notes
    estimator = describe(model, interacted, design.terms, se_type, n_clusters)
    common = {
        "model": model,
        "se_type": se_type,
        "n": int(n.sum()),
        "n_clusters": n_clusters,
        "covariates": covariates,
        "strata": strata,
        "estimator": estimator,
    }
    sparse = _sparse_arms(cells, design.arms, control)
    return [
        _estimate(arm, effect, se, df, alpha, arm in separated, notes, se_type, common, sparse)
        for arm, (effect, se, df) in zip(design.arms, fit.effects, strict=True)
    ]


def _sparse_arms(cells: pd.DataFrame, arms: Sequence[str], control: str) -> dict[str, float]:
    """Arms whose smallest expected 2×2 cell (against the control) is below MIN_EXPECTED."""
    totals = cells.groupby("arm", sort=False)[["n", "successes"]].sum()
    n0, x0 = (float(v) for v in totals.loc[control])
    sparse: dict[str, float] = {}
    for arm in arms:
        n1, x1 = (float(v) for v in totals.loc[arm])
        successes, total = x1 + x0, n1 + n0
        smallest = min(n * k / total for n in (n1, n0) for k in (successes, total - successes))
        if smallest < MIN_EXPECTED:
            sparse[arm] = smallest
    return sparse


def _check(model: str, interacted: bool | None, cluster_se: str, alpha: float) -> bool:
    """Validate the options; return whether to interact."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if cluster_se not in CLUSTER_SE:
        raise ValueError(f"unknown cluster_se {cluster_se!r}; choose one of CR2, CR1")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha}")
    if model == "logit" and interacted:
        raise ValueError("the logit is fitted with additive fixed effects only (interacted=False)")
    return model == "lpm" if interacted is None else interacted


def _se_type(model: str, cluster: str | None, cluster_se: str) -> str:
    if cluster is None:
        return "HC2" if model == "lpm" else "HC0"
    return f"{cluster_se if model == 'lpm' else 'CR1'}({cluster})"


def _design_notes(design: _Design) -> list[str]:
    notes = []
    if design.dropped:
        notes.append(f"terms collinear with earlier terms left out: {', '.join(design.dropped)}")
    if design.tied:
        notes.append(
            f"interactions left out (fewer than {MIN_INTERACTION_VISITS} visits of the arm or the "
            "control at that level; the arm's effect there is tied to its effect at the level "
            f"with most visits): {', '.join(design.tied)}"
        )
    return notes


def _separation_notes(
    cells: pd.DataFrame, columns: Sequence[str], control: str, arms: Sequence[str], notes: list
) -> set[str]:
    """Append a note per separated logit term; return the arms without an interval."""
    separated = set()
    for column, level, kind in _separation(cells, columns):
        notes.append(
            f"perfect separation: {column} {level} has {kind} successes; its logit "
            "coefficient diverges, so marginal effects are unreliable (compare with the LPM)"
        )
        if column == "arm":
            separated.add(level)
    if control in separated:
        separated.update(arms)
    return separated


def _estimate(
    arm: str,
    effect: float,
    se: float,
    df: float | None,
    alpha: float,
    separated: bool,
    notes: list[str],
    se_type: str,
    common: dict,
    sparse: dict[str, float],
) -> AdjustedEstimate:
    """One arm's estimate: interval and p-value from the normal or t(df) distribution."""
    arm_notes = list(notes)
    low = high = p = math.nan
    if arm in sparse:
        arm_notes.append(
            f"arm {arm}: no adjusted interval or p-value: the smallest expected count of its "
            f"2×2 table with the control is {sparse[arm]:.2f}, below {MIN_EXPECTED:g}; read the "
            "unadjusted comparison (exact test)"
        )
    elif separated:
        arm_notes.append(f"arm {arm}: no interval or p-value, the logit fit is separated")
    elif math.isfinite(se) and se > 0 and (df is None or df > 0):
        quantile = float(-ndtri(alpha / 2) if df is None else -stdtrit(df, alpha / 2))
        low, high = effect - quantile * se, effect + quantile * se
        z = -abs(effect) / se
        p = float(2 * (ndtr(z) if df is None else stdtr(df, z)))
    elif math.isfinite(effect):
        arm_notes.append(f"arm {arm}: no interval or p-value: {_why(se, se_type)}")
    return AdjustedEstimate(
        arm=arm,
        effect=effect,
        ci_low=low,
        ci_high=high,
        p_value=p,
        warnings=tuple(arm_notes),
        se=se,
        df=df,
        **common,
    )


def _why(se: float, se_type: str) -> str:
    if se_type == "HC2" and not math.isfinite(se):
        return (
            "HC2 is undefined when a visit is fitted exactly (leverage 1, e.g. a cell of one "
            "visit that no other term shares)"
        )
    if se == 0:
        return "every visit in the compared arms had the same outcome"
    return "the covariance or its degrees of freedom are not finite"


def _fit(
    design: _Design, n: np.ndarray, s: np.ndarray, groups: np.ndarray | None, model: str,
    cluster_se: str,
) -> _Fit:  # fmt: skip
    """``(effect, se, df)`` per arm; NaN with the reason in the notes when the fit fails."""
    from statsmodels.tools.sm_exceptions import PerfectSeparationError  # deferred (see _fit_logit)

    failed = _Fit([(math.nan, math.nan, None)] * len(design.arms), [])
    with pywarnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        pywarnings.simplefilter("always")
        try:
            if model == "lpm":
                fit = _fit_lpm(design.x, n, s, groups, len(design.arms), cluster_se)
            else:
                fit = _fit_logit(design.x, n, s, groups, len(design.arms))
        except (np.linalg.LinAlgError, PerfectSeparationError, ValueError) as error:
            return _Fit(failed.effects, [f"{model} fit failed: {error}"])
    notes = list(fit.notes)
    for warning in caught:
        text = f"{model}: {warning.category.__name__}: {warning.message}"
        if text not in notes:
            notes.append(text)
    return _Fit(fit.effects, notes)
