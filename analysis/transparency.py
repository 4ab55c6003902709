"""The transparency section: who ran the trial, what each arm showed, the plan and every departure.

The report object always carries a :class:`Transparency` value built here from the trial files
stored in the event log; nothing in a trial file can switch it off. Deviations come from diffing
the locked (pre-registered) version against the version analysed, and from the analysis options
that differ from the plan.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from experiments.load import load_text
from experiments.media import stored_media
from experiments.model import Arm, Consent, Localized, Trial, joined, localized

if TYPE_CHECKING:  # annotations only: reading a report needs no database code (nor pandas)
    from analysis.counts import Counts
    from experiments.store import TrialHistory

#: The language the report is written in: texts given per language are taken in it, else in the
#: trial's first language.
REPORT_LANGUAGE = "en"


def in_report_language(value: Localized) -> str:
    """``value`` in :data:`REPORT_LANGUAGE` (or its first language; a single string as is)."""
    return localized(value, REPORT_LANGUAGE)


NO_INDIVIDUAL_DECISIONS = (
    "Kiosk data never go to a body that decides individual cases (asylum, return, reception "
    "or any other procedure); they are used only to compare the ways of presenting information."
)
#: Analysed visits may differ from ``planned_sample_size`` by this share before it is a deviation.
SAMPLE_SIZE_TOLERANCE = 0.10
OPT_OUT_RULE = (
    "Visits that opted out are counted in the participant flow only: their outcome events are "
    "deleted when they opt out, and they are excluded from every outcome analysis."
)


def _iso(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(type(value))


# -- the values the report shows ----------------------------------------------------------------


@dataclass(frozen=True)
class MediaShown:
    """A picture or narration of an arm, as pinned: file, SHA-256 and what it shows or says."""

    kind: str  # photo | logo | pictogram | drawing | narration
    file: str
    sha256: str | None
    language: str | None  # a narration's language; None for a picture (shown in every one)
    text: str  # a picture's alt texts, or what the narration says
    note: str  # voice, summary, credit and consent


@dataclass(frozen=True)
class MediaFile:
    """The bytes of a picture or narration, kept with a stored trial version (base64)."""

    sha256: str
    media_type: str
    size: int
    data: str


@dataclass(frozen=True)
class ArmShown:
    """One arm as visitors saw it, in every language."""

    id: str
    element: str
    strength: str
    control: bool
    weight: int
    materials: tuple[tuple[str, str, str], ...]  # (language, title, body)
    claims: tuple[str, ...]
    messenger: str | None
    figure: str | None
    media: tuple[MediaShown, ...] = ()


@dataclass(frozen=True)
class VersionShown:
    """A trial version other than the locked one that visitors saw: what it showed differently."""

    version: str
    visits: int
    disclosures: tuple[tuple[str, str, str], ...]  # changed ones: (language, hash, full text)
    arms: tuple[ArmShown, ...]  # arms whose material, claims, figure or messenger changed
    note: str


@dataclass(frozen=True)
class Deviation:
    """A difference between the pre-registered plan and what was done."""

    kind: str
    what: str
    planned: str
    actual: str


@dataclass(frozen=True)
class Preregistration:
    """The locked plan as the report states it."""

    hypotheses: tuple[str, ...]
    primary_outcome: str
    outcome_ids: tuple[str, ...]
    outcomes: tuple[str, ...]
    alpha: float
    correction: str
    planned_sample_size: int
    baseline_rate: float
    expected_effect: float | None
    power: float
    subgroups: tuple[str, ...]
    confirmatory_subgroups: tuple[str, ...]
    schedule: str
    locked_version: str | None
    locked_at: datetime | None


@dataclass(frozen=True)
class Transparency:
    """Everything an attentive citizen needs to see how they were steered (WRR publicity)."""

    title: str
    purpose: str
    organisation: str
    contact: str
    privacy_contact: str
    privacy_statement: str
    register_url: str
    domain_sensitivity: str
    sensitivity_reason: str | None
    disclosures: tuple[tuple[str, str, str], ...]  # (language, version hash, full text)
    arms: tuple[ArmShown, ...]  # as locked (pre-registered); arms added later as added
    preregistration: Preregistration
    deviations: tuple[Deviation, ...]
    exclusions: tuple[str, ...]
    looks: int
    looks_while_running: int
    looks_note: str
    software_version: str
    data_hash: str
    data_source: str
    retention_days: int
    deletion_date: date
    deletion_basis: str
    no_individual_decisions: str = NO_INDIVIDUAL_DECISIONS
    statistical_notes: tuple[str, ...] = field(default=(OPT_OUT_RULE,))
    #: Versions other than the locked one under which visits were recorded.
    other_versions: tuple[VersionShown, ...] = ()
    #: The trial's status in the event log (``loaded``, ``running``, ``stopped``, ``closed``).
    trial_status: str | None = None
    #: The pictures and narrations of every stored version, by SHA-256 (the report shows the
    #: locked version's from here; see :func:`media_files`).
    media: tuple[MediaFile, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=_iso))


def arms_shown(trial: Trial) -> tuple[ArmShown, ...]:
    """Every arm as visitors saw it: element, strength, materials, claims, figure, messenger."""
    shown = []
    for arm in trial.arms:
        claims = tuple(
            f"{' / '.join(claim.text.values())} (source: {joined(claim.source)}, as of "
            f"{claim.as_of.isoformat()}{', illustrative' if claim.illustrative else ''}"
            f"{', ' + claim.url if claim.url else ''}"
            f"{'; note: ' + claim.note if claim.note else ''})"
            for claim in arm.claims
        )
        figure = None
        if arm.figure and arm.figure in trial.figures:
            fig = trial.figures[arm.figure]
            values = ", ".join(f"{loc}: {value}" for loc, value in fig.values.items())
            figure = (
                f"{arm.figure} = {values} {' / '.join(fig.denominator.values())} (source: "
                f"{joined(fig.source)}, as of {fig.as_of.isoformat()}"
                f"{', illustrative' if fig.illustrative else ''}"
                f"{'; note: ' + fig.note if fig.note else ''})"
            )
        messenger = None
        if arm.messenger:
            m = arm.messenger
            messenger = (
                f"{joined(m.name)}, {' / '.join(m.role.values())} (real person: {m.real_person}, "
                f"consent recorded: {m.consent_recorded})"
            )
        shown.append(
            ArmShown(
                arm.id,
                arm.element,
                arm.strength,
                arm.control,
                arm.weight,
                tuple((lang, mat.title, mat.body) for lang, mat in arm.material.items()),
                claims,
                messenger,
                figure,
                media_shown(arm),
            )
        )
    return tuple(shown)


def _consent(consent: Consent | None) -> str:
    if consent is None:
        return ""
    return (
        f"; consent of {consent.who} for trial {consent.trial}, given {consent.given.isoformat()}, "
        f"until {consent.until.isoformat()} (signed form: {consent.form_reference})"
    )


def media_shown(arm: Arm) -> tuple[MediaShown, ...]:
    """An arm's pictures (alt text in every language) and narrations (what each says)."""
    shown = [
        MediaShown(
            image.kind,
            image.file,
            image.sha256,
            None,
            " / ".join(image.alt.values()),
            (image.credit or "no credit given") + _consent(image.consent),
        )
        for image in arm.images
    ]
    for language, narration in arm.audio.items():
        voice = "synthetic voice" if narration.voice == "synthetic" else "recorded voice"
        voice += ", a summary" if narration.summary else ", the material's text"
        voice += f"; {narration.credit}" if narration.credit else ""
        shown.append(
            MediaShown(
                "narration",
                narration.file,
                narration.sha256,
                language,
                arm.transcript(language) or "",
                voice + _consent(narration.consent),
            )
        )
    return tuple(shown)


