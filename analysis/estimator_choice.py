"""Which covariate-adjusted estimator the trial's randomization calls for, and why.

The rule (docs/statistics.md, "Adjusted estimates follow the design"): what was randomized
decides the standard errors, how it was randomized decides the covariates.

- The randomized unit is a **visit** (every nudgelab trial today): locations and languages are
  strata or pre-treatment covariates, never clusters. A block design's strata become one
  stratum covariate (their level combinations); Lin's (2013) interacted regression with HC2
  standard errors estimates the effects (:func:`analysis.adjust.adjusted_effects`).
- The randomized unit is a **group of visits** (a trial that randomizes, say, kiosk-days; the
  trial model would need ``randomization.unit: kiosk_day`` and the counts a ``kiosk_day``
  column): the same regression with CR2 standard errors clustered by that unit and
  Bell-McCaffrey degrees of freedom (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018).

Cluster-robust errors by location treat the location's visits as if they had been assigned
together. They were assigned one by one, so those errors estimate the variance of a design that
was not run; with few, unequal locations they are also far too small (a 3-location A/A
simulation rejects 14% of the time at 5%: tests/analysis/test_adjust_calibration.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AdjustmentPlan", "choose_adjustment"]


class RandomizationLike(Protocol):
    """What the choice reads of :class:`experiments.model.Randomization`."""

    @property
    def method(self) -> str: ...

    @property
    def strata(self) -> Sequence[str]: ...

    @property
    def unit(self) -> str: ...


@dataclass(frozen=True)
class AdjustmentPlan:
    """The adjusted estimator's design: strata (fixed effects), cluster (or none) and why."""

    strata: tuple[str, ...]
    cluster: str | None
    reason: str


def choose_adjustment(randomization: RandomizationLike) -> AdjustmentPlan:
    """Strata, cluster and the reason, from the trial's ``randomization`` block.

    >>> from types import SimpleNamespace as R
    >>> choose_adjustment(R(method="block", strata=["location"], unit="visit")).cluster is None
    True
    >>> choose_adjustment(R(method="block", strata=["location"], unit="kiosk_day")).cluster
    'kiosk_day'
    """
    strata = tuple(randomization.strata) if randomization.method == "block" else ()
    if randomization.unit != "visit":
        unit = randomization.unit
        return AdjustmentPlan(
            strata,
            unit,
            f"the randomized unit is the {unit}, a group of visits assigned together, so the "
            f"standard errors are clustered by {unit}"
            + (f"; {_stratum(strata)} of the randomization" if strata else ""),
        )
    if strata:
        return AdjustmentPlan(
            strata,
            None,
            f"visits are randomized individually, in blocks within each {' × '.join(strata)}, "
            f"so {_stratum(strata)} of the randomization, not "
            f"{'a cluster' if len(strata) == 1 else 'clusters'}",
        )
    return AdjustmentPlan(
        (),
        None,
        f"visits are randomized individually ({randomization.method} randomization, no "
        "strata), so location and language are pre-treatment covariates, not clusters",
    )


def _listed(names: Sequence[str]) -> str:
    return " and ".join(names)


def _stratum(names: Sequence[str]) -> str:
    """``location is a stratum`` or ``location and language are strata``."""
    return f"{_listed(names)} {'is a stratum' if len(names) == 1 else 'are strata'}"
