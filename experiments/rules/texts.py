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
                    f"missing {_language(language)} text for {what}; add a '{language}:' entry "
                    "(see docs/ethics.md#languages)",
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


def placeholders(text: str) -> list[str] | None:
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