def media_files(sources: Iterable[str]) -> tuple[MediaFile, ...]:
    """The media files kept with the stored versions ``sources`` (each once, by SHA-256)."""
    found: dict[str, MediaFile] = {}
    for source in sources:
        for digest, stored in stored_media(source).items():
            data = base64.b64encode(stored.data).decode("ascii")
            found.setdefault(digest, MediaFile(digest, stored.media_type, len(stored.data), data))
    return tuple(found[digest] for digest in sorted(found))


def disclosures(trial: Trial) -> tuple[tuple[str, str, str], ...]:
    """The full disclosure of ``trial`` per language, with the hash exposures record."""
    return tuple(
        (language, trial.disclosure_version(language), trial.disclosure_text(language))
        for language in trial.languages
    )


def versions_shown(
    preregistered: Trial, record: TrialHistory, visits_by_version: Mapping[str, int]
) -> tuple[VersionShown, ...]:
    """What visitors saw under a version other than the locked one, where it differed."""
    if record.locked_version is None:
        return ()
    locked_arms = {arm.id: arm for arm in arms_shown(preregistered)}
    locked_disclosures = set(disclosures(preregistered))
    found = []
    for version, visits in sorted(visits_by_version.items()):
        if version == record.locked_version:
            continue
        source = record.version_sources.get(version)
        loaded = load_text(source, f"<version {version[:12]}>") if source else None
        if loaded is None or loaded.trial is None:
            note = "the trial file of this version is not stored, or no longer parses"
            found.append(VersionShown(version, visits, (), (), note))
            continue
        changed_arms = tuple(
            arm for arm in arms_shown(loaded.trial) if locked_arms.get(arm.id) != arm
        )
        changed = tuple(d for d in disclosures(loaded.trial) if d not in locked_disclosures)
        note = (
            "disclosure and every arm's material as locked"
            if not changed_arms and not changed
            else "shows only what differs from the locked version"
        )
        found.append(VersionShown(version, visits, changed, changed_arms, note))
    return tuple(found)


