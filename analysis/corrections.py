"""Adjusting p-values across the arms of a trial (each arm against control is one test).

Methods are named strings from a closed set, as in the pre-registration:

- ``"holm"``: Holm (1979) step-down, controls the family-wise error rate (FWER);
- ``"bonferroni"``: ``min(1, m·p)``, controls the FWER (more conservative than Holm);
- ``"bh"``: Benjamini & Hochberg (1995) step-up, controls the false discovery rate;
- ``"none"``: the raw p-values.

Note: statsmodels' ``multipletests`` defaults to Holm–Šidák (``"holm-sidak"``), not Holm. Our
names map onto its ``"holm"``, ``"bonferroni"`` and ``"fdr_bh"``; the tests compare with those.

References: Holm S (1979) Scand J Stat 6:65–70. Benjamini Y, Hochberg Y (1995) J R Stat Soc B
57:289–300.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

Correction = Literal["holm", "bonferroni", "bh", "none"]
CORRECTIONS: tuple[str, ...] = get_args(Correction)

CORRECTION_NAMES: dict[str, str] = {
    "holm": "Holm",
    "bonferroni": "Bonferroni",
    "bh": "Benjamini–Hochberg",
    "none": "none",
}


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
