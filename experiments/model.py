"""Pydantic models of a trial file: what researchers declare, validated at the edge.

Structure only lives here (types, required keys, unknown keys refused). Rules that relate
fields to each other, and the ethics rules, live in :mod:`experiments.rules`.
"""

from __future__ import annotations

import hashlib
import string
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from experiments.vocabulary import STRENGTH, Element, Strength, text_direction

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
LanguageCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
#: One text per trial language, e.g. ``{nl: ..., en: ..., ar: ...}``.
Texts = dict[LanguageCode, Text]
#: A visitor-facing text: one per trial language (``{nl: ..., en: ...}``) or, where the rules
#: allow it (a trial in one language, a place name that is the same in every language), one
#: string for all. ``nudgelab check`` says which fields need one text per language.
Localized = Text | Texts


def localized(value: Localized, language: str) -> str:
    """``value`` in ``language`` (a single string serves every language)."""
    if isinstance(value, str):
        return value
    if language in value:
        return value[language]
    return next(iter(value.values()))


def joined(value: Localized) -> str:
    """Every language's text of ``value`` joined with " / " (for reports and logs)."""
    if isinstance(value, str):
        return value
    return " / ".join(dict.fromkeys(value.values()))


#: The elements every disclosure must state, in this order on the page: D1-D7 and D9 of
#: docs/ethics.md#disclosure (D8 is shown with each figure, D10 on the "Why?" page).
DISCLOSURE_ELEMENTS: tuple[str, ...] = (
    "who",
    "purpose",
    "study",
    "no_effect",
    "voluntary",
    "data",
    "read_more",
    "contact",
)
#: Placeholders a disclosure element must contain, filled from the trial's own fields,
#: so the facts shown cannot drift from what the trial file declares.
DISCLOSURE_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "who": ("organisation",),
    "read_more": ("register_url",),
    "contact": ("contact", "privacy_contact"),
}
ALLOWED_PLACEHOLDERS: frozenset[str] = frozenset(
    {"organisation", "register_url", "contact", "privacy_contact"}
)


class Strict(BaseModel):
    """Base for every trial model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Location(Strict):
    id: Slug
    #: One name for every language, or one per language where they differ.
    name: Localized


class Randomization(Strict):
    method: Literal["simple", "block", "hash"]
    block_size: int | None = Field(default=None, ge=1)
    strata: list[Literal["location", "language"]] = Field(default_factory=lambda: ["location"])
    unit: Literal["visit"] = "visit"
    #: Hash method only: optional public salt. Without it the kiosk draws a secret salt
    #: when the trial is loaded, so visitors cannot predict their arm.
    salt: str | None = None


class DisclosureText(Strict):
    """The disclosure in one language, one sub-key per required element."""

    who: Text
    purpose: Text
    study: Text
    no_effect: Text
    voluntary: Text
    data: Text
    read_more: Text
    contact: Text


class Material(Strict):
    title: Text
    body: Text


class Claim(Strict):
    """A factual statement an arm shows, always with its source and date."""

    text: Texts
    #: Shown to visitors under the claim, in every trial language.
    source: Localized
    as_of: date
    url: str | None = None
    illustrative: bool = False
    #: For researchers only (register and report, never a kiosk page): what to re-check etc.
    note: Text | None = None


class Messenger(Strict):
    """The person who tells the information; must be real and have consented."""

    name: Localized
    role: Texts
    real_person: bool
    consent_recorded: bool


#: A media file's path, relative to the trial file's folder (``media/photo.png``).
#: Each part starts with a letter, digit or underscore, so no part is ``..`` or hidden.
MEDIA_PATH_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$"
MediaPath = Annotated[str, StringConstraints(pattern=MEDIA_PATH_PATTERN)]
#: A file's SHA-256 in lower-case hex: pins the exact bytes a trial version shows.
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Consent(Strict):
    """Consent of a person whose face or voice a trial shows. The signed form stays outside
    the platform; this record says where it is. It describes staff or a messenger, never a
    visitor."""

    #: Who consented, as the signed form names them.
    who: Text
    #: When they signed.
    given: date
    #: The trial the consent covers (its id).
    trial: Slug
    #: Until when it holds.
    until: date
    #: Where the signed form is kept (e.g. a file number in the organisation's archive).
    form_reference: Text


class Image(Strict):
    """A picture on an arm's page, shown in every language with alt text in each."""

    file: MediaPath
    #: The SHA-256 of the file's bytes; ``nudgelab check`` prints it when missing or stale.
    sha256: Sha256 | None = None
    kind: Literal["photo", "logo", "pictogram", "drawing"]
    alt: Texts
    #: An identifiable person is in the picture (a messenger's photo always counts as one).
    shows_person: bool = False
    consent: Consent | None = None
    #: Who made it and under which licence (e.g. "drawn for nudgelab, CC0 1.0").
    credit: Text | None = None