def preregistration(preregistered: Trial, record: TrialHistory) -> Preregistration:
    """The pre-registration of ``preregistered`` with the lock from ``record``."""
    p = preregistered.analysis
    return Preregistration(
        tuple(
            f"{h.id}: {in_report_language(h.statement)} (arm {h.arm or 'any'}, "
            f"outcome {h.outcome or 'primary'}, {h.direction.replace('_', '-')})"
            for h in p.hypotheses
        ),
        preregistered.primary_outcome.id,
        tuple(o.id for o in preregistered.outcomes),
        tuple(
            f"{o.id} (event {o.event}): {in_report_language(o.description)}"
            for o in preregistered.outcomes
        ),
        p.alpha,
        p.correction,
        p.planned_sample_size,
        p.baseline_rate,
        p.expected_effect,
        p.power,
        tuple(p.subgroups),
        tuple(p.confirmatory_subgroups),
        f"{preregistered.schedule.start.isoformat()} to {preregistered.schedule.end.isoformat()}",
        record.locked_version,
        record.locked_at,
    )


def deletion(trial: Trial, record: TrialHistory) -> tuple[date, str]:
    """Deletion date of raw events: end of the trial plus the declared retention period."""
    days = trial.privacy.retention_days
    if record.stopped_at is not None:
        end, basis = record.stopped_at.date(), "the day the trial was stopped"
    else:
        end, basis = trial.schedule.end, "the scheduled end date (the trial has not been stopped)"
    return end + timedelta(days=days), f"{days} days after {basis}, {end.isoformat()}"


