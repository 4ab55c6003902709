"""Two-sided tests for arm-versus-control and the omnibus test across all arms.

- Two-proportion z-test with the pooled variance (the score test of ``p₁ = p₂``), the same
  statistic as Pearson's chi-square on the 2×2 table without continuity correction (``z² = χ²``).
- The exact unconditional version of that z-test (Suissa & Shuster 1985; Barnard's test with the
  pooled variance, as ``scipy.stats.barnard_exact(pooled=True)``), with the nuisance parameter
  maximised over a confidence interval (Berger & Boos 1994): the small-sample test. Its size
  never exceeds α, whatever the common rate.
- Fisher's exact test (conditional on the margins; two-sided p sums all tables no more probable
  than the observed one, as R's ``fisher.test`` and scipy's ``fisher_exact`` do): kept for
  comparison and for analyses that pre-registered it; conservative with few events.
- Pearson's chi-square on the k×2 table (arms × success/failure), ``k − 1`` degrees of freedom,
  no continuity correction.

References: Agresti A (2013) Categorical Data Analysis, 3rd ed., Wiley: §3.2 (chi-square and
z-test), §3.5 (Fisher's exact test, unconditional tests). Fisher RA (1935) The Design of
Experiments. Suissa S, Shuster JJ (1985) Exact unconditional sample sizes for the 2×2 binomial
trial. J R Stat Soc A 148:317–327. Berger RL, Boos DD (1994) P values maximized over a confidence
set for the nuisance parameter. J Am Stat Assoc 89:1012–1016. Mehrotra DV, Chan ISF, Berger RL
(2003) A cautionary note on exact unconditional inference for a difference between two
independent binomial proportions. Biometrics 59:441–450. Lydersen S, Fagerland MW, Laake P (2009)
Recommended tests for association in 2×2 tables. Stat Med 28:1159–1175.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, get_args

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import bdtr, bdtrc, gammaln, ndtr
from scipy.stats import beta, fisher_exact
from scipy.stats import chi2 as chi2_distribution

Test = Literal["z", "exact-z", "fisher"]
TESTS: tuple[str, ...] = get_args(Test)
#: The test used for an arm when an expected cell count of its 2×2 table is small.
SmallSampleTest = Literal["exact-z", "fisher"]
SMALL_SAMPLE_TESTS: tuple[str, ...] = get_args(SmallSampleTest)
#: Berger & Boos (1994): the nuisance rate is searched over a ``1 − γ`` confidence interval and
#: ``γ`` is added to the p-value (their suggested value), so no p-value is below ``γ``.
BERGER_BOOS_GAMMA = 1e-3
#: Pooled rates whose ``S = x₁ + x₂`` lies this far in a binomial tail are not enumerated; their
#: probability is counted as rejecting, so the p-value can only grow (by at most 2e-14).
_TAIL = 1e-14
#: Relative tolerance for ties of the z statistic between tables (floating-point rounding).
_TIES = 1e-10
#: Nuisance rates on the first, coarse grid; the best few are then refined by Brent's method.
_GRID = 64


def expected_cells(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float, float, float]:
    """Expected counts of the 2×2 table under independence: row total × column total / N."""
    total, successes = n1 + n2, x1 + x2
    failures = total - successes
    return (
        n1 * successes / total,
        n1 * failures / total,
        n2 * successes / total,
        n2 * failures / total,
    )


def z_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z-test: ``(z, p)``, two-sided.

    ``z = (p₁ − p₂) / √(p̄(1 − p̄)(1/n₁ + 1/n₂))`` with ``p̄ = (x₁ + x₂)/(n₁ + n₂)``;
    ``p = 2·(1 − Φ(|z|))``. When ``p̄`` is 0 or 1 the rates are identical: ``z = 0``, ``p = 1``.
    """
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if variance <= 0.0:
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / math.sqrt(variance)
    return z, float(2.0 * ndtr(-abs(z)))  # ndtr(−x) is scipy.stats.norm.sf(x)