class Narration(Strict):
    """A spoken version of an arm's material in one language."""

    file: MediaPath
    sha256: Sha256 | None = None
    #: ``recorded``: a person's voice (needs consent); ``synthetic``: text-to-speech.
    voice: Literal["recorded", "synthetic"]
    #: What is said. Without it, the material's title and body; when it differs from them,
    #: ``summary: true`` declares it a summary.
    transcript: Text | None = None
    summary: bool = False
    consent: Consent | None = None
    credit: Text | None = None


class Arm(Strict):
    id: Identifier
    element: Element
    control: bool = False
    weight: int = 1
    material: dict[LanguageCode, Material]
    claims: list[Claim] = Field(default_factory=list)
    figure: Identifier | None = None
    messenger: Messenger | None = None
    #: Pictures shown with the material (every language), in this order.
    images: list[Image] = Field(default_factory=list)
    #: A narration per language (any subset of the trial's languages).
    audio: dict[LanguageCode, Narration] = Field(default_factory=dict)

    def transcript(self, language: str) -> str | None:
        """What the narration in ``language`` says (None without one)."""
        narration = self.audio.get(language)
        if narration is None:
            return None
        if narration.transcript is not None:
            return narration.transcript
        material = self.material.get(language)
        return f"{material.title}\n\n{material.body}" if material else None

    @property
    def strength(self) -> Strength:
        """Nudge strength of the arm's element (``none`` for the control)."""
        return STRENGTH[self.element]


class Figure(Strict):
    """A number shown per location (norm arms), with its source, date and denominator."""

    source: Localized
    as_of: date
    values: dict[Slug, int]
    denominator: Texts
    illustrative: bool = False
    url: str | None = None
    #: For researchers only (register and report, never a kiosk page).
    note: Text | None = None


class Outcome(Strict):
    id: Identifier
    event: Identifier
    primary: bool = False
    #: Shown on the public register: one per trial language (one string: a warning).
    description: Localized
    #: Button text on the kiosk, per language; outcomes without a label are not kiosk actions.
    label: Texts | None = None
    #: What the kiosk says after the tap, per language: what happens next, in plain words
    #: (e.g. "Please go to the desk; a staff member can arrange a conversation").
    acknowledgement: Texts | None = None


class Hypothesis(Strict):
    id: Identifier
    #: Shown on the public register: one per trial language (one string: a warning).
    statement: Localized
    arm: Identifier | None = None
    outcome: Identifier | None = None
    direction: Literal["two_sided", "increase", "decrease"] = "two_sided"


#: Lan-DeMets spending functions of an interim plan (the names ``analysis.sequential`` uses).
InterimSpending = Literal["obrien-fleming", "pocock"]
#: The most looks an interim plan may declare (``nudgelab check`` refuses more).
MAX_INTERIM_LOOKS = 20


class InterimPlan(Strict):
    """Pre-registered looks at a running trial: a two-sided group-sequential design.

    The looks are given either as information fractions (``fractions``: the share of the
    planned sample size analysed at each look) or as randomized visits at each look
    (``visits``, converted to fractions by ``planned_sample_size``); exactly one of the two,
    increasing, the last at the full planned sample size. Each comparison with the control
    stops for efficacy when its z-statistic crosses the boundary that ``spending`` allots to
    the look (Lan & DeMets 1983, alpha/2 per side); there is no futility boundary. The
    structure is checked here; the rule ``analysis-plan`` checks order, the last look and the
    number of looks (:mod:`experiments.rules.plan`).
    """

    fractions: list[Annotated[float, Field(gt=0, le=1)]] | None = None
    visits: list[Annotated[int, Field(gt=0)]] | None = None
    spending: InterimSpending = "obrien-fleming"

    def information_fractions(self, planned_sample_size: int) -> tuple[float, ...]:
        """The planned looks as fractions ``t_k`` of the planned sample size (visits ÷ N)."""
        if self.fractions is not None:
            return tuple(float(t) for t in self.fractions)
        return tuple(n / planned_sample_size for n in self.visits or ())


class AnalysisPlan(Strict):
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    correction: Literal["holm", "bonferroni", "bh"] = "holm"
    hypotheses: list[Hypothesis] = Field(min_length=1)
    planned_sample_size: int = Field(gt=0)
    baseline_rate: float = Field(gt=0, lt=1)
    #: Pre-registered effect of interest, as a difference in proportions (0.02 = 2 pp).
    expected_effect: float | None = Field(default=None, gt=-1, lt=1)
    power: float = Field(default=0.8, gt=0, lt=1)
    subgroups: list[Literal["location", "language"]] = Field(default_factory=list)
    confirmatory_subgroups: list[Literal["location", "language"]] = Field(default_factory=list)
    #: Pre-registered interim looks; without it every look before the end is unplanned.
    interim: InterimPlan | None = None

    @property
    def interim_fractions(self) -> tuple[float, ...]:
        """The planned looks' information fractions (empty without an interim plan)."""
        if self.interim is None:
            return ()
        return self.interim.information_fractions(self.planned_sample_size)


class Schedule(Strict):
    start: date
    end: date


