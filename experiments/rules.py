"""Design and ethics rules beyond the schema: each rule returns the problems it finds.

Every rule has an id, a one-line summary (listed in ``docs/trial-format.md``; a test keeps the
two in step) and a test with a trial file that trips it. Errors block ``nudgelab check`` and
``nudgelab trial load``; warnings are printed but do not block.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Literal

from experiments.design import planned_design
from experiments.model import (
    ALLOWED_PLACEHOLDERS,
    DISCLOSURE_ELEMENTS,
    DISCLOSURE_PLACEHOLDERS,
    Trial,
)
from experiments.problems import LineMap, Path, Problem
from experiments.vocabulary import (
    LANGUAGE_NAMES,
    NORM_ELEMENTS,
    REFUSED_IN_HIGH_SENSITIVITY,
    SYSTEM_EVENTS,
)


@dataclass(frozen=True)
class Settings:
    """Thresholds of the check (``nudgelab check --max-age-days ... --max-mde ...``)."""

    today: date
    max_age_days: int = 365
    max_mde_points: float = 5.0
    small_count: int = 10


@dataclass(frozen=True)
class Context:
    trial: Trial
    file: str
    lines: LineMap
    settings: Settings

    def problem(
        self,
        path: Path,
        message: str,
        rule: str,
        severity: Literal["error", "warning"] = "error",
        *,
        key: bool = False,
    ) -> Problem:
        return Problem(self.file, self.lines.line(path, key=key), path, message, severity, rule)


RuleFunction = Callable[[Context], Iterator[Problem]]


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str
    check: RuleFunction


RULES: list[Rule] = []


def rule(rule_id: str, summary: str) -> Callable[[RuleFunction], RuleFunction]:
    """Register a rule function under ``rule_id``."""

    def register(function: RuleFunction) -> RuleFunction:
        RULES.append(Rule(rule_id, summary, function))
        return function

    return register


def _language(code: str) -> str:
    return f"{code} ({LANGUAGE_NAMES[code]})" if code in LANGUAGE_NAMES else repr(code)


# -- arms and allocation --------------------------------------------------------------------


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


# -- languages and texts --------------------------------------------------------------------


@rule("known-languages", "languages are known codes; right-to-left ones are rendered as such")
def _known_languages(ctx: Context) -> Iterator[Problem]:
    for index, language in enumerate(ctx.trial.languages):
        if language not in LANGUAGE_NAMES:
            yield ctx.problem(
                ("languages", index),
                f"unknown language {language!r}; known: {', '.join(sorted(LANGUAGE_NAMES))}",
                "known-languages",
            )


def _texts(trial: Trial) -> Iterator[tuple[Path, str, dict[str, object]]]:
    """Every per-language mapping in the trial: ``(path, what, mapping)``."""
    yield ("disclosure",), "the disclosure", dict(trial.disclosure)
    for i, arm in enumerate(trial.arms):
        yield ("arms", i, "material"), f"arm {arm.id!r}", dict(arm.material)
        for j, claim in enumerate(arm.claims):
            yield (
                ("arms", i, "claims", j, "text"),
                f"claim {j + 1} of arm {arm.id!r}",
                dict(claim.text),
            )
        if arm.messenger:
            yield (
                ("arms", i, "messenger", "role"),
                f"the messenger of arm {arm.id!r}",
                dict(arm.messenger.role),
            )
    for name, figure in trial.figures.items():
        yield ("figures", name, "denominator"), f"figure {name!r}", dict(figure.denominator)
    for k, outcome in enumerate(trial.outcomes):
        if outcome.label is not None:
            yield ("outcomes", k, "label"), f"outcome {outcome.id!r}", dict(outcome.label)


@rule("every-language", "every text exists in every language of the trial, and in no other")
def _every_language(ctx: Context) -> Iterator[Problem]:
    declared = list(dict.fromkeys(ctx.trial.languages))
    for path, what, mapping in _texts(ctx.trial):
        for language in declared:
            if language not in mapping:
                yield ctx.problem(
                    path,
                    f"missing {_language(language)} text for {what}; add a '{language}:' entry",
                    "every-language",
                )
        for language in mapping:
            if language not in declared:
                yield ctx.problem(
                    (*path, language),
                    f"{what} has text in {language!r}, which is not in 'languages'",
                    "every-language",
                    key=True,
                )


def _placeholders(text: str) -> list[str] | None:
    """Field names used as ``{name}`` in ``text``; None when the braces are malformed."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError:
        return None