def fisher(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test on ``[[x₁, n₁ − x₁], [x₂, n₂ − x₂]]``."""
    result = fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="two-sided")
    return float(result.pvalue)


def exact_z(x1: int, n1: int, x2: int, n2: int, gamma: float = BERGER_BOOS_GAMMA) -> float:
    """Two-sided p-value of the exact unconditional pooled z-test (Suissa & Shuster 1985).

    Tables are ordered by the pooled ``|z|`` of :func:`z_test`; under ``p₁ = p₂ = π`` the
    probability of a table at least as extreme as the observed one is

        P(π) = Σ_{(y₁, y₂): |z(y₁, y₂)| ≥ |z_obs|} b(y₁; n₁, π)·b(y₂; n₂, π),

    and the p-value is its maximum over the nuisance rate ``π``. With ``gamma > 0`` (Berger &
    Boos 1994) the maximum is taken over the exact ``1 − γ`` (Clopper–Pearson) interval of the
    pooled rate ``S/N`` only, and ``γ`` is added: ``p = min(1, sup_{π ∈ C_γ} P(π) + γ)``. Both
    versions are valid: ``Pr(p ≤ α) ≤ α`` for every ``π`` and every α. ``gamma = 0`` maximises
    over [0, 1], which is ``scipy.stats.barnard_exact(pooled=True)`` (the tests compare them).

    Computation: grouping tables by ``s = y₁ + y₂``, ``b(y₁)·b(y₂) = h(y₁ | s)·b(s; N, π)``
    with ``h`` the hypergeometric probability, so ``P(π) = Σ_s c_s·b(s; N, π)`` where
    ``c_s = Σ_{y₁} h(y₁ | s)·[|z(y₁, s − y₁)| ≥ |z_obs|]`` does not depend on ``π``. Only the
    ``s`` that ``C_γ`` makes likely are enumerated (the rest count as rejecting, which can only
    raise ``p``), and ``P`` is maximised on a grid refined by Brent's method. Tables with all
    successes or all failures (``z = 0``) give ``p = 1``. Results are cached by table.
    """
    for n, x in ((n1, x1), (n2, x2)):
        if n <= 0 or not 0 <= x <= n:
            raise ValueError(f"need n > 0 and 0 <= x <= n, got x={x}, n={n}")
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must lie in [0, 1), not {gamma}")
    return _exact_z(int(x1), int(n1), int(x2), int(n2), float(gamma))


@lru_cache(maxsize=1 << 16)
def _exact_z(x1: int, n1: int, x2: int, n2: int, gamma: float) -> float:
    total, s = n1 + n2, x1 + x2
    if 2 * s > total:  # successes and failures swapped: the same |z|, fewer tables to sum
        x1, x2, s = n1 - x1, n2 - x2, total - s
    observed = _z_squared(np.array([x1]), np.array([s]), n1, total)[0]
    if s == 0 or observed == 0.0:
        return 1.0
    low, high = _nuisance_interval(s, total, gamma)
    first, last = _enumerated_sums(total, low, high)
    c = _conditional_tail(first, last, n1, n2, observed)
    return min(1.0, _maximum(c, first, last, total, low, high) + gamma)


def _z_squared(y1: np.ndarray, s: np.ndarray, n1: int, total: int) -> np.ndarray:
    """``z²`` of the pooled z-test up to the factor ``N/(n₁n₂)``: ``(y₁N − s·n₁)²/(s(N − s))``.

    The factor is the same for every table of the same sample sizes, so the ordering of tables
    is that of ``|z|``; ``s = 0`` or ``s = N`` gives 0 (:func:`z_test` returns ``z = 0``).
    """
    y1, s = y1.astype(float), s.astype(float)
    spread = s * (total - s)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (y1 * total - s * n1) ** 2 / spread
    return np.where(spread > 0, value, 0.0)


def _nuisance_interval(s: int, total: int, gamma: float) -> tuple[float, float]:
    """The exact (Clopper–Pearson) ``1 − γ`` interval of the pooled rate; [0, 1] if ``γ = 0``."""
    if gamma == 0.0:
        return 0.0, 1.0
    low = float(beta.ppf(gamma / 2, s, total - s + 1)) if s > 0 else 0.0
    high = float(beta.ppf(1 - gamma / 2, s + 1, total - s)) if s < total else 1.0
    return low, high


def _enumerated_sums(total: int, low: float, high: float) -> tuple[int, int]:
    """The range of ``s`` that carries all but ``_TAIL`` of ``Bin(N, π)`` for ``π`` in range."""
    candidates = np.arange(total + 1)
    below = bdtr(candidates, total, low) >= _TAIL if low > 0 else np.ones(total + 1, bool)
    above = bdtrc(candidates - 1, total, high) >= _TAIL if high < 1 else np.ones(total + 1, bool)
    first = int(np.argmax(below))
    last = int(total - np.argmax(above[::-1]))
    return first, max(first, last)


def _conditional_tail(first: int, last: int, n1: int, n2: int, observed: float) -> np.ndarray:
    """``c_s`` for ``s = first … last``: the hypergeometric probability of ``|z| ≥ |z_obs|``."""
    total = n1 + n2
    width = min(n1, last) + 1
    rows = max(1, 2_000_000 // width)  # bounded memory for large tables
    parts = []
    for start in range(first, last + 1, rows):
        s = np.arange(start, min(last, start + rows - 1) + 1)[:, None]
        y1 = np.arange(width)[None, :]
        valid = (y1 <= s) & (s - y1 <= n2)
        y2 = np.where(valid, s - y1, 0)
        y1_valid = np.where(valid, y1, 0)
        log_h = _log_choose(n1, y1_valid) + _log_choose(n2, y2) - _log_choose(total, s)
        extreme = valid & (_z_squared(y1, s, n1, total) >= observed * (1.0 - _TIES))
        parts.append(np.exp(np.where(extreme, log_h, -np.inf)).sum(axis=1))
    return np.minimum(np.concatenate(parts), 1.0)


def _log_choose(n: int, k: np.ndarray) -> np.ndarray:
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def _maximum(c: np.ndarray, first: int, last: int, total: int, low: float, high: float) -> float:
    """``max_{low ≤ π ≤ high} Σ_s c_s·b(s; N, π)`` plus the binomial mass outside the sums."""
    s = np.arange(first, last + 1)
    log_choose = _log_choose(total, s)

    def tail_probability(pi: float) -> float:
        if pi <= 0.0 or pi >= 1.0:  # every table has S = 0 or S = N: z = 0, not extreme
            return 0.0
        log_b = log_choose + s * math.log(pi) + (total - s) * math.log1p(-pi)
        outside = (bdtr(first - 1, total, pi) if first > 0 else 0.0) + (
            bdtrc(last, total, pi) if last < total else 0.0
        )
        return float(np.exp(log_b) @ c + outside)

    grid = np.linspace(low, high, _GRID)
    values = np.array([tail_probability(pi) for pi in grid])
    best = float(values.max())
    for i in np.argsort(values)[-3:]:
        left, right = grid[max(i - 1, 0)], grid[min(i + 1, _GRID - 1)]
        found = minimize_scalar(
            lambda pi: -tail_probability(pi),
            bounds=(left, right),
            method="bounded",
            options={"xatol": 1e-12},
        )
        best = max(best, -float(found.fun))
    return best


@dataclass(frozen=True)
class Omnibus:
    """Pearson chi-square across all arms; ``min_expected`` flags a poor approximation."""

    chi2: float
    df: int
    p_value: float
    min_expected: float


def omnibus(counts: Sequence[tuple[int, int]]) -> Omnibus:
    """Pearson's ``χ² = Σ (O − E)²/E`` on the k×2 table of ``(successes, n)`` per arm.

    ``E`` is row total × column total / N and ``df = k − 1``. When nobody (or everybody) had
    the outcome, the rates are all equal and the statistic is undefined: ``χ² = p = NaN``.
    """
    if len(counts) < 2:
        raise ValueError("the omnibus test needs at least two arms")
    total = sum(n for _, n in counts)
    successes = sum(x for x, _ in counts)
    failures = total - successes
    df = len(counts) - 1
    if successes == 0 or failures == 0:
        return Omnibus(math.nan, df, math.nan, 0.0)
    statistic, smallest = 0.0, math.inf
    for x, n in counts:
        for observed, column in ((x, successes), (n - x, failures)):
            expected = n * column / total
            smallest = min(smallest, expected)
            statistic += (observed - expected) ** 2 / expected
    return Omnibus(statistic, df, float(chi2_distribution.sf(statistic, df)), smallest)
