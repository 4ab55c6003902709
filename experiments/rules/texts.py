"""Rules on languages and texts: known languages, every text in every language, the disclosure."""

from __future__ import annotations

import string
from collections.abc import Iterator

from experiments.model import (
    ALLOWED_PLACEHOLDERS,
    DISCLOSURE_ELEMENTS,
    DISCLOSURE_PLACEHOLDERS,
    Trial,
)
from experiments.problems import Path, Problem
from experiments.rules.registry import Context, rule
from experiments.vocabulary import (
    LANGUAGE_NAMES,
)


def _language(code: str) -> str:
    return f"{code} ({LANGUAGE_NAMES[code]})" if code in LANGUAGE_NAMES else repr(code)


@rule("known-languages", "languages are known codes; right-to-left ones are rendered as such")
def _known_languages(ctx: Context) -> Iterator[Problem]:
    for index, language in enumerate(ctx.trial.languages):
        if language not in LANGUAGE_NAMES:
            yield ctx.problem(
                ("languages", index),
                f"unknown language {language!r}; known: {', '.join(sorted(LANGUAGE_NAMES))}",
                "known-languages",
            )


#: A visitor-facing field given as one string; ``True`` when one string may serve every
#: language (a place name), ``False`` when the field needs one text per language.
_SHARED_ALLOWED = {"location": True}


def _texts(trial: Trial) -> Iterator[tuple[Path, str, object, bool]]:
    """Every visitor-facing text of the trial: ``(path, what, value, one_for_all_allowed)``,
    where ``value`` is a per-language mapping or one string."""
    yield ("organisation",), "the organisation", trial.organisation, False
    for i, location in enumerate(trial.locations):
        yield ("locations", i, "name"), f"location {location.id!r}", location.name, True
    yield ("disclosure",), "the disclosure", dict(trial.disclosure), False
    for i, arm in enumerate(trial.arms):
        yield ("arms", i, "material"), f"arm {arm.id!r}", dict(arm.material), False
        for j, claim in enumerate(arm.claims):
            what = f"claim {j + 1} of arm {arm.id!r}"
            yield ("arms", i, "claims", j, "text"), what, dict(claim.text), False
            yield ("arms", i, "claims", j, "source"), f"the source of {what}", claim.source, False
        if arm.messenger:
            messenger = f"the messenger of arm {arm.id!r}"
            yield ("arms", i, "messenger", "name"), f"{messenger} (name)", arm.messenger.name, False
            yield ("arms", i, "messenger", "role"), messenger, dict(arm.messenger.role), False
    for name, figure in trial.figures.items():
        what = f"figure {name!r}"
        yield ("figures", name, "denominator"), what, dict(figure.denominator), False
        yield ("figures", name, "source"), f"the source of {what}", figure.source, False
    for k, outcome in enumerate(trial.outcomes):
        if outcome.label is not None:
            yield ("outcomes", k, "label"), f"outcome {outcome.id!r}", dict(outcome.label), False
        if outcome.acknowledgement is not None:
            yield (
                ("outcomes", k, "acknowledgement"),
                f"the acknowledgement of outcome {outcome.id!r}",
                dict(outcome.acknowledgement),
                False,
            )


def _register_texts(trial: Trial) -> Iterator[tuple[Path, str, object]]:
    """The pre-registration's texts shown on the public register, which visitors are sent to:
    ``(path, what, value)``."""
    yield ("purpose",), "the purpose", trial.purpose
    yield ("privacy", "statement"), "the privacy statement", trial.privacy.statement
    for k, outcome in enumerate(trial.outcomes):
        yield ("outcomes", k, "description"), f"the description of outcome {outcome.id!r}", (
            outcome.description
        )
    for k, hypothesis in enumerate(trial.analysis.hypotheses):
        what = f"hypothesis {hypothesis.id!r}"
        yield ("analysis", "hypotheses", k, "statement"), what, hypothesis.statement


