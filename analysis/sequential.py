"""Two-sided, symmetric group-sequential designs with alpha spending (Lan & DeMets 1983).

A trial that looks at its results ``K`` times and stops at the first look where
``|Z_k| ≥ c_k`` keeps its overall type I error at ``α`` only if the boundaries ``c_k`` are wider
than the fixed-design ``z_{1−α/2}``. This module computes such boundaries, the sample size they
cost, repeated confidence intervals and the stop/continue decision at each look.

**The canonical joint distribution** (Jennison & Turnbull 2000, ch. 3). With ``I_k`` the
statistical information at look ``k``, ``I_K`` the maximum information and ``t_k = I_k / I_K``
the information fraction, the score statistics ``S_k = Z_k·√I_k`` have independent Gaussian
increments. On the scale of fractions, ``S(t) = Z(t)·√t`` is a Brownian motion with drift
``η`` (``η = θ·√I_K`` for an effect ``θ``; ``η = 0`` under H0)::

    Z_k ~ N(η·√t_k, 1),   corr(Z_j, Z_k) = √(t_j / t_k)  (j ≤ k),
    Z_k·√t_k = Z_{k−1}·√t_{k−1} + X_k,   X_k ~ N(η·Δ_k, Δ_k),   Δ_k = t_k − t_{k−1}.

**Alpha spending** (Lan & DeMets 1983). A spending function ``α(t)``, increasing from
``α(0) = 0`` to ``α(1) = α``, fixes how much type I error may be used up by information
fraction ``t``. The boundary at look ``k`` solves

    P₀(|Z_j| < c_j for j < k, |Z_k| ≥ c_k) = α(t_k) − α(t_{k−1}).

Only the fractions of the looks already taken enter, so a look taken earlier or later than
planned simply gets its boundary from its actual fraction, and the design still spends exactly
``α`` when ``t = 1`` is reached.

**Spending convention.** A symmetric two-sided design spends ``α/2`` on each side, with the
one-sided spending function evaluated at level ``α/2`` (the convention of gsDesign's
``test.type = 2`` and of rpact's two-sided designs). The two-sided cumulative spending is then

- O'Brien-Fleming type: ``α(t) = 2·[2 − 2Φ(z_{1−α/4}/√t)]`` (the one-sided Lan-DeMets function
  ``a(t) = 2 − 2Φ(z_{1−a/2}/√t)`` at ``a = α/2``, once per side);
- Pocock type: ``α(t) = α·ln(1 + (e − 1)·t)``.

The other convention, used by Lan & DeMets (1983) themselves, evaluates the O'Brien-Fleming
type function at the two-sided ``α`` (``α(t) = 2 − 2Φ(z_{1−α/2}/√t)``) and halves it per side;
it spends more early and gives different boundaries: for 5 equally spaced looks at α = 0.05,
4.383, 3.100, 2.553, 2.254, 2.064 (computed with this module's integration) instead of 4.877,
3.357, 2.680, 2.290, 2.031. The Pocock-type function is linear in ``α``, so both conventions
give the same Pocock-type boundaries.

**Numerical integration, not simulation.** The sub-density ``f_k`` of ``Z_k`` on the paths that
have not stopped before look ``k`` satisfies (Armitage, McPherson & Rowe 1969; Jennison &
Turnbull 2000, ch. 19)::

    f_1(z) = φ(z − η√t_1),
    f_k(z) = ∫_{|u|<c_{k−1}} f_{k−1}(u) · √(t_k/Δ_k) · φ((z√t_k − u√t_{k−1} − ηΔ_k)/√Δ_k) du,
    P(first crossing at k) = ∫_{|u|<c_{k−1}} f_{k−1}(u) ·
        [Φ̄((c_k√t_k − u√t_{k−1} − ηΔ_k)/√Δ_k) + Φ((−c_k√t_k − u√t_{k−1} − ηΔ_k)/√Δ_k)] du.

The integrals are evaluated by composite Simpson's rule on the continuation region, cut to
``η√t_k ± 8.5`` (``f_k`` never exceeds the N(η√t_k, 1) density, so less than 10⁻¹⁶ of mass is
lost). The grid step is a sixteenth of the narrowest scale the integrands vary on
(1, ``√(Δ_k/t_k)`` and ``√(Δ_{k+1}/t_k)``): Simpson's ``h⁴`` error then keeps crossing
probabilities within about 10⁻⁷ and boundaries within 10⁻⁶, which the tests check against
published tables, ``scipy.stats.multivariate_normal.cdf`` and a Monte Carlo simulation. Only
kernel terms within 10 standard deviations of an increment are summed, so looks that are close
together (small ``Δ_k``, fine grid) stay affordable. Each ``c_k`` is found by Brent's method
(``scipy.optimize.brentq``).

**Inflation factor.** For power ``1 − β`` at a two-sided level ``α``, a fixed design needs drift
``η_fix`` with ``P_η(|Z| ≥ z_{1−α/2}) = 1 − β`` (≈ ``z_{1−α/2} + z_{1−β}``) and the sequential
design drift ``η_seq`` with ``P_η(reject H0 at some look) = 1 − β`` (rejections on either side;
the wrong side adds about 10⁻⁶), both computed with the same integration. Information is
proportional to ``η²``, so the maximum sample size of the sequential design is
``R = (η_seq / η_fix)²`` times the fixed one.

References
----------
- Armitage P, McPherson CK, Rowe BC (1969) Repeated significance tests on accumulating data.
  J R Stat Soc A 132:235–244.
- Lan KKG, DeMets DL (1983) Discrete sequential boundaries for clinical trials.
  Biometrika 70:659–663.
- Jennison C, Turnbull BW (1989) Interim analyses: the repeated confidence interval approach.
  J R Stat Soc B 51:305–361.
- Jennison C, Turnbull BW (2000) Group Sequential Methods with Applications to Clinical Trials.
  Chapman & Hall/CRC (ch. 2: Pocock and O'Brien-Fleming tests; ch. 7: error spending;
  ch. 9: repeated confidence intervals; ch. 19: numerical computation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.special import ndtr, ndtri

__all__ = [
    "SPENDINGS",
    "Decision",
    "Look",
    "RepeatedInterval",
    "SequentialDesign",
    "SequentialDesignError",
    "Spending",
    "boundaries",
    "crossing_probabilities",
    "decisions",
    "drift_for_power",
    "repeated_confidence_interval",
    "spending_function",
]

Spending = Literal["obrien-fleming", "pocock"]
SPENDINGS: tuple[str, ...] = get_args(Spending)

#: Half-width, in standard deviations of Z_k, of the region the integration keeps.
_TAIL = 8.5
#: Simpson steps per unit of the narrowest scale an integrand varies on.
_STEPS_PER_SCALE = 16
#: New grid nodes computed together (bounds the memory of one kernel block).
_ROWS = 256
#: Kernel terms further than this many standard deviations of the increment are dropped.
_KERNEL_SDS = 10.0
#: No boundary beyond this: P(|Z| ≥ 40) underflows to 0 in double precision.
_LARGEST_BOUNDARY = 40.0
_XTOL = 1e-12
_SQRT_2PI = math.sqrt(2.0 * math.pi)

Array = NDArray[np.float64]


class SequentialDesignError(ValueError):
    """The inputs of a group-sequential computation are invalid (the message says which)."""


class Decision(StrEnum):
    """What the design says at one look."""

    CONTINUE = "continue"
    STOP_FOR_EFFICACY = "stop for efficacy"
    #: The last look at full information (fraction 1) did not cross: H0 is not rejected.
    STOP_NOT_SIGNIFICANT = "stop: not significant"


@dataclass(frozen=True)
class Look:
    """The boundary at one look.

    ``look`` counts from 1; ``fraction`` is ``t_k = I_k / I_K``. Reject H0 when
    ``|Z_k| ≥ z_boundary``, equivalently when the look's nominal two-sided p-value is at most
    ``p_boundary = 2(1 − Φ(z_boundary))``. ``alpha_cumulative = α(t_k)`` is the two-sided type I
    error spent up to and including this look, ``alpha_spent = α(t_k) − α(t_{k−1})`` at it.
    ``z_boundary`` is ``inf`` (never reject) when the spending function allows no error at all
    by this fraction in double precision.
    """

    look: int
    fraction: float
    z_boundary: float
    p_boundary: float
    alpha_cumulative: float
    alpha_spent: float


@dataclass(frozen=True)
class SequentialDesign:
    """Boundaries of the looks taken (or planned) so far, and what they cost.

    ``inflation_factor`` is the maximum information (sample size) of this design relative to a
    fixed design with the same ``alpha`` and ``power``; it is ``None`` while the last look is an
    interim (fraction < 1), because the maximum depends on looks not yet taken, and when no
    ``power`` was given.
    """

    alpha: float
    spending: str
    looks: tuple[Look, ...]
    power: float | None
    inflation_factor: float | None

    @property
    def fractions(self) -> tuple[float, ...]:
        """The information fractions ``t_1 < … < t_K``."""
        return tuple(look.fraction for look in self.looks)

    @property
    def z_boundaries(self) -> tuple[float, ...]:
        """The |z| boundaries ``c_1, …, c_K``."""
        return tuple(look.z_boundary for look in self.looks)

    @property
    def complete(self) -> bool:
        """Whether the last look is at full information (fraction 1) and has spent all ``α``."""
        return self.looks[-1].fraction == 1.0


@dataclass(frozen=True)
class RepeatedInterval:
    """A repeated confidence interval ``estimate ± z_boundary·se`` at one look.

    Over all looks of the design the intervals cover the true effect simultaneously with
    probability at least ``1 − α`` (Jennison & Turnbull 1989), whenever the trial stops.
    """

    look: int
    estimate: float
    se: float
    z_boundary: float
    low: float
    high: float


# -- spending functions ----------------------------------------------------------------------


def _check_alpha(alpha: float) -> float:
    if not isinstance(alpha, int | float) or not 0.0 < alpha < 0.5:
        raise SequentialDesignError(
            f"alpha must lie strictly between 0 and 0.5 (two-sided), not {alpha!r}"
        )
    return float(alpha)


def _check_spending(spending: str) -> str:
    if spending not in SPENDINGS:
        raise SequentialDesignError(
            f"unknown spending function {spending!r}; choose one of {', '.join(SPENDINGS)}"
        )
    return spending


def _check_fractions(fractions: Sequence[float]) -> Array:
    try:
        t = np.asarray(fractions, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise SequentialDesignError(
            f"information fractions must be numbers, not {fractions!r}"
        ) from error
    if t.ndim != 1 or t.size == 0:
        raise SequentialDesignError("give the information fraction of at least one look")
    if not np.all(np.isfinite(t)) or np.any(t <= 0.0) or np.any(t > 1.0):
        raise SequentialDesignError(f"information fractions must lie in (0, 1], not {t.tolist()}")
    if np.any(np.diff(t) <= 0.0):
        raise SequentialDesignError(
            f"information fractions must be strictly increasing, not {t.tolist()}"
        )
    return t


def _spent(t: float, alpha: float, spending: str) -> float:
    if t == 1.0:
        return alpha  # both functions equal α at t = 1; avoid the rounding of the formulas
    if spending == "obrien-fleming":
        # two sides × one-sided Lan-DeMets OBF at α/2: 2·2·Φ̄(z_{1−α/4}/√t)
        return float(4.0 * ndtr(-ndtri(1.0 - alpha / 4.0) / math.sqrt(t)))
    return alpha * math.log1p((math.e - 1.0) * t)


def spending_function(
    t: float, alpha: float = 0.05, spending: Spending = "obrien-fleming"
) -> float:
    """Two-sided type I error ``α(t)`` spent by information fraction ``t`` (α/2 per side).

    O'Brien-Fleming type: ``α(t) = 4·(1 − Φ(z_{1−α/4}/√t))``, i.e. ``2 − 2Φ(z_{1−a/2}/√t)`` at
    ``a = α/2`` on each of the two sides. Pocock type: ``α(t) = α·ln(1 + (e − 1)·t)``.
    Both equal ``α`` at ``t = 1`` (Lan & DeMets 1983; gsDesign/rpact convention).
    """
    alpha = _check_alpha(alpha)
    spending = _check_spending(spending)
    if not isinstance(t, int | float) or not 0.0 < t <= 1.0:
        raise SequentialDesignError(f"an information fraction must lie in (0, 1], not {t!r}")
    return _spent(float(t), alpha, spending)


# -- the recursive integration ---------------------------------------------------------------


def _simpson(low: float, high: float, step: float) -> tuple[Array, Array]:
    """Nodes and weights of composite Simpson's rule on [low, high] with steps ≤ ``step``."""
    intervals = max(2, 2 * math.ceil((high - low) / (2.0 * step)))
    nodes = np.linspace(low, high, intervals + 1)
    weights = np.full(intervals + 1, 2.0)
    weights[1::2] = 4.0
    weights[0] = weights[-1] = 1.0
    return nodes, weights * (high - low) / (3.0 * intervals)