@rule(
    "disclosure",
    "the disclosure states who runs the trial, its purpose, that it is a study comparing "
    "versions, no effect on the case, how to leave, what is stored, the register and contacts",
)
def _disclosure(ctx: Context) -> Iterator[Problem]:
    for language, texts in ctx.trial.disclosure.items():
        for element in DISCLOSURE_ELEMENTS:
            path = ("disclosure", language, element)
            text = getattr(texts, element)
            names = _placeholders(text)
            if names is None:
                yield ctx.problem(path, "unbalanced '{' or '}'", "disclosure")
                continue
            for required in DISCLOSURE_PLACEHOLDERS.get(element, ()):
                if required not in names:
                    yield ctx.problem(
                        path,
                        f"must contain {{{required}}} so the page shows the trial's own "
                        f"{required.replace('_', ' ')}",
                        "disclosure",
                    )
            for name in names:
                if name not in ALLOWED_PLACEHOLDERS:
                    yield ctx.problem(
                        path,
                        f"unknown placeholder {{{name}}}; use "
                        + ", ".join(f"{{{n}}}" for n in sorted(ALLOWED_PLACEHOLDERS)),
                        "disclosure",
                    )


# -- ethics ---------------------------------------------------------------------------------


@rule(
    "sensitivity",
    "default, opt-out, forced-choice and other strong elements are refused unless the trial "
    "declares domain_sensitivity: low (with a reason)",
)
def _sensitivity(ctx: Context) -> Iterator[Problem]:
    trial = ctx.trial
    if trial.domain_sensitivity == "low":
        if trial.sensitivity_reason is None:
            yield ctx.problem(
                ("domain_sensitivity",),
                "a low-sensitivity trial must say why in 'sensitivity_reason' "
                "(the register shows it)",
                "sensitivity",
            )
        return
    for index, arm in enumerate(trial.arms):
        if arm.element in REFUSED_IN_HIGH_SENSITIVITY:
            yield ctx.problem(
                ("arms", index, "element"),
                f"arm {arm.id!r}: element {arm.element!r} is refused in a high-sensitivity trial "
                "(the default, and every return trial); use gain_frame, loss_frame (factual), "
                "messenger, local_norm, national_norm or salience",
                "sensitivity",
            )
    if trial.sensitivity_reason is not None:
        yield ctx.problem(
            ("sensitivity_reason",),
            "sensitivity_reason applies only to 'domain_sensitivity: low'",
            "sensitivity",
            "warning",
        )


#: Words that turn a loss frame into a threat (ETHICS: factual losses only).
THREAT_WORDS = re.compile(
    r"\b(detention|detain\w*|deport\w*|forced|force|police|arrest\w*|prison|expel\w*|"
    r"bewaring|uitzet\w*|gedwongen|politie|vastzetten|gevangenis|dwang)\b",
    re.IGNORECASE,
)


@rule("loss-frame", "a loss frame states factual losses only: no threats of enforcement")
def _loss_frame(ctx: Context) -> Iterator[Problem]:
    for index, arm in enumerate(ctx.trial.arms):
        if arm.element != "loss_frame":
            continue
        for language, material in arm.material.items():
            match = THREAT_WORDS.search(f"{material.title}\n{material.body}")
            if match:
                yield ctx.problem(
                    ("arms", index, "material", language),
                    f"arm {arm.id!r}: the loss frame mentions {match.group(0)!r}; a loss frame "
                    "may state factual losses (e.g. a scheme's end date), never threats of "
                    "enforcement or detention",
                    "loss-frame",
                )


@rule(
    "norm-figures",
    "every norm arm shows a figure with source, date, denominator and a value of at least the "
    "small-count threshold for every location",
)
def _norm_figures(ctx: Context) -> Iterator[Problem]:
    trial = ctx.trial
    locations = trial.location_ids
    for index, arm in enumerate(trial.arms):
        path: Path = ("arms", index)
        if arm.element in NORM_ELEMENTS and arm.figure is None:
            yield ctx.problem(
                path,
                f"arm {arm.id!r}: a {arm.element} arm must name its number in 'figure:' "
                "(a key of 'figures' with source, as_of and a value per location)",
                "norm-figures",
            )
        if arm.figure is not None and arm.figure not in trial.figures:
            known = ", ".join(sorted(trial.figures)) or "none declared"
            yield ctx.problem(
                (*path, "figure"),
                f"arm {arm.id!r}: figure {arm.figure!r} is not declared in 'figures' ({known})",
                "norm-figures",
            )
        for language, material in arm.material.items():
            names = _placeholders(material.body)
            body_path = (*path, "material", language, "body")
            if names is None:
                yield ctx.problem(body_path, "unbalanced '{' or '}'", "norm-figures")
                continue
            if arm.figure is not None and "figure" not in names:
                yield ctx.problem(
                    body_path,
                    "the body must show the number with the placeholder {figure}",
                    "norm-figures",
                )
            for name in names:
                if name != "figure" or arm.figure is None:
                    yield ctx.problem(
                        body_path,
                        f"placeholder {{{name}}} cannot be filled; only {{figure}} is allowed, "
                        "and only in an arm with a 'figure'",
                        "norm-figures",
                    )
    for name, figure in trial.figures.items():
        for location in locations:
            if location not in figure.values:
                yield ctx.problem(
                    ("figures", name, "values"),
                    f"figure {name!r} has no value for location {location!r}",
                    "norm-figures",
                )
        for location, value in figure.values.items():
            if location not in locations:
                yield ctx.problem(
                    ("figures", name, "values", location),
                    f"figure {name!r}: {location!r} is not one of the trial's locations",
                    "norm-figures",
                    key=True,
                )
            elif value < ctx.settings.small_count:
                yield ctx.problem(
                    ("figures", name, "values", location),
                    f"figure {name!r}: {value} at {location!r} is below the small-count "
                    f"threshold of {ctx.settings.small_count}; a small number can single people "
                    "out and is not a robust norm",
                    "norm-figures",
                )