def version_deviations(preregistered: Trial, analysed: Trial) -> list[Deviation]:
    """Differences between the locked trial file and the one analysed, field by field."""
    if preregistered is analysed:
        return []
    found: list[Deviation] = []
    before, after = preregistered.model_dump(mode="json"), analysed.model_dump(mode="json")
    plan_outcomes = {o.id: o for o in preregistered.outcomes}
    now_outcomes = {o.id: o for o in analysed.outcomes}
    for oid in now_outcomes.keys() - plan_outcomes.keys():
        found.append(Deviation("outcome added", oid, "not pre-registered", "added later"))
    for oid in plan_outcomes.keys() - now_outcomes.keys():
        found.append(
            Deviation("outcome removed", oid, "pre-registered", "removed later; still reported")
        )
    for oid in plan_outcomes.keys() & now_outcomes.keys():
        was, now = plan_outcomes[oid], now_outcomes[oid]
        if was.event != now.event:
            found.append(
                Deviation(
                    "outcome redefined",
                    oid,
                    f"event {was.event}",
                    f"event {now.event} (the report counts the pre-registered event)",
                )
            )
        for attribute in ("primary", "description", "label"):
            before_value, after_value = getattr(was, attribute), getattr(now, attribute)
            if before_value != after_value:
                found.append(
                    Deviation(
                        "outcome redefined",
                        f"{oid}.{attribute}",
                        _short(before_value),
                        _short(after_value),
                    )
                )
    if preregistered.primary_outcome.id != analysed.primary_outcome.id:
        found.append(
            Deviation(
                "primary outcome changed",
                "primary outcome",
                preregistered.primary_outcome.id,
                f"{analysed.primary_outcome.id} (the report keeps the pre-registered primary)",
            )
        )
    for key in ("start", "end"):
        if before["schedule"][key] != after["schedule"][key]:
            found.append(
                Deviation(
                    "date changed",
                    f"schedule.{key}",
                    before["schedule"][key],
                    after["schedule"][key],
                )
            )
    for key in before["analysis"].keys() | after["analysis"].keys():
        if before["analysis"].get(key) != after["analysis"].get(key):
            found.append(
                Deviation(
                    "plan changed",
                    f"analysis.{key}",
                    _short(before["analysis"].get(key)),
                    _short(after["analysis"].get(key)),
                )
            )
    found += _arm_deviations(preregistered, analysed)
    for key in (before.keys() | after.keys()) - {"schedule", "analysis", "outcomes", "arms"}:
        if before.get(key) != after.get(key):
            found.append(
                Deviation(
                    "trial file changed", key, _short(before.get(key)), _short(after.get(key))
                )
            )
    return sorted(found, key=lambda d: (d.kind, d.what))


def _arm_deviations(preregistered: Trial, analysed: Trial) -> list[Deviation]:
    found = []
    old = {arm.id: arm for arm in preregistered.arms}
    new = {arm.id: arm for arm in analysed.arms}
    for arm_id in new.keys() - old.keys():
        found.append(Deviation("arm added", arm_id, "not pre-registered", "added later"))
    for arm_id in old.keys() - new.keys():
        found.append(Deviation("arm removed", arm_id, "pre-registered", "removed later"))
    media = {"images", "audio"}
    for arm_id in old.keys() & new.keys():
        a, b = old[arm_id], new[arm_id]
        found += _media_deviations(a, b)
        if a.model_dump(mode="json", exclude=media) != b.model_dump(mode="json", exclude=media):
            found.append(
                Deviation(
                    "arm changed",
                    arm_id,
                    f"element {a.element}, weight {a.weight}",
                    f"element {b.element}, weight {b.weight}; material or claims edited",
                )
            )
    return found


def _media_deviations(before: Arm, after: Arm) -> list[Deviation]:
    """A picture or narration added, removed or changed (other bytes, alt text, transcript)."""
    was = {item.file: item for item in media_shown(before)}
    now = {item.file: item for item in media_shown(after)}
    found = []
    for file in sorted(was.keys() | now.keys()):
        old, new = was.get(file), now.get(file)
        if old == new:
            continue
        planned = f"sha256 {old.sha256}" if old else "not pre-registered"
        actual = f"sha256 {new.sha256}" if new else "removed later"
        if old and new and old.sha256 == new.sha256:
            actual += " (same bytes; its alt text, transcript or notes changed)"
        found.append(Deviation("media changed", f"{before.id}: {file}", planned, actual))
    return found