def _in_every_language(
    ctx: Context, path: Path, what: str, value: dict, declared: list[str], rule_id: str
) -> Iterator[Problem]:
    """Errors for a per-language mapping that misses a trial language or has another one."""
    for language in declared:
        if language not in value:
            yield ctx.problem(
                path,
                f"missing {_language(language)} text for {what}; add a '{language}:' entry "
                "(see docs/ethics.md#languages)",
                rule_id,
            )
    for language in value:
        if language not in declared:
            yield ctx.problem(
                (*path, language),
                f"{what} has text in {language!r}, which is not in 'languages'",
                rule_id,
                key=True,
            )


@rule(
    "every-language",
    "every visitor-facing text (disclosure, materials, claims and their sources, messenger, "
    "figures, organisation, outcome labels and acknowledgements) exists in every language of "
    "the trial, and in no other; every kiosk action has an acknowledgement",
)
def _every_language(ctx: Context) -> Iterator[Problem]:
    declared = list(dict.fromkeys(ctx.trial.languages))
    for path, what, value, shared_allowed in _texts(ctx.trial):
        if isinstance(value, str):
            if len(declared) > 1 and not shared_allowed:
                entries = ", ".join(f"'{language}:'" for language in declared)
                yield ctx.problem(
                    path,
                    f"{what} is shown to visitors and needs one text per language "
                    f"({entries}); a single text would reach every visitor in one language "
                    "(see docs/ethics.md#languages)",
                    "every-language",
                )
            continue
        assert isinstance(value, dict)
        yield from _in_every_language(ctx, path, what, value, declared, "every-language")
    for k, outcome in enumerate(ctx.trial.outcomes):
        if outcome.label is not None and outcome.acknowledgement is None:
            yield ctx.problem(
                ("outcomes", k, "label"),
                f"outcome {outcome.id!r} is a kiosk button but has no 'acknowledgement': give, "
                "per language, what the visitor is told after the tap (what happens next, "
                "e.g. where a staff member can help); the kiosk shows no generic thanks",
                "every-language",
            )


@rule(
    "register-languages",
    "the register's texts (purpose, privacy statement, outcome descriptions, hypotheses) are "
    "given per trial language; one string for all is a warning",
)
def _register_languages(ctx: Context) -> Iterator[Problem]:
    declared = list(dict.fromkeys(ctx.trial.languages))
    for path, what, value in _register_texts(ctx.trial):
        if isinstance(value, dict):
            yield from _in_every_language(ctx, path, what, value, declared, "register-languages")
        elif len(declared) > 1:
            yield ctx.problem(
                path,
                f"{what} is shown on the public register, which the disclosure sends visitors "
                f"to, in one language only: give it per language ("
                + ", ".join(f"'{language}:'" for language in declared)
                + ") so the register reads in the visitor's language "
                "(see docs/ethics.md#languages)",
                "register-languages",
                severity="warning",
            )


def placeholders(text: str) -> list[str] | None:
    """Field names used as ``{name}`` in ``text``; None when the braces are malformed."""
    try:
        return [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError:
        return None


@rule(
    "disclosure",
    "the disclosure states who runs the trial, its purpose, that it is a study comparing "
    "versions, no effect on the case, how to leave, what is stored, the register (a full "
    "address: warning for a path without NUDGELAB_PUBLIC_URL) and contacts",
)
def _disclosure(ctx: Context) -> Iterator[Problem]:
    if "://" not in ctx.trial.register_url and not ctx.settings.public_url:
        yield ctx.problem(
            ("register_url",),
            f"register_url {ctx.trial.register_url!r} is a path: a visitor who wants to look "
            "the study up at home needs a full address. Set NUDGELAB_PUBLIC_URL (or "
            "'nudgelab serve --base-url') to the public address of the register's server, or "
            "give an absolute register_url",
            "disclosure",
            "warning",
        )
    for language, texts in ctx.trial.disclosure.items():
        for element in DISCLOSURE_ELEMENTS:
            path = ("disclosure", language, element)
            text = getattr(texts, element)
            names = placeholders(text)
            if names is None:
                yield ctx.problem(path, "unbalanced '{' or '}'", "disclosure")
                continue
            for required in DISCLOSURE_PLACEHOLDERS.get(element, ()):
                if required not in names:
                    yield ctx.problem(
                        path,
                        f"must contain {{{required}}} so the page shows the trial's own "
                        f"{required.replace('_', ' ')} (see docs/ethics.md#disclosure)",
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