@dataclass(frozen=True)
class _Paths:
    """The paths still running after a look: ``mass = weight × f_k(node)`` on a grid of Z_k.

    Before the first look all paths sit at ``Z(0)·√0 = 0``: one node with mass 1 at ``t = 0``.
    """

    t: float
    nodes: Array
    mass: Array


_START = _Paths(0.0, np.zeros(1), np.ones(1))


def _crossing(paths: _Paths, t: float, c: float, drift: float) -> float:
    """P(no crossing before, |Z(t)| ≥ c) for the paths still running."""
    if paths.mass.size == 0 or math.isinf(c):
        return 0.0
    delta = t - paths.t
    centre = paths.nodes * math.sqrt(paths.t) + drift * delta
    scale = math.sqrt(delta)
    upper = ndtr((centre - c * math.sqrt(t)) / scale)  # Φ̄((c√t − centre)/√Δ)
    lower = ndtr((-c * math.sqrt(t) - centre) / scale)
    return float(paths.mass @ (upper + lower))


def _advance(paths: _Paths, t: float, c: float, drift: float, next_t: float | None) -> _Paths:
    """The sub-density of Z(t) on |Z(t)| < c, on a grid fine enough for the next look too."""
    delta = t - paths.t
    scales = [1.0, math.sqrt(delta / t)]
    if next_t is not None:
        scales.append(math.sqrt((next_t - t) / t))
    mean = drift * math.sqrt(t)
    low, high = max(-c, mean - _TAIL), min(c, mean + _TAIL)
    if paths.mass.size == 0 or low >= high:
        return _Paths(t, np.zeros(0), np.zeros(0))
    nodes, weights = _simpson(low, high, min(scales) / _STEPS_PER_SCALE)
    centre = paths.nodes * math.sqrt(paths.t) + drift * delta
    scale = math.sqrt(delta)
    density = np.zeros_like(nodes)
    # The kernel is negligible (< e^{-50}) beyond _KERNEL_SDS standard deviations, so each block
    # of new nodes needs only a band of old ones: close looks (small Δ) stay affordable.
    reach = _KERNEL_SDS * scale
    for start in range(0, nodes.size, _ROWS):
        z = nodes[start : start + _ROWS]
        first = int(np.searchsorted(centre, z[0] * math.sqrt(t) - reach, side="left"))
        last = int(np.searchsorted(centre, z[-1] * math.sqrt(t) + reach, side="right"))
        if first >= last:
            continue
        x = (z[:, None] * math.sqrt(t) - centre[None, first:last]) / scale
        kernel = np.exp(-0.5 * x * x) * (math.sqrt(t) / (scale * _SQRT_2PI))
        density[start : start + _ROWS] = kernel @ paths.mass[first:last]
    return _Paths(t, nodes, weights * density)


