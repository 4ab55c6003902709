"""Ethics rules: allowed elements, facts and figures, messengers, what events may record."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

from experiments.problems import Path, Problem
from experiments.rules.registry import Context, rule
from experiments.rules.texts import placeholders
from experiments.vocabulary import (
    NORM_ELEMENTS,
    REFUSED_IN_HIGH_SENSITIVITY,
)


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
                "(the register shows it; see docs/ethics.md#low-sensitivity-trials)",
                "sensitivity",
            )
        return
    for index, arm in enumerate(trial.arms):
        if arm.element in REFUSED_IN_HIGH_SENSITIVITY:
            yield ctx.problem(
                ("arms", index, "element"),
                f"arm {arm.id!r}: element {arm.element!r} is refused in a high-sensitivity trial "
                "(the default, and every return trial); use gain_frame, loss_frame (factual), "
                "messenger, local_norm, national_norm or salience "
                "(see docs/ethics.md#nudge-elements)",
                "sensitivity",
            )
    if trial.sensitivity_reason is not None:
        yield ctx.problem(
            ("sensitivity_reason",),
            "sensitivity_reason applies only to 'domain_sensitivity: low'",
            "sensitivity",
            "warning",
        )


#: Words that turn a loss frame into a threat: a loss frame states factual losses only
#: (docs/ethics.md#loss-frames). Dutch compounds such as "vreemdelingenbewaring" count too.
THREAT_WORDS = re.compile(
    r"\b(detention|detain\w*|deport\w*|forced|force|police|arrest\w*|prison|expel\w*|"
    r"expul\w*|\w*bewaring|uitzet\w*|gedwongen|politie|vastzetten|gevangenis|dwang)\b",
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
                    "enforcement or detention (see docs/ethics.md#loss-frames)",
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
                "(a key of 'figures' with source, as_of and a value per location; "
                "see docs/ethics.md#claims-and-figures)",
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
            names = placeholders(material.body)
            body_path = (*path, "material", language, "body")
            if names is None:
                yield ctx.problem(body_path, "unbalanced '{' or '}'", "norm-figures")
                continue
            if arm.figure is not None and "figure" not in names:
                yield ctx.problem(
                    body_path,
                    "the body must show the number with the placeholder {figure}, so the "
                    "kiosk shows its source and date under it "
                    "(see docs/ethics.md#claims-and-figures)",
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
                    "out and is not a robust norm (see docs/ethics.md#claims-and-figures)",
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
                        "figure (see docs/ethics.md#claims-and-figures)",
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
            yield ctx.problem(
                path,
                f"{what}: as_of {as_of} is in the future; use the date the source was checked "
                "(see docs/ethics.md#claims-and-figures)",
                "fresh-sources",
            )
        elif age > ctx.settings.max_age_days:
            yield ctx.problem(
                path,
                f"{what}: as_of {as_of} is {age} days old (more than {ctx.settings.max_age_days}); "
                "check the source again and update the date "
                "(see docs/ethics.md#claims-and-figures)",
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
                    "language, real_person, consent_recorded; see docs/ethics.md#messengers)",
                    "messenger",
                )
            elif not (arm.messenger.real_person and arm.messenger.consent_recorded):
                yield ctx.problem(
                    ("arms", index, "messenger"),
                    f"arm {arm.id!r}: the messenger must be a real person (no actor presented "
                    "as a returnee) whose consent is recorded (see docs/ethics.md#messengers)",
                    "messenger",
                )
        elif arm.messenger is not None:
            yield ctx.problem(
                ("arms", index, "messenger"),
                f"arm {arm.id!r}: 'messenger' is used only by messenger arms",
                "messenger",
                "warning",
            )


#: Words that make an event name record special-category data (GDPR Art. 9) or a proxy for it.
SENSITIVE_WORDS = frozenset(
    {
        "nationality",
        "nationalities",
        "citizenship",
        "ethnicity",
        "ethnic",
        "race",
        "religion",
        "religious",
        "faith",
        "origin",
        "afghan",
        "albanian",
        "algerian",
        "armenian",
        "azerbaijani",
        "bangladeshi",
        "chinese",
        "congolese",
        "egyptian",
        "eritrean",
        "ethiopian",
        "georgian",
        "ghanaian",
        "guinean",
        "indian",
        "iranian",
        "iraqi",
        "kurdish",
        "lebanese",
        "libyan",
        "moroccan",
        "nigerian",
        "pakistani",
        "palestinian",
        "russian",
        "somali",
        "sudanese",
        "syrian",
        "tunisian",
        "turkish",
        "ukrainian",
        "yemeni",
    }
)


def _country_names() -> frozenset[str]:
    """Country names in English and Dutch as snake_case (``sierra_leone``), from CLDR (Babel)."""
    from babel import Locale

    names: set[str] = set()
    for language in ("en", "nl"):
        for code, name in Locale(language).territories.items():
            if len(code) == 2 and code.isalpha():
                names.add("_".join(re.findall(r"[a-z]+", name.lower())))
    return frozenset(name for name in names if name)


@rule(
    "no-country-events",
    "outcome ids and events never record a country, nationality, ethnicity or religion",
)
def _no_country_events(ctx: Context) -> Iterator[Problem]:
    countries = _country_names()
    for index, outcome in enumerate(ctx.trial.outcomes):
        for key in ("id", "event"):
            name = getattr(outcome, key)
            padded = f"_{name}_"
            words = set(name.split("_"))
            found = sorted(words & SENSITIVE_WORDS) or sorted(
                country for country in countries if f"_{country}_" in padded
            )
            if found:
                yield ctx.problem(
                    ("outcomes", index, key),
                    f"{name!r} records {found[0]!r}: a country or nationality is a proxy for "
                    "ethnic origin and may never be logged; use one event such as "
                    "'country_info_opened' for every country "
                    "(see docs/ethics.md#what-the-kiosk-stores)",
                    "no-country-events",
                )
