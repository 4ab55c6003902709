"""Per-outcome estimates for the report: unadjusted, covariate-adjusted and by subgroup.

Works on the cell counts only. Unadjusted comparisons come from
:func:`analysis.estimate.compare_arms`, adjusted ones from
:func:`analysis.adjust.adjusted_effects`. Failures become warnings on the result (the arm
totals are always kept), never an exception in the middle of a report.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.adjust import AdjustedEstimate, adjusted_effects
from analysis.counts import Counts, OutcomeSpec, outcome_column
from analysis.estimate import ArmCounts, Comparison, compare_arms
from analysis.results import ArmTotal, Options, OutcomeResult, SubgroupResult
from analysis.transparency import in_report_language
from experiments.model import Trial

ESTIMATION_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError)


def arm_totals(
    counts: Counts, spec: OutcomeSpec, arms: Sequence[str], where: dict[str, str] | None = None
) -> tuple[ArmTotal, ...]:
    """Analysed visits (randomized minus opted out) and successes per arm."""
    by_arm = counts.by("arm", where=where)
    column = outcome_column(spec.id)
    totals = []
    for arm in arms:
        if arm in by_arm.index:
            row = by_arm.loc[arm]
            totals.append(ArmTotal(arm, int(row["n"] - row["opted_out"]), int(row[column])))
        else:
            totals.append(ArmTotal(arm, 0, 0))
    return tuple(totals)


def compare(
    totals: Sequence[ArmTotal], control: str, options: Options
) -> tuple[Comparison | None, str | None]:
    """``compare_arms`` on the totals; ``(None, reason)`` when it cannot be computed."""
    try:
        comparison = compare_arms(
            [ArmCounts(t.arm, t.n, t.successes) for t in totals],
            control,
            correction=options.correction,
            alpha=options.alpha,
            interval=options.interval,
        )
    except ESTIMATION_ERRORS as error:
        return None, f"not estimable: {error}"
    return comparison, None


def adjust_data(counts: Counts, spec: OutcomeSpec) -> pd.DataFrame:
    """Analysed visits and successes per arm × location × language (the adjustment's input)."""
    table = counts.by("arm", "location", "language").reset_index()
    return pd.DataFrame(
        {
            "arm": table["arm"],
            "location": table["location"],
            "language": table["language"],
            "n": table["n"] - table["opted_out"],
            "successes": table[outcome_column(spec.id)],
        }
    )


def adjusted(
    counts: Counts,
    spec: OutcomeSpec,
    control: str,
    options: Options,
    arms: Sequence[str] = (),
) -> tuple[tuple[AdjustedEstimate, ...], list[str]]:
    """Covariate-adjusted effects that follow the design (:mod:`analysis.estimator_choice`).

    Location and language, where they vary, are adjusted for: those among the randomization's
    strata (``options.strata``) as one stratum covariate, the others each as a covariate. Lin's
    interacted regression with HC2 errors for ``"lpm"`` (CR2 clustered by ``options.cluster``
    when the randomized unit is a group of visits); additive fixed effects for ``"logit"``.
    """
    data = adjust_data(counts, spec)
    data = data[data["n"] > 0]
    varying = tuple(c for c in ("location", "language") if len(set(data[c]) - {"*"}) > 1)
    strata = tuple(c for c in options.strata if c in varying)
    try:
        estimates = adjusted_effects(
            data,
            spec.id,
            control,
            covariates=tuple(c for c in varying if c not in strata),
            strata=strata,
            cluster=options.cluster,
            model=options.adjustment,
            alpha=options.alpha,
        )
    except ESTIMATION_ERRORS as error:
        return (), [f"covariate-adjusted estimate for {spec.id} not computed: {error}"]
    order = {arm: i for i, arm in enumerate(arms)}
    return tuple(sorted(estimates, key=lambda e: order.get(e.arm, len(order)))), []


def subgroups(
    counts: Counts,
    spec: OutcomeSpec,
    arms: Sequence[str],
    preregistered: Trial,
    options: Options,
) -> tuple[SubgroupResult, ...]:
    """Pre-registered subgroups: each level of each subgroup variable, arms vs control."""
    results = []
    plan = preregistered.analysis
    control = preregistered.control_arm.id
    for dimension in plan.subgroups:
        levels = sorted(set(counts.cells[dimension]) - {"*"})
        for level in levels:
            totals = arm_totals(counts, spec, arms, where={dimension: level})
            comparison, error = compare(totals, control, options)
            results.append(
                SubgroupResult(
                    dimension,
                    level,
                    dimension in plan.confirmatory_subgroups,
                    comparison,
                    totals,
                    error,
                )
            )
    return tuple(results)


def estimate_outcome(
    counts: Counts,
    spec: OutcomeSpec,
    arms: Sequence[str],
    preregistered: Trial,
    options: Options,
    *,
    status: str,
    suppressed: Sequence[str] = (),
) -> OutcomeResult:
    """Everything the report shows for one outcome (as the pre-registered trial defines it)."""
    control = preregistered.control_arm.id
    primary = spec.id == preregistered.primary_outcome.id
    totals = arm_totals(counts, spec, arms)
    warnings: list[str] = []
    described = {o.id: in_report_language(o.description) for o in preregistered.outcomes}
    description = described.get(spec.id, f"Outcome {spec.id}.")
    if suppressed:
        warnings.append(
            f"{spec.id}: counts of arms {', '.join(suppressed)} were suppressed in the export "
            "(small cells), so no estimate is computed"
        )
        return OutcomeResult(
            spec.id,
            spec.event,
            description,
            primary,
            status,
            totals,
            None,
            (),
            (),
            tuple(warnings),
        )
    comparison, error = compare(totals, control, options)
    if error:
        warnings.append(f"{spec.id}: {error}")
    fitted: tuple[AdjustedEstimate, ...] = ()
    if comparison is not None:
        fitted, notes = adjusted(counts, spec, control, options, arms)
        warnings += notes
    return OutcomeResult(
        spec.id,
        spec.event,
        description,
        primary,
        status,
        totals,
        comparison,
        fitted,
        subgroups(counts, spec, arms, preregistered, options) if comparison is not None else (),
        tuple(warnings),
    )
