"""Rules on outcomes, the analysis plan, power and the schedule."""

from __future__ import annotations

import math
from collections.abc import Iterator

from experiments.design import planned_design
from experiments.model import MAX_INTERIM_LOOKS, InterimPlan
from experiments.problems import Path, Problem
from experiments.rules.registry import Context, rule
from experiments.vocabulary import (
    SYSTEM_EVENTS,
)


@rule("outcomes", "exactly one primary outcome; outcome events do not reuse system events")
def _outcomes(ctx: Context) -> Iterator[Problem]:
    primaries = [outcome.id for outcome in ctx.trial.outcomes if outcome.primary]
    if len(primaries) != 1:
        found = ", ".join(primaries) or "none"
        index = [o.id for o in ctx.trial.outcomes].index(primaries[1]) if primaries else None
        where: Path = ("outcomes", index, "primary") if index is not None else ("outcomes",)
        yield ctx.problem(
            where,
            f"exactly one outcome must have 'primary: true' (found {found}); the primary "
            "outcome is fixed before the trial starts "
            "(see docs/ethics.md#statistics-that-must-be-stated)",
            "outcomes",
        )
    for index, outcome in enumerate(ctx.trial.outcomes):
        if outcome.event in SYSTEM_EVENTS:
            yield ctx.problem(
                ("outcomes", index, "event"),
                f"{outcome.event!r} is logged by the platform itself; name the outcome's event "
                "differently",
                "outcomes",
            )


@rule(
    "analysis-plan",
    "hypotheses refer to declared arms and outcomes; subgroups are coherent; interim looks "
    "increase to the planned sample size",
)
def _analysis_plan(ctx: Context) -> Iterator[Problem]:
    trial = ctx.trial
    arms = {arm.id: arm for arm in trial.arms}
    outcomes = {outcome.id for outcome in trial.outcomes}
    for index, hypothesis in enumerate(trial.analysis.hypotheses):
        path = ("analysis", "hypotheses", index)
        if hypothesis.arm is not None:
            if hypothesis.arm not in arms:
                yield ctx.problem(
                    (*path, "arm"), f"no arm called {hypothesis.arm!r}", "analysis-plan"
                )
            elif arms[hypothesis.arm].control:
                yield ctx.problem(
                    (*path, "arm"),
                    "a hypothesis compares a treatment arm with the control; name a treatment arm",
                    "analysis-plan",
                )
        if hypothesis.outcome is not None and hypothesis.outcome not in outcomes:
            yield ctx.problem(
                (*path, "outcome"), f"no outcome called {hypothesis.outcome!r}", "analysis-plan"
            )
        if hypothesis.direction != "two_sided":
            yield ctx.problem(
                (*path, "direction"),
                f"'{hypothesis.direction}' records the expected direction only: nudgelab tests "
                "every hypothesis two-sided (p-values and intervals); write 'two_sided' unless "
                "you mean just that",
                "analysis-plan",
                "warning",
            )
    plan = trial.analysis
    for index, subgroup in enumerate(plan.confirmatory_subgroups):
        if subgroup not in plan.subgroups:
            yield ctx.problem(
                ("analysis", "confirmatory_subgroups", index),
                f"{subgroup!r} is confirmatory but not listed in 'subgroups'",
                "analysis-plan",
            )
    if "location" in plan.subgroups and len(trial.locations) < 2:
        yield ctx.problem(
            ("analysis", "subgroups"),
            "a subgroup analysis by location needs at least two locations",
            "analysis-plan",
            "warning",
        )
    if plan.interim is not None:
        yield from _interim(ctx, plan.interim)


_INTERIM: Path = ("analysis", "interim")


def _interim(ctx: Context, interim: InterimPlan) -> Iterator[Problem]:
    """The interim looks: one way of giving them, increasing, at most 20, the last at the end."""
    plan = ctx.trial.analysis
    if (interim.fractions is None) == (interim.visits is None):
        yield ctx.problem(
            _INTERIM,
            "give the interim looks either as 'fractions' (of the planned sample size) or as "
            "'visits' (randomized visits at each look), exactly one of the two",
            "analysis-plan",
            key=True,
        )
        return
    key = "fractions" if interim.fractions is not None else "visits"
    looks: list[float] = list(interim.fractions or interim.visits or [])
    path: Path = (*_INTERIM, key)
    if not looks:
        yield ctx.problem(path, "list at least one look", "analysis-plan")
        return
    if len(looks) > MAX_INTERIM_LOOKS:
        yield ctx.problem(
            path,
            f"{len(looks)} looks; at most {MAX_INTERIM_LOOKS} are allowed (each look costs "
            "power; plan fewer, further apart)",
            "analysis-plan",
        )
    for index in range(1, len(looks)):
        if looks[index] <= looks[index - 1]:
            yield ctx.problem(
                (*path, index),
                f"look {index + 1} ({looks[index]:g}) does not come after look {index} "
                f"({looks[index - 1]:g}); list the looks in increasing order",
                "analysis-plan",
            )
    end = 1.0 if key == "fractions" else plan.planned_sample_size
    if looks[-1] != end:
        what = (
            "1 (the full planned sample size)"
            if key == "fractions"
            else f"planned_sample_size ({plan.planned_sample_size})"
        )
        yield ctx.problem(
            (*path, len(looks) - 1),
            f"the last look ({looks[-1]:g}) must be the final analysis at {what}",
            "analysis-plan",
        )
    if len(looks) == 1:
        yield ctx.problem(
            path,
            "a single look at the end is the fixed design: no interim look is planned; remove "
            "'interim' or add earlier looks",
            "analysis-plan",
            "warning",
        )
    if plan.correction == "bh":
        yield ctx.problem(
            ("analysis", "correction"),
            "with interim looks the comparisons are tested by the group-sequential Holm "
            "procedure, which controls the family-wise error and hence the false discovery "
            "rate; Benjamini-Hochberg is used only for the fixed-design p-values",
            "analysis-plan",
            "warning",
        )


@rule("power", "the minimum detectable effect at the planned sample size is not too large")
def _power(ctx: Context) -> Iterator[Problem]:
    if sum(1 for arm in ctx.trial.arms if arm.control) != 1:
        return
    if any(arm.weight <= 0 for arm in ctx.trial.arms):
        return
    for design in planned_design(ctx.trial):
        points = design.mde * 100
        if math.isnan(points) or points > ctx.settings.max_mde_points:
            shown = "no effect is detectable" if math.isnan(points) else f"{points:.1f} pp"
            yield ctx.problem(
                ("analysis", "planned_sample_size"),
                f"arm {design.arm!r}: minimum detectable effect {shown} is larger than "
                f"{ctx.settings.max_mde_points:g} pp; plan more visits or fewer arms",
                "power",
                "warning",
            )


@rule("schedule", "the schedule ends after it starts")
def _schedule(ctx: Context) -> Iterator[Problem]:
    schedule = ctx.trial.schedule
    if schedule.end <= schedule.start:
        yield ctx.problem(
            ("schedule", "end"),
            f"end {schedule.end} is not after start {schedule.start}",
            "schedule",
        )