def _short(value: object, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def option_deviations(
    preregistered: Trial, *, correction: str, alpha: float, interval: str, adjustment: str = "lpm"
) -> list[Deviation]:
    """Analysis choices that differ from the pre-registered plan (or the documented default)."""
    plan = preregistered.analysis
    found = []
    if correction != plan.correction:
        found.append(Deviation("analysis choice", "correction", plan.correction, correction))
    if alpha != plan.alpha:
        found.append(Deviation("analysis choice", "alpha", f"{plan.alpha:g}", f"{alpha:g}"))
    if interval != "newcombe":
        found.append(Deviation("analysis choice", "interval", "newcombe (default)", interval))
    if adjustment != "lpm":
        found.append(
            Deviation(
                "analysis choice", "adjustment", "lpm with HC2/cluster-robust SE (default)",
                adjustment,
            )
        )  # fmt: skip
    return found


def data_deviations(record: TrialHistory, visits_by_version: Mapping[str, int]) -> list[Deviation]:
    """No lock, visits recorded under a trial version other than the locked one, and each
    amendment (a version loaded after the start, with its reason)."""
    if record.locked_version is None:
        return [
            Deviation(
                "no pre-registration lock",
                "trial",
                "locked when started",
                "never started, so no version was locked; nothing here was pre-registered",
            )
        ]
    return [
        Deviation(
            "data under a changed version",
            f"version {version[:12]}",
            f"locked version {record.locked_version[:12]}",
            f"{number} visits recorded under it",
        )
        for version, number in sorted(visits_by_version.items())
        if version != record.locked_version
    ] + amendment_deviations(record)


def amendment_deviations(record: TrialHistory) -> list[Deviation]:
    """One deviation per amendment: when, what changed and the reason given (who made it is
    in the audit log, not in the public report)."""
    return [
        Deviation(
            "amendment",
            f"version {amendment.version[:12]} ({amendment.amended_at:%Y-%m-%d %H:%M} UTC)",
            f"version {amendment.previous_version[:12]}",
            f"changed: {', '.join(amendment.changes)}; reason: "
            + (amendment.reason or "none given (no arm, material, outcome or plan changed)"),
        )
        for amendment in record.amendments
    ]


def looks_while_running(record: TrialHistory, now: datetime | None) -> int:
    """Looks before the trial stopped: the recorded ones, plus this one when ``now`` is given."""
    moments: Sequence[datetime] = (*record.looks, *((now,) if now is not None else ()))
    end = record.stopped_at
    return sum(1 for moment in moments if end is None or moment < end)


# -- the data against the plan: how many visits, and when ------------------------------------


def data_against_plan(
    preregistered: Trial,
    record: TrialHistory,
    counts: Counts,
    arm_ids: Sequence[str],
    threshold: int,
) -> tuple[list[Deviation], list[str]]:
    """Sample size and dates of the data against the locked plan: deviations, then notes.

    See :func:`sample_size_deviations` (a running trial below plan is only a note) and
    :func:`schedule_deviations` (visits before the planned start or after the planned end).
    """
    size, size_notes = sample_size_deviations(
        preregistered.analysis.planned_sample_size,
        analysed_visits(counts, arm_ids),
        running=record.status == "running",
    )
    days, unknown = visits_by_day(counts)
    schedule = preregistered.schedule
    dates, date_notes = schedule_deviations(schedule.start, schedule.end, days, threshold, unknown)
    return [*size, *dates], [*size_notes, *date_notes]


def analysed_visits(counts: Counts, arm_ids: Sequence[str]) -> int:
    """Randomized visits of the declared arms that did not opt out (the modified ITT total)."""
    by_arm = counts.by("arm")
    kept = by_arm[by_arm.index.isin(list(arm_ids))]
    return int(kept["n"].sum() - kept["opted_out"].sum())


def sample_size_deviations(
    planned: int,
    analysed: int,
    *,
    running: bool,
    tolerance: float = SAMPLE_SIZE_TOLERANCE,
) -> tuple[list[Deviation], list[str]]:
    """More or fewer analysed visits than planned, beyond ``± tolerance`` of the plan.

    More than planned is always a deviation (the plan said when to stop). Fewer is a deviation
    once the trial has ended; while it runs, it is the expected state of an interim look and
    only a note. Returns the deviations and the notes.
    """
    low, high = planned * (1 - tolerance), planned * (1 + tolerance)
    share = analysed / planned
    planned_text = (
        f"{planned:,} analysed visits (±{tolerance:.0%} tolerated: "
        f"{math.ceil(low):,} to {math.floor(high):,})"
    )
    actual = f"{analysed:,} ({share:.0%} of the plan)"
    if analysed > high:
        more = Deviation("sample size", "more analysed visits than planned", planned_text, actual)
        return [more], []
    if analysed >= low:
        return [], []
    if running:
        note = (
            f"The trial is still running: {analysed:,} of {planned:,} planned visits analysed "
            f"({share:.0%}). Fewer visits than planned is expected before the end, so it is "
            "not a deviation; it becomes one if the trial ends more than "
            f"{tolerance:.0%} short of the plan."
        )
        return [], [note]
    actual += "; the trial is not running"
    return [
        Deviation("sample size", "fewer analysed visits than planned", planned_text, actual)
    ], []


def visits_by_day(counts: Counts) -> tuple[dict[date, int], int]:
    """Randomized visits per UTC day, and the visits whose day is unknown (merged export cells).

    The cells carry the Monday of the visit's ISO week and its weekday, so the day is exact.
    """
    days: dict[date, int] = {}
    unknown = 0
    for (week, weekday), row in counts.by("week", "weekday").iterrows():
        visits = int(row["n"])
        if not visits:
            continue
        try:
            day = date.fromisoformat(str(week)) + timedelta(days=int(weekday))
        except ValueError:  # "*": merged in an export file
            unknown += visits
            continue
        days[day] = days.get(day, 0) + visits
    return days, unknown


def schedule_deviations(
    start: date,
    end: date,
    days: Mapping[date, int],
    threshold: int,
    unknown: int = 0,
) -> tuple[list[Deviation], list[str]]:
    """Visits before the planned start or after the planned end (UTC days; end inclusive).

    A count from 1 to ``threshold - 1`` is shown as ``<threshold`` (it is a count by time, like
    the balance tables). Visits whose day is unknown (merged export cells) are noted.
    """
    found = []
    early = {day: n for day, n in days.items() if day < start}
    late = {day: n for day, n in days.items() if day > end}
    if early:
        found.append(
            Deviation(
                "visits outside the schedule",
                "visits before the planned start",
                f"from {start.isoformat()} (UTC days)",
                f"{_count(sum(early.values()), threshold)} visits on "
                f"{_span(min(early), max(early))}",
            )
        )
    if late:
        found.append(
            Deviation(
                "visits outside the schedule",
                "visits after the planned end",
                f"until {end.isoformat()} (UTC days)",
                f"{_count(sum(late.values()), threshold)} visits on {_span(min(late), max(late))}",
            )
        )
    notes = []
    if unknown:
        notes.append(
            f"{_count(unknown, threshold)} visits are in export cells merged over time, so "
            "whether they fall inside the planned schedule is not known."
        )
    return found, notes


def _count(value: int, threshold: int) -> str:
    return f"<{threshold}" if 0 < value < threshold else f"{value:,}"


def _span(first: date, last: date) -> str:
    if first == last:
        return first.isoformat()
    return f"{(last - first).days + 1} days from {first.isoformat()} to {last.isoformat()}"
