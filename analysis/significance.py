"""Two-sided tests for arm-versus-control and the omnibus test across all arms.

- Two-proportion z-test with the pooled variance (the score test of ``p₁ = p₂``), the same
  statistic as Pearson's chi-square on the 2×2 table without continuity correction (``z² = χ²``).
- Fisher's exact test (conditional on the margins; two-sided p sums all tables no more probable
  than the observed one, as R's ``fisher.test`` and scipy's ``fisher_exact`` do).
- Pearson's chi-square on the k×2 table (arms × success/failure), ``k − 1`` degrees of freedom,
  no continuity correction.

References: Agresti A (2013) Categorical Data Analysis, 3rd ed., Wiley: §3.2 (chi-square and
z-test), §3.5 (Fisher's exact test). Fisher RA (1935) The Design of Experiments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from scipy.stats import chi2 as chi2_distribution
from scipy.stats import fisher_exact, norm

Test = Literal["z", "fisher"]
TESTS: tuple[str, ...] = get_args(Test)


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
    return z, float(2.0 * norm.sf(abs(z)))


def fisher(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value of Fisher's exact test on ``[[x₁, n₁ − x₁], [x₂, n₂ − x₂]]``."""
    result = fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="two-sided")
    return float(result.pvalue)


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
