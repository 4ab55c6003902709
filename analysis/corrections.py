"""Adjusting p-values across the arms of a trial (each arm against control is one test).

Methods are named strings from a closed set, as in the pre-registration:

- ``"holm"``: Holm (1979) step-down, controls the family-wise error rate (FWER);
- ``"bonferroni"``: ``min(1, m·p)``, controls the FWER (more conservative than Holm);
- ``"bh"``: Benjamini & Hochberg (1995) step-up, controls the false discovery rate;
- ``"none"``: the raw p-values.

Note: statsmodels' ``multipletests`` defaults to Holm–Šidák (``"holm-sidak"``), not Holm. Our
names map onto its ``"holm"``, ``"bonferroni"`` and ``"fdr_bh"``; the tests compare with those.

Each correction also has its family-level intervals (:func:`family_interval_level`): the
interval a reader should set beside the corrected decision.

References: Holm S (1979) Scand J Stat 6:65–70. Benjamini Y, Hochberg Y (1995) J R Stat Soc B
57:289–300. Benjamini Y, Yekutieli D (2005) False discovery rate-adjusted multiple confidence
intervals for selected parameters. J Am Stat Assoc 100:71–81. Strassburger K, Bretz F (2008)
Compatible simultaneous lower confidence bounds for the Holm procedure and other Bonferroni-based
closed tests. Stat Med 27:4914–4927.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

Correction = Literal["holm", "bonferroni", "bh", "none"]
CORRECTIONS: tuple[str, ...] = get_args(Correction)

CORRECTION_NAMES: dict[str, str] = {
    "holm": "Holm",
    "bonferroni": "Bonferroni",
    "bh": "Benjamini–Hochberg",
    "none": "none",
}

#: What each correction controls, in words.
CONTROLS: dict[str, str] = {
    "holm": "family-wise error rate",
    "bonferroni": "family-wise error rate",
    "bh": "false discovery rate",
    "none": "nothing (each comparison at its own level)",
}

FamilyMethod = Literal["bonferroni", "benjamini-yekutieli"]


@dataclass(frozen=True)
class FamilyLevel:
    """The family-level intervals that go with a correction.

    ``alpha`` is the per-interval error of each family-level interval (its level is
    ``1 − alpha``); ``None`` when the correction has none (``none``, an empty family, or BH with
    nothing selected). ``selected_only`` is true for BH: only the selected comparisons get one.
    """

    method: FamilyMethod | None
    alpha: float | None
    family_size: int
    selected_only: bool = False

    @property
    def level(self) -> float | None:
        """The confidence level ``1 − alpha`` of each family-level interval."""
        return None if self.alpha is None else 1.0 - self.alpha


def adjust_p_values(
    p_values: Sequence[float | None], method: Correction
) -> tuple[float | None, ...]:
    """Adjusted p-values in the input order.

    ``None`` or NaN entries (arms that could not be tested) are left out of the family and come
    back as ``None``; ``m`` is the number of testable p-values. With ``p₍₁₎ ≤ … ≤ p₍ₘ₎``:

    - Holm: ``p̃₍ᵢ₎ = max_{j ≤ i} min(1, (m − j + 1)·p₍ⱼ₎)``;
    - Bonferroni: ``p̃ᵢ = min(1, m·pᵢ)``;
    - Benjamini–Hochberg: ``p̃₍ᵢ₎ = min_{j ≥ i} min(1, m·p₍ⱼ₎ / j)``.
    """
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; choose one of {', '.join(CORRECTIONS)}")
    present = [(i, float(p)) for i, p in enumerate(p_values) if p is not None and not math.isnan(p)]
    for _, p in present:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p-value {p} is outside [0, 1]")
    adjusted: list[float | None] = [None] * len(p_values)
    m = len(present)
    if m == 0:
        return tuple(adjusted)
    order = sorted(present, key=lambda item: item[1])
    if method == "none":
        values = [p for _, p in order]
    elif method == "bonferroni":
        values = [min(1.0, m * p) for _, p in order]
    elif method == "holm":
        values, running = [], 0.0
        for rank, (_, p) in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p))
            values.append(running)
    else:  # "bh"
        values, running = [0.0] * m, 1.0
        for rank in range(m - 1, -1, -1):
            # p·(m/j) rather than m·p/j: m/j ≥ 1 holds exactly in floating point, so p̃ ≥ p.
            running = min(running, order[rank][1] * (m / (rank + 1)))
            values[rank] = running
    for (index, _), value in zip(order, values, strict=True):
        adjusted[index] = value
    return tuple(adjusted)


def level_text(level: float) -> str:
    """A confidence level in percent with at most two decimals: 95%, 97.5%, 98.33%."""
    return f"{level * 100:.2f}".rstrip("0").rstrip(".") + "%"


def family_interval_level(
    correction: Correction, alpha: float, family_size: int, selected: int = 0
) -> FamilyLevel:
    """The level of the intervals that match a correction's decisions, for ``m`` comparisons.

    - Bonferroni and Holm: each interval at ``1 − α/m``. Together they cover all ``m``
      differences with probability ``≥ 1 − α`` (Bonferroni's inequality), and a Bonferroni
      interval excludes 0 exactly when the Bonferroni test rejects (for an interval that inverts
      the test). Holm rejects at least as much as Bonferroni, so an arm can be Holm-significant
      while its Bonferroni interval still touches 0: Holm has no simple compatible intervals;
      those of Strassburger & Bretz (2008) give a rejected comparison only the bound 0 unless
      every hypothesis is rejected. The Bonferroni interval is the standard conservative
      companion.
    - Benjamini–Hochberg: the FCR-adjusted intervals of Benjamini & Yekutieli (2005): the ``R``
      comparisons BH selects (``selected``) each get a ``1 − R·α/m`` interval, and the expected
      share of non-covering intervals among them is at most ``α``. Comparisons BH does not
      select get none (the method makes no statement about them); with ``R = 0`` none at all.
    - ``none``: no family-level interval.
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha}")
    if not 0 <= selected <= family_size:
        raise ValueError(f"selected ({selected}) must lie between 0 and the family size")
    if correction == "none" or family_size == 0:
        return FamilyLevel(None, None, family_size)
    if correction == "bh":
        if selected == 0:
            return FamilyLevel("benjamini-yekutieli", None, family_size, selected_only=True)
        return FamilyLevel(
            "benjamini-yekutieli", selected * alpha / family_size, family_size, selected_only=True
        )
    return FamilyLevel("bonferroni", alpha / family_size, family_size)
