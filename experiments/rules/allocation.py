"""Rules on arms and allocation: one control, unique ids, weights, block size."""

from __future__ import annotations

from collections.abc import Iterator

from experiments.problems import Path, Problem
from experiments.rules.registry import Context, rule


@rule("one-control", "exactly one arm is the control, and only it uses the element 'control'")
def _one_control(ctx: Context) -> Iterator[Problem]:
    controls = [i for i, arm in enumerate(ctx.trial.arms) if arm.control]
    if len(controls) != 1:
        found = "none" if not controls else ", ".join(ctx.trial.arms[i].id for i in controls)
        where: Path = ("arms", controls[1], "control") if controls else ("arms",)
        yield ctx.problem(
            where, f"exactly one arm must have 'control: true' (found {found})", "one-control"
        )
    for index, arm in enumerate(ctx.trial.arms):
        if arm.control != (arm.element == "control"):
            yield ctx.problem(
                ("arms", index, "element"),
                f"arm {arm.id!r}: the control arm uses element 'control' and no other arm does",
                "one-control",
            )


@rule("unique-ids", "arm, location, outcome and outcome-event ids are unique")
def _unique_ids(ctx: Context) -> Iterator[Problem]:
    collections: list[tuple[str, list[str]]] = [
        ("arms", [arm.id for arm in ctx.trial.arms]),
        ("locations", [location.id for location in ctx.trial.locations]),
        ("outcomes", [outcome.id for outcome in ctx.trial.outcomes]),
    ]
    for name, ids in collections:
        for index, value in enumerate(ids):
            if value in ids[:index]:
                yield ctx.problem((name, index, "id"), f"duplicate id {value!r}", "unique-ids")
    events = [outcome.event for outcome in ctx.trial.outcomes]
    for index, value in enumerate(events):
        if value in events[:index]:
            yield ctx.problem(
                ("outcomes", index, "event"),
                f"event {value!r} is already used by another outcome",
                "unique-ids",
            )
    for index, language in enumerate(ctx.trial.languages):
        if language in ctx.trial.languages[:index]:
            yield ctx.problem(("languages", index), f"{language!r} is listed twice", "unique-ids")


@rule("positive-weights", "every arm's allocation weight is a positive integer")
def _positive_weights(ctx: Context) -> Iterator[Problem]:
    for index, arm in enumerate(ctx.trial.arms):
        if arm.weight <= 0:
            yield ctx.problem(
                ("arms", index, "weight"),
                f"arm {arm.id!r}: weight must be a positive integer (got {arm.weight})",
                "positive-weights",
            )


@rule("block-size", "block randomization: block_size is a multiple of the sum of the weights")
def _block_size(ctx: Context) -> Iterator[Problem]:
    randomization = ctx.trial.randomization
    total = sum(arm.weight for arm in ctx.trial.arms)
    if total <= 0:
        return
    if randomization.method == "block":
        size = randomization.block_size
        if size is None:
            yield ctx.problem(
                ("randomization",),
                f"block randomization needs 'block_size' (a multiple of {total}, the sum of the "
                "arms' weights)",
                "block-size",
            )
        elif size % total:
            suggestion = max(total, round(size / total) * total)
            yield ctx.problem(
                ("randomization", "block_size"),
                f"block_size {size} is not a multiple of {total} (the sum of the arms' weights); "
                f"use e.g. {suggestion}",
                "block-size",
            )
    elif randomization.block_size is not None:
        yield ctx.problem(
            ("randomization", "block_size"),
            f"block_size is ignored by method {randomization.method!r}; remove it",
            "block-size",
            "warning",
        )
    if randomization.salt is not None and randomization.method != "hash":
        yield ctx.problem(
            ("randomization", "salt"),
            "salt is used only by method 'hash'; remove it",
            "block-size",
            "warning",
        )
