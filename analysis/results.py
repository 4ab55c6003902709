"""The values of an analysis: estimators make them, the renderers of :mod:`analysis.report` read.

The transparency section, every arm and every pre-registered outcome are checked when a
:class:`Report` is built (``__post_init__``), so no caller, trial file or renderer can leave them
out: a report without them cannot exist.

This module imports no renderer. The estimators' own values (comparisons, checks, flow, power)
are imported for type checking only, so reading a report does not load pandas or scipy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from analysis.transparency import Transparency

if TYPE_CHECKING:
    from analysis.adjust import AdjustedEstimate
    from analysis.checks import Checks
    from analysis.consort import Flow
    from analysis.estimate import Comparison
    from analysis.interim import InterimAnalysis
    from analysis.power import PowerSummary


class IncompleteReport(ValueError):
    """A report would leave out something it must always contain."""


def is_small(value: int | None, threshold: int) -> bool:
    """The small-cell rule: counts 1 … threshold-1 are small (zero is not)."""
    return value is not None and 0 < value < threshold


@dataclass(frozen=True)
class ArmTotal:
    """Analysed visits and successes of one arm for one outcome (kept even if estimation fails)."""

    arm: str
    n: int
    successes: int


@dataclass(frozen=True)
class SubgroupResult:
    """Arm comparison within one level of a pre-registered subgroup variable."""

    dimension: str
    level: str
    confirmatory: bool
    comparison: Comparison | None
    totals: tuple[ArmTotal, ...]
    error: str | None = None

    @property
    def label(self) -> str:
        """``confirmatory (pre-registered)`` or ``exploratory``."""
        return "confirmatory (pre-registered)" if self.confirmatory else "exploratory"

    def small_arms(self, threshold: int) -> frozenset[str]:
        """Arms of this level with a small cell: n, successes or failures in 1 … threshold-1."""
        counts = (
            [(e.arm, e.n, e.successes) for e in self.comparison.arms]
            if self.comparison is not None
            else [(t.arm, t.n, t.successes) for t in self.totals]
        )
        return frozenset(
            arm
            for arm, n, successes in counts
            if any(is_small(v, threshold) for v in (n, successes, n - successes))
        )

    def suppressed_arms(self, threshold: int) -> frozenset[str]:
        """Non-control arms whose comparison with the control must not be published.

        A difference, ratio or p-value is a function of the arm's and the control's counts, so
        with the other counts shown it gives back a count hidden as ``<threshold``. Every
        comparison of this level is withheld when the control has a small cell, and an arm's own
        comparison when the arm has one.
        """
        if self.comparison is None:
            return frozenset()
        small = self.small_arms(threshold)
        control = self.comparison.control
        return frozenset(
            e.arm
            for e in self.comparison.arms
            if not e.is_control and (control in small or e.arm in small)
        )


@dataclass(frozen=True)
class OutcomeResult:
    """Everything estimated for one outcome."""

    id: str
    event: str
    description: str
    primary: bool
    #: ``pre-registered``, ``added after pre-registration`` or ``removed after pre-registration``.
    status: str
    totals: tuple[ArmTotal, ...]
    comparison: Comparison | None
    adjusted: tuple[AdjustedEstimate, ...]
    subgroups: tuple[SubgroupResult, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Options:
    """How the analysis was run (differences from the plan are listed as deviations)."""

    correction: str
    alpha: float
    interval: str
    adjustment: str
    #: The randomized unit when it is a group of visits (cluster-robust CR2 errors), else None.
    cluster: str | None
    small_cell_threshold: int
    source: str
    #: Strata of the randomization: fixed effects of the adjusted estimate, never clusters.
    strata: tuple[str, ...] = ()
    #: Why the adjusted estimate uses these strata and standard errors (the report says it).
    adjustment_reason: str = ""


@dataclass(frozen=True, repr=False)
class Report:
    """The whole analysis of one trial: made by :func:`analysis.analyze`, read by the renderers."""

    trial_id: str
    title: str
    generated_at: datetime
    options: Options
    flow: Flow
    outcomes: tuple[OutcomeResult, ...]
    checks: Checks
    power: PowerSummary
    transparency: Transparency
    warnings: tuple[str, ...] = ()
    #: Looks at a running trial: the sequential plan's decisions, or an unplanned look.
    interim: InterimAnalysis | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.transparency, Transparency):
            raise IncompleteReport("a report always carries its transparency section")
        arms = [arm.id for arm in self.transparency.arms]
        if not arms:
            raise IncompleteReport("the transparency section must describe every arm")
        if [a.arm for a in self.flow.arms] != arms:
            raise IncompleteReport(
                f"the participant flow must list every arm {arms}, "
                f"got {[a.arm for a in self.flow.arms]}"
            )
        registered = self.transparency.preregistration.outcome_ids
        present = [outcome.id for outcome in self.outcomes]
        missing = [oid for oid in registered if oid not in present]
        if missing:
            raise IncompleteReport(f"pre-registered outcomes missing from the report: {missing}")
        if (
            not self.outcomes
            or self.outcomes[0].id != self.transparency.preregistration.primary_outcome
        ):
            raise IncompleteReport("the pre-registered primary outcome must come first")
        for outcome in self.outcomes:
            listed = [total.arm for total in outcome.totals]
            if listed != arms:
                raise IncompleteReport(
                    f"outcome {outcome.id} must list every arm {arms}, got {listed}"
                )
            if outcome.comparison is not None:
                estimated = {estimate.arm for estimate in outcome.comparison.arms}
                if estimated != set(arms):
                    raise IncompleteReport(
                        f"outcome {outcome.id}: estimates for {sorted(estimated)}"
                    )

    @property
    def arm_ids(self) -> list[str]:
        """Every arm of the trial, in the trial's order."""
        return [arm.id for arm in self.transparency.arms]

    @property
    def primary(self) -> OutcomeResult:
        """The pre-registered primary outcome (always first)."""
        return self.outcomes[0]

    def __repr__(self) -> str:
        outcomes = ", ".join(outcome.id for outcome in self.outcomes)
        return (
            f"<Report {self.trial_id}: {self.flow.total.randomized:,} randomized, "
            f"outcomes {outcomes}, generated {self.generated_at.isoformat(timespec='seconds')}>"
        )