def _check_boundaries(z_boundaries: Sequence[float], looks: int) -> Array:
    try:
        c = np.asarray(z_boundaries, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise SequentialDesignError(f"boundaries must be numbers, not {z_boundaries!r}") from error
    if c.shape != (looks,):
        raise SequentialDesignError(
            f"give one boundary per look: {looks} fractions but {c.size} boundaries"
        )
    if np.any(np.isnan(c)) or np.any(c <= 0.0):
        raise SequentialDesignError(f"|z| boundaries must be positive, not {c.tolist()}")
    return c


def crossing_probabilities(
    fractions: Sequence[float], z_boundaries: Sequence[float], drift: float = 0.0
) -> tuple[float, ...]:
    """Probability of first crossing ``|Z_k| ≥ c_k`` at each look, by numerical integration.

    ``drift`` is ``η = θ·√I_K``, so ``E[Z_k] = η·√t_k`` (0 under H0). The sum is the
    probability of rejecting H0 (the type I error under H0, the power otherwise). Works for any
    boundaries, e.g. the classical Pocock (1977) and O'Brien & Fleming (1979) tests or naive
    repeated testing at 1.96.
    """
    t = _check_fractions(fractions)
    c = _check_boundaries(z_boundaries, t.size)
    if not math.isfinite(drift):
        raise SequentialDesignError(f"the drift must be finite, not {drift!r}")
    return _crossings(t, c, float(drift))


def _crossings(t: Array, c: Array, drift: float) -> tuple[float, ...]:
    paths, probabilities = _START, []
    for k, (tk, ck) in enumerate(zip(t, c, strict=True)):
        probabilities.append(_crossing(paths, float(tk), float(ck), drift))
        if k + 1 < t.size:
            paths = _advance(paths, float(tk), float(ck), drift, float(t[k + 1]))
    return tuple(probabilities)


def _solve_boundary(paths: _Paths, t: float, target: float) -> float:
    """The ``c`` with P₀(no crossing before, |Z(t)| ≥ c) = ``target``."""
    if target <= 0.0:
        return math.inf

    def excess(c: float) -> float:
        return _crossing(paths, t, c, 0.0) - target

    if excess(_LARGEST_BOUNDARY) >= 0.0:
        return math.inf
    return float(brentq(excess, 0.0, _LARGEST_BOUNDARY, xtol=_XTOL))


def drift_for_power(
    fractions: Sequence[float], z_boundaries: Sequence[float], power: float = 0.8
) -> float:
    """The drift ``η = θ·√I_K`` at which the boundaries reject H0 with probability ``power``.

    Solves ``Σ_k P_η(first crossing at k) = power`` (see :func:`crossing_probabilities`) with
    Brent's method. A fixed design (one look at ``t = 1``, boundary ``z_{1−α/2}``) needs
    ``η ≈ z_{1−α/2} + z_{power}``; the ratio of the squares of two drifts is the ratio of the
    maximum information the two designs need (the inflation factor).
    """
    t = _check_fractions(fractions)
    c = _check_boundaries(z_boundaries, t.size)
    if not isinstance(power, int | float) or not 0.0 < power < 1.0:
        raise SequentialDesignError(f"power must lie strictly between 0 and 1, not {power!r}")
    if math.isinf(c[-1]):
        raise SequentialDesignError("the last boundary is infinite: no drift reaches any power")
    if sum(_crossings(t, c, 0.0)) >= power:
        raise SequentialDesignError(
            f"power {power} does not exceed the type I error of these boundaries"
        )
    return _drift_for_power(t, c, float(power))


def _drift_for_power(t: Array, c: Array, power: float) -> float:
    def shortfall(eta: float) -> float:
        return sum(_crossings(t, c, eta)) - power

    # Every path with |Z_K| ≥ c_K rejects H0 (at look K or earlier), so the power is at least
    # Φ(η − c_K): η = c_K + z_{power} is an upper bracket.
    high = float(c[-1]) + float(ndtri(power)) + 0.1
    while shortfall(high) < 0.0:  # only if rounding put the bound just short
        high += 1.0
    return float(brentq(shortfall, 0.0, high, xtol=1e-10))


# -- the public design -----------------------------------------------------------------------


def boundaries(
    fractions: Sequence[float],
    alpha: float = 0.05,
    spending: Spending = "obrien-fleming",
    *,
    power: float | None = 0.8,
) -> SequentialDesign:
    """Two-sided symmetric alpha-spending boundaries at the given information fractions.

    Parameters
    ----------
    fractions
        ``t_1 < t_2 < … ≤ 1``: the information fractions ``I_k / I_K`` of the looks taken so far
        (the actual ones, not the planned ones) and, for planning, of the looks to come. The
        last is below 1 at an interim analysis.
    alpha
        Two-sided type I error of the whole design, ``0 < α < 0.5``; ``α/2`` is spent per side.
    spending
        ``"obrien-fleming"`` or ``"pocock"`` (Lan-DeMets types, see the module docstring).
    power
        Power ``1 − β`` for the inflation factor (``α < power < 1``); ``None`` skips it. The
        inflation factor costs about a dozen more integrations over all looks, which matters
        only for many looks (100 looks: about 3 s with it, a fraction of that without).

    Returns
    -------
    SequentialDesign
        One :class:`Look` per fraction: boundary ``c_k`` solving
        ``P₀(|Z_j| < c_j, j < k; |Z_k| ≥ c_k) = α(t_k) − α(t_{k−1})``, its nominal p-value, and
        the alpha spent; plus the inflation factor ``R = (η_seq/η_fix)²`` when the last fraction
        is 1.

    Examples
    --------
    >>> design = boundaries([0.2, 0.4, 0.6, 0.8, 1.0], 0.05, "obrien-fleming")
    >>> [round(c, 3) for c in design.z_boundaries]
    [4.877, 3.357, 2.68, 2.29, 2.031]
    """
    t = _check_fractions(fractions)
    alpha = _check_alpha(alpha)
    spending = _check_spending(spending)
    if power is not None and (not isinstance(power, int | float) or not alpha < power < 1.0):
        raise SequentialDesignError(
            f"power must lie strictly between alpha ({alpha}) and 1, not {power!r}"
        )
    looks: list[Look] = []
    paths, spent_before = _START, 0.0
    for k, tk in enumerate(map(float, t)):
        spent = _spent(tk, alpha, spending)
        c = _solve_boundary(paths, tk, spent - spent_before)
        looks.append(Look(k + 1, tk, c, float(2.0 * ndtr(-c)), spent, spent - spent_before))
        if k + 1 < t.size:
            paths = _advance(paths, tk, c, 0.0, float(t[k + 1]))
        spent_before = spent
    inflation = None
    if t[-1] == 1.0 and power is not None and math.isfinite(looks[-1].z_boundary):
        c_all = np.array([look.z_boundary for look in looks])
        fixed = _drift_for_power(np.ones(1), np.array([ndtri(1.0 - alpha / 2.0)]), power)
        inflation = (_drift_for_power(t, c_all, power) / fixed) ** 2
    return SequentialDesign(alpha, spending, tuple(looks), power, inflation)


def repeated_confidence_interval(estimate: float, se: float, look: Look) -> RepeatedInterval:
    """Repeated confidence interval ``estimate ± c_k·se`` at ``look`` (Jennison & Turnbull 1989).

    ``estimate`` is the effect at that look and ``se`` its standard error, so that
    ``Z_k = estimate / se``; the interval excludes 0 exactly when ``|Z_k| ≥ c_k``. Unlike the
    naive ``estimate ± 1.96·se``, the intervals of all looks cover the effect simultaneously
    with probability at least ``1 − α``, so they stay valid whenever, and for whatever reason,
    the trial stops.
    """
    if not math.isfinite(estimate):
        raise SequentialDesignError(f"the estimate must be finite, not {estimate!r}")
    if not math.isfinite(se) or se <= 0.0:
        raise SequentialDesignError(f"the standard error must be positive and finite, not {se!r}")
    c = look.z_boundary
    half = math.inf if math.isinf(c) else c * se
    return RepeatedInterval(look.look, estimate, se, c, estimate - half, estimate + half)


def decisions(z_values: Sequence[float], design: SequentialDesign) -> tuple[Decision, ...]:
    """The design's decision at each look, from the observed ``Z_k`` of the looks so far.

    Look ``k`` stops for efficacy when ``|Z_k| ≥ c_k``; otherwise the trial continues, except at
    full information (fraction 1), where it stops without rejecting H0. The first efficacy stop
    is final: a z-value for a later look raises :class:`SequentialDesignError`, because the type
    I error guarantee assumes the trial stopped there.
    """
    try:
        z = [float(value) for value in z_values]
    except (TypeError, ValueError) as error:
        raise SequentialDesignError(f"z-values must be numbers, not {z_values!r}") from error
    if len(z) > len(design.looks):
        raise SequentialDesignError(
            f"{len(z)} z-values but the design has only {len(design.looks)} looks"
        )
    result: list[Decision] = []
    for value, look in zip(z, design.looks, strict=False):
        if not math.isfinite(value):
            raise SequentialDesignError(f"the z-value of look {look.look} is not finite: {value}")
        if result and result[-1] is Decision.STOP_FOR_EFFICACY:
            raise SequentialDesignError(
                f"look {look.look} has a z-value, but the trial crossed the efficacy boundary at "
                f"look {look.look - 1} and should have stopped there"
            )
        if abs(value) >= look.z_boundary:
            result.append(Decision.STOP_FOR_EFFICACY)
        elif look.fraction == 1.0:
            result.append(Decision.STOP_NOT_SIGNIFICANT)
        else:
            result.append(Decision.CONTINUE)
    return tuple(result)