class Privacy(Strict):
    contact: Text
    retention_days: int = Field(gt=0, le=3650)
    #: Shown on the public register: one per trial language (one string: a warning).
    statement: Localized


class Trial(Strict):
    """A whole trial as declared in ``experiments/trials/<id>.yaml``."""

    id: Slug
    title: Text
    #: Shown on the public register: one per trial language (one string: a warning).
    purpose: Localized
    organisation: Localized
    contact: Text
    privacy: Privacy
    domain_sensitivity: Literal["high", "low"] = "high"
    sensitivity_reason: Text | None = None
    register_url: Text = "/register"
    languages: list[LanguageCode] = Field(min_length=1)
    locations: list[Location] = Field(min_length=1)
    randomization: Randomization
    disclosure: dict[LanguageCode, DisclosureText]
    arms: list[Arm] = Field(min_length=2)
    figures: dict[Identifier, Figure] = Field(default_factory=dict)
    outcomes: list[Outcome] = Field(min_length=1)
    analysis: AnalysisPlan
    schedule: Schedule
    #: The design varies only the words: every arm shows the same pictures and has a narration
    #: in the same languages (``nudgelab check`` holds the arms to it).
    only_text_differs: bool = False

    # -- convenient views -------------------------------------------------------------
    @property
    def control_arm(self) -> Arm:
        """The single control arm (the rules guarantee exactly one)."""
        return next(arm for arm in self.arms if arm.control)

    def arm(self, arm_id: str) -> Arm:
        """Return the arm called ``arm_id``; ``KeyError`` if there is none."""
        for arm in self.arms:
            if arm.id == arm_id:
                return arm
        raise KeyError(arm_id)

    @property
    def weights(self) -> dict[str, int]:
        return {arm.id: arm.weight for arm in self.arms}

    @property
    def primary_outcome(self) -> Outcome:
        return next(outcome for outcome in self.outcomes if outcome.primary)

    @property
    def outcome_events(self) -> frozenset[str]:
        return frozenset(outcome.event for outcome in self.outcomes)

    @property
    def location_ids(self) -> list[str]:
        return [location.id for location in self.locations]

    def direction(self, language: str) -> Literal["rtl", "ltr"]:
        return text_direction(language)

    # -- the disclosure as shown ------------------------------------------------------
    def register_address(self, public_url: str | None = None) -> str:
        """Where a visitor or reader finds the register: ``register_url`` when it is absolute,
        else joined to ``public_url`` (the platform's public address); the bare path when no
        public address is known."""
        if "://" in self.register_url or not public_url:
            return self.register_url
        return public_url.rstrip("/") + "/" + self.register_url.lstrip("/")

    def placeholder_values(self, language: str, public_url: str | None = None) -> dict[str, str]:
        """The values the disclosure's placeholders are filled with, in ``language``."""
        return {
            "organisation": localized(self.organisation, language),
            "register_url": self.register_address(public_url),
            "contact": self.contact,
            "privacy_contact": self.privacy.contact,
        }

    def disclosure_parts(
        self, language: str, public_url: str | None = None
    ) -> list[tuple[str, str]]:
        """The disclosure in ``language`` as ``(element, text)`` pairs, placeholders filled."""
        values = self.placeholder_values(language, public_url)
        texts = self.disclosure[language]
        return [
            (key, string.Formatter().vformat(getattr(texts, key), (), values))
            for key in DISCLOSURE_ELEMENTS
        ]

    def disclosure_text(self, language: str) -> str:
        """The full disclosure in ``language`` as one string (one element per line), with the
        register address as the trial file declares it."""
        return "\n".join(text for _, text in self.disclosure_parts(language))

    def disclosure_version(self, language: str) -> str:
        """Hash of the disclosure text shown, recorded with every exposure. The platform's
        public address is configuration, not content: it does not change the version."""
        return hashlib.sha256(self.disclosure_text(language).encode()).hexdigest()[:16]

    def material_version(self, arm_id: str, language: str) -> str:
        """Hash of an arm's material (text, claims, messenger, figure, and the bytes of its
        images and narration) in one language."""
        arm = self.arm(arm_id)
        parts = [arm.element, arm.material[language].model_dump_json()]
        parts += [claim.model_dump_json() for claim in arm.claims]
        if arm.messenger:
            parts.append(arm.messenger.model_dump_json())
        if arm.figure and arm.figure in self.figures:
            parts.append(self.figures[arm.figure].model_dump_json())
        # Media only when the arm has some, so the versions of text-only arms stay as they were.
        parts += [_image_part(image, language) for image in arm.images]
        if language in arm.audio:
            parts.append(_narration_part(arm, language))
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _image_part(image: Image, language: str) -> str:
    """An image as hashed into a material version: its bytes (by their pinned SHA-256), kind
    and the alt text of the language."""
    return f"image {image.sha256} {image.kind} {image.alt.get(language, '')}"


def _narration_part(arm: Arm, language: str) -> str:
    narration = arm.audio[language]
    return f"audio {narration.sha256} {narration.voice} {arm.transcript(language)}"
