"""Confidence intervals for a proportion, a difference of proportions and the 2×2 ratios.

Pure functions over counts, written out from the formulas (not wrappers around statsmodels), so
the tests can compare them with statsmodels and published tables as independent computations.
``z`` is the standard normal quantile ``Φ⁻¹(1 − α/2)``.

References
----------
- Clopper CJ, Pearson ES (1934) The use of confidence or fiducial limits illustrated in the
  case of the binomial. Biometrika 26:404–413.
- Wilson EB (1927) J Am Stat Assoc 22:209–212.
- Newcombe RG (1998a) Two-sided confidence intervals for the single proportion: comparison of
  seven methods. Stat Med 17:857–872 (method 3 = Wilson).
- Newcombe RG (1998b) Interval estimation for the difference between independent proportions:
  comparison of eleven methods. Stat Med 17:873–890 (method 10 = hybrid score).
- Katz D, Baptista J, Azen SP, Pike MC (1978) Biometrics 34:469–474 (log risk-ratio interval).
- Woolf B (1955) Ann Hum Genet 19:251–253 (log odds-ratio interval).
- Haldane JBS (1956) Ann Hum Genet 20:309–311; Anscombe FJ (1956) Biometrika 43:461–464
  (adding 0.5 to every cell when one is zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, get_args

from scipy.special import betaincinv, ndtri

DiffInterval = Literal["newcombe", "wald"]
DIFF_INTERVALS: tuple[str, ...] = get_args(DiffInterval)


@lru_cache(maxsize=256)
def z_quantile(alpha: float) -> float:
    """``Φ⁻¹(1 − α/2)``, e.g. 1.959964 for α = 0.05.

    ``scipy.special.ndtri`` is what ``scipy.stats.norm.ppf`` computes, without its argument
    checks (a comparison asks for the same few quantiles thousands of times; cached too).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha}")
    return float(ndtri(1.0 - alpha / 2.0))


def wilson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for ``p = x/n``.

    ``(2x + z² ∓ z·√(z² + 4x(n − x)/n)) / (2(n + z²))``, clipped to [0, 1] against rounding.
    """
    if n <= 0:
        raise ValueError("the Wilson interval needs n > 0")
    z = z_quantile(alpha)
    centre = 2.0 * successes + z * z
    half = z * math.sqrt(z * z + 4.0 * successes * (n - successes) / n)
    denominator = 2.0 * (n + z * z)
    return max(0.0, (centre - half) / denominator), min(1.0, (centre + half) / denominator)


def clopper_pearson(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Clopper-Pearson ("exact") interval for ``p = x/n``: the quantiles of Beta distributions.

    ``L = B(α/2; x, n − x + 1)`` (0 when ``x = 0``), ``U = B(1 − α/2; x + 1, n − x)`` (1 when
    ``x = n``), with ``B(q; a, b)`` the ``q``-quantile of Beta(a, b). It inverts two one-sided
    binomial tests, so its coverage is at least ``1 − α`` for every ``p`` and ``n``; the Wilson
    interval, shorter, dips below that at rates near 0 or 1 with small ``n``
    (docs/calibration.md).
    """
    if n <= 0:
        raise ValueError("the Clopper-Pearson interval needs n > 0")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie between 0 and n = {n}, not {successes}")
    z_quantile(alpha)  # validates alpha
    low = 0.0 if successes == 0 else float(betaincinv(successes, n - successes + 1, alpha / 2))
    high = (
        1.0 if successes == n else float(betaincinv(successes + 1, n - successes, 1 - alpha / 2))
    )
    return low, high


def newcombe(x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05) -> tuple[float, float]:
    """Newcombe's hybrid score interval for ``p₁ − p₂`` (1998b, method 10).

    With Wilson limits ``(l₁, u₁)`` and ``(l₂, u₂)`` and ``d = p₁ − p₂``:
    ``L = d − √((p₁ − l₁)² + (u₂ − p₂)²)``, ``U = d + √((u₁ − p₁)² + (p₂ − l₂)²)``.
    """
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, alpha)
    l2, u2 = wilson(x2, n2, alpha)
    d = p1 - p2
    return d - math.hypot(p1 - l1, u2 - p2), d + math.hypot(u1 - p1, p2 - l2)


def wald(x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wald interval for ``p₁ − p₂``: ``d ± z·√(p₁q₁/n₁ + p₂q₂/n₂)`` (unpooled, no correction)."""
    p1, p2 = x1 / n1, x2 / n2
    half = z_quantile(alpha) * math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return p1 - p2 - half, p1 - p2 + half


@dataclass(frozen=True)
class Ratio:
    """A ratio with its log-scale interval; ``corrected`` when 0.5 was added to every cell."""

    value: float
    ci_low: float
    ci_high: float
    corrected: bool


def relative_risk(x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05) -> Ratio:
    """Risk ratio ``(x₁/n₁)/(x₂/n₂)`` with the log (Katz) interval.

    ``SE(log RR) = √(1/x₁ − 1/n₁ + 1/x₂ − 1/n₂)``. When ``x₁`` or ``x₂`` is 0, or every visit
    of both arms succeeded (the SE would be 0 and the interval collapse to a point), 0.5 is added
    to each cell (``xᵢ + 0.5``, ``nᵢ + 1``) and ``corrected`` is set.
    """
    corrected = x1 == 0 or x2 == 0 or (x1 == n1 and x2 == n2)
    a, m1, c, m2 = (x1 + 0.5, n1 + 1.0, x2 + 0.5, n2 + 1.0) if corrected else (x1, n1, x2, n2)
    value = (a / m1) / (c / m2)
    se = math.sqrt(max(0.0, 1 / a - 1 / m1 + 1 / c - 1 / m2))
    half = z_quantile(alpha) * se
    return Ratio(value, value * math.exp(-half), value * math.exp(half), corrected)


def odds_ratio(x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05) -> Ratio:
    """Odds ratio ``(a/b)/(c/d)`` with the Woolf (log) interval.

    ``a, b = x₁, n₁ − x₁`` and ``c, d = x₂, n₂ − x₂``; ``SE(log OR) = √(1/a + 1/b + 1/c + 1/d)``.
    When any cell is 0, 0.5 is added to all four (Haldane–Anscombe) and ``corrected`` is set.
    """
    cells = [float(x1), float(n1 - x1), float(x2), float(n2 - x2)]
    corrected = min(cells) == 0.0
    if corrected:
        cells = [cell + 0.5 for cell in cells]
    a, b, c, d = cells
    value = (a / b) / (c / d)
    half = z_quantile(alpha) * math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return Ratio(value, value * math.exp(-half), value * math.exp(half), corrected)
