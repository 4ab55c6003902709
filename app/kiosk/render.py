"""The one render path for variant pages; it refuses a page that lacks the disclosure.

:func:`render_variant` renders an arm's page and then checks the HTML: the disclosure block
must be there exactly once, visible (not hidden), and contain every element of the trial's
disclosure in the page's language. If not, :class:`DisclosureMissing` is raised before any
exposure is logged, so a variant page without its disclosure can never be shown or counted.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import date

from flask import current_app, has_request_context, render_template, request, url_for
from flask_babel import format_date, format_decimal
from markupsafe import Markup, escape

from experiments.model import Arm, Claim, Figure, Trial, localized
from experiments.rules.media import PLAYED_AUDIO

DISCLOSURE_OPEN = '<aside class="disclosure" id="disclosure"'
VARIANT_TEMPLATE = "kiosk/variant.html"


class DisclosureMissing(Exception):
    """A variant page was rendered without the complete, visible disclosure."""


@dataclass(frozen=True)
class FigureNote:
    """The number shown on a norm arm, with what it counts, its source and date (D8)."""

    value: str
    denominator: str
    source: str
    as_of: str


@dataclass(frozen=True)
class Paragraph:
    html: Markup
    figure: FigureNote | None = None


@dataclass(frozen=True)
class ShownImage:
    """A picture on the page: where the app serves it, and its alt text in the page's language."""

    url: str
    alt: str
    kind: str


@dataclass(frozen=True)
class ShownNarration:
    """The spoken version of the page, with what it says (one tap away)."""

    url: str
    transcript: list[str]
    summary: bool
    synthetic: bool
    #: The event logged once per play, when the trial declares it (else nothing is logged).
    event: str | None


def shown_images(arm: Arm, language: str) -> list[ShownImage]:
    return [
        ShownImage(url_for("kiosk.media", digest=image.sha256), image.alt[language], image.kind)
        for image in arm.images
    ]


def shown_narration(trial: Trial, arm: Arm, language: str) -> ShownNarration | None:
    narration = arm.audio.get(language)
    if narration is None:
        return None
    return ShownNarration(
        url_for("kiosk.media", digest=narration.sha256),
        plain_paragraphs(arm.transcript(language) or ""),
        narration.summary,
        narration.voice == "synthetic",
        PLAYED_AUDIO if PLAYED_AUDIO in trial.outcome_events else None,
    )


@dataclass(frozen=True)
class ShownClaim:
    text: str
    source: str
    as_of: str
    url: str | None


def public_url() -> str | None:
    """The server's public address: ``NUDGELAB_PUBLIC_URL``, else the address this request
    came in on (so a visitor never reads a bare path), else None."""
    configured = current_app.config.get("PUBLIC_URL")
    if configured:
        return str(configured)
    if has_request_context():
        return request.url_root.rstrip("/")
    return None


def register_address(trial: Trial) -> str:
    """The full address of the public register that visitors and readers are given."""
    return trial.register_address(public_url())


def long_date(day: date) -> str:
    return format_date(day, "long")


def _figure_note(figure: Figure, location: str, language: str) -> FigureNote:
    return FigureNote(
        value=format_decimal(figure.values[location]),
        denominator=figure.denominator[language],
        source=localized(figure.source, language),
        as_of=long_date(figure.as_of),
    )


def paragraphs(trial: Trial, arm: Arm, language: str, location: str) -> list[Paragraph]:
    """The body split into paragraphs; ``{figure}`` becomes the location's number."""
    body = arm.material[language].body
    note = None
    if arm.figure is not None:
        note = _figure_note(trial.figures[arm.figure], location, language)
    result = []
    for block in re.split(r"\n\s*\n", body.strip()):
        text = " ".join(block.split())
        html = escape(text)
        shown = None
        if note is not None and "{figure}" in text:
            value = Markup('<strong class="figure-value">{}</strong>').format(note.value)
            html = Markup(str(html).replace("{figure}", str(value)))
            shown = note
        result.append(Paragraph(html, shown))
    return result


def plain_paragraphs(text: str) -> list[str]:
    """A text split at blank lines, each paragraph on one line (for the register)."""
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", text.strip())]


def shown_claims(claims: list[Claim], language: str) -> list[ShownClaim]:
    return [
        ShownClaim(
            claim.text[language],
            localized(claim.source, language),
            long_date(claim.as_of),
            claim.url,
        )
        for claim in claims
    ]


def disclosure_html(trial: Trial, language: str) -> list[tuple[str, Markup]]:
    """The disclosure as ``(element, html)`` pairs: the text of ``trial.disclosure_parts``, with
    each filled-in value isolated in ``<bdi>`` so that, e.g., an English organisation name
    inside Arabic text keeps its own direction. :func:`ensure_disclosure` checks that the
    visible text equals ``disclosure_parts`` exactly."""
    address = public_url()
    values = trial.placeholder_values(language, address)
    texts = trial.disclosure[language]
    parts = []
    for element, _ in trial.disclosure_parts(language, address):
        html = Markup("")
        for literal, field, _spec, _conversion in string.Formatter().parse(getattr(texts, element)):
            html += literal
            if field is not None:
                html += Markup('<bdi dir="auto">{}</bdi>').format(
                    values.get(field, "{" + field + "}")
                )
        parts.append((element, html))
    return parts


def visible_text(html: str) -> str:
    """``html`` without the ``<bdi>`` isolation tags (what a reader sees)."""
    return re.sub(r"</?bdi\b[^>]*>", "", html)


def disclosure_block(html: str) -> str:
    """The disclosure ``<aside>`` of a page; DisclosureMissing unless there is exactly one."""
    if html.count(DISCLOSURE_OPEN) != 1:
        raise DisclosureMissing(
            f"expected exactly one disclosure block, found {html.count(DISCLOSURE_OPEN)}"
        )
    start = html.index(DISCLOSURE_OPEN)
    end = html.find("</aside>", start)
    if end == -1:
        raise DisclosureMissing("the disclosure block is not closed")
    return html[start : end + len("</aside>")]


def ensure_disclosure(html: str, trial: Trial, language: str) -> None:
    """Raise DisclosureMissing unless ``html`` shows the full disclosure in ``language``."""
    block = disclosure_block(html)
    opening = block[: block.index(">") + 1]
    if re.search(r"\bhidden\b|display:\s*none|aria-hidden", opening):
        raise DisclosureMissing("the disclosure block is hidden")
    shown = visible_text(block)
    for element, text in trial.disclosure_parts(language, public_url()):
        if str(escape(text)) not in shown:
            raise DisclosureMissing(f"disclosure element {element!r} is not on the page")


def render_variant(trial: Trial, arm: Arm, language: str, location: str, **context: object) -> str:
    """Render the variant page of ``arm``; refuse it if the disclosure is not in the output."""
    html = render_template(
        VARIANT_TEMPLATE,
        trial=trial,
        arm=arm,
        material=arm.material[language],
        paragraphs=paragraphs(trial, arm, language, location),
        claims=shown_claims(arm.claims, language),
        disclosure=disclosure_html(trial, language),
        outcomes=[outcome for outcome in trial.outcomes if outcome.label],
        messenger_name=localized(arm.messenger.name, language) if arm.messenger else None,
        images=shown_images(arm, language),
        narration=shown_narration(trial, arm, language),
        **context,
    )
    ensure_disclosure(html, trial, language)
    return html