@rule("sourced-numbers", "every number in a material comes from a sourced claim or figure")
def _sourced_numbers(ctx: Context) -> Iterator[Problem]:
    for index, arm in enumerate(ctx.trial.arms):
        for language, material in arm.material.items():
            claimed = " ".join(claim.text.get(language, "") for claim in arm.claims)
            backed = set(re.findall(r"\d+", claimed))
            for number in re.findall(r"\d+", f"{material.title} {material.body}"):
                if number not in backed:
                    yield ctx.problem(
                        ("arms", index, "material", language),
                        f"arm {arm.id!r}: the number {number} is not backed by a claim of this "
                        "arm; add a claim (text, source, as_of) stating it, or show it through a "
                        "figure",
                        "sourced-numbers",
                    )
                    break


def _dated(ctx: Context) -> Iterator[tuple[Path, str, date]]:
    for i, arm in enumerate(ctx.trial.arms):
        for j, claim in enumerate(arm.claims):
            yield ("arms", i, "claims", j, "as_of"), f"claim {j + 1} of arm {arm.id!r}", claim.as_of
    for name, figure in ctx.trial.figures.items():
        yield ("figures", name, "as_of"), f"figure {name!r}", figure.as_of


@rule("fresh-sources", "claims and figures are dated, not in the future and not too old")
def _fresh_sources(ctx: Context) -> Iterator[Problem]:
    today = ctx.settings.today
    for path, what, as_of in _dated(ctx):
        age = (today - as_of).days
        if age < 0:
            yield ctx.problem(path, f"{what}: as_of {as_of} is in the future", "fresh-sources")
        elif age > ctx.settings.max_age_days:
            yield ctx.problem(
                path,
                f"{what}: as_of {as_of} is {age} days old (more than {ctx.settings.max_age_days}); "
                "check the source again and update the date",
                "fresh-sources",
                "warning",
            )


@rule("messenger", "a messenger arm names a real person who consented, with their role")
def _messenger(ctx: Context) -> Iterator[Problem]:
    for index, arm in enumerate(ctx.trial.arms):
        if arm.element == "messenger":
            if arm.messenger is None:
                yield ctx.problem(
                    ("arms", index),
                    f"arm {arm.id!r}: a messenger arm must declare 'messenger' (name, role per "
                    "language, real_person, consent_recorded)",
                    "messenger",
                )
            elif not (arm.messenger.real_person and arm.messenger.consent_recorded):
                yield ctx.problem(
                    ("arms", index, "messenger"),
                    f"arm {arm.id!r}: the messenger must be a real person (no actor presented "
                    "as a returnee) whose consent is recorded",
                    "messenger",
                )
        elif arm.messenger is not None:
            yield ctx.problem(
                ("arms", index, "messenger"),
                f"arm {arm.id!r}: 'messenger' is used only by messenger arms",
                "messenger",
                "warning",
            )


# -- outcomes, plan and schedule ------------------------------------------------------------


@rule("outcomes", "exactly one primary outcome; outcome events do not reuse system events")
def _outcomes(ctx: Context) -> Iterator[Problem]:
    primaries = [outcome.id for outcome in ctx.trial.outcomes if outcome.primary]
    if len(primaries) != 1:
        found = ", ".join(primaries) or "none"
        index = [o.id for o in ctx.trial.outcomes].index(primaries[1]) if primaries else None
        where: Path = ("outcomes", index, "primary") if index is not None else ("outcomes",)
        yield ctx.problem(
            where, f"exactly one outcome must have 'primary: true' (found {found})", "outcomes"
        )
    for index, outcome in enumerate(ctx.trial.outcomes):
        if outcome.event in SYSTEM_EVENTS:
            yield ctx.problem(
                ("outcomes", index, "event"),
                f"{outcome.event!r} is logged by the platform itself; name the outcome's event "
                "differently",
                "outcomes",
            )


@rule("analysis-plan", "hypotheses refer to declared arms and outcomes; subgroups are coherent")
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


def run_rules(trial: Trial, file: str, lines: LineMap, settings: Settings) -> list[Problem]:
    """Run every rule and return all problems found."""
    context = Context(trial, file, lines, settings)
    problems: list[Problem] = []
    for registered in RULES:
        problems.extend(registered.check(context))
    return problems


def rule_ids() -> list[str]:
    return [registered.id for registered in RULES]


def duplicated_rule_ids() -> list[str]:
    return [rule_id for rule_id, count in Counter(rule_ids()).items() if count > 1]
