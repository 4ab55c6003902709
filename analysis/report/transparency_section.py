"""The transparency section's blocks. Written for every report; no option turns it off."""

from __future__ import annotations

from collections.abc import Mapping

from analysis.report.blocks import (
    Block,
    Bullets,
    Heading,
    Paragraph,
    Picture,
    Quote,
    Table,
    percent,
)
from analysis.results import IncompleteReport, Report
from analysis.transparency import ArmShown, MediaFile

#: The heading, and the sentence under it, that every rendering must contain (writers check).
TRANSPARENCY_HEADING = "Transparency"
TRANSPARENCY_NOTE = (
    "This section is always written by nudgelab from the trial files stored in the "
    "event log; a trial file cannot switch it off."
)


def transparency_blocks(report: Report) -> list[Block]:
    """The transparency section; part of every rendering."""
    t = report.transparency
    pre = t.preregistration
    blocks: list[Block] = [
        Heading(2, TRANSPARENCY_HEADING, "transparency"),
        Paragraph(TRANSPARENCY_NOTE, "note"),
        Heading(3, "Who ran this trial and why", "who"),
        Bullets(
            (
                f"Purpose: {t.purpose}",
                f"Organisation: {t.organisation}",
                f"Contact: {t.contact}; data protection: {t.privacy_contact}",
                f"Public register: {t.register_url}",
                f"Domain sensitivity: {t.domain_sensitivity}"
                + (f" ({t.sensitivity_reason})" if t.sensitivity_reason else "")
                + (
                    "; elements refused in high-sensitivity trials are allowed here"
                    if t.domain_sensitivity == "low"
                    else ""
                ),
                t.no_individual_decisions,
                f"Privacy statement of the trial: {t.privacy_statement}",
            )
        ),
        Heading(3, "The disclosure every visitor saw", "disclosure"),
        Paragraph("Identical on every arm, control included; exposures record its hash."),
    ]
    for language, version, text in t.disclosures:
        blocks.append(Quote(text, language, f"Disclosure ({language}, version {version})"))
    blocks.append(Heading(3, "What each arm showed", "arms"))
    blocks.append(
        Table(
            ("Arm", "Element", "Nudge strength", "Control", "Weight"),
            tuple(
                (a.id, a.element, a.strength, "yes" if a.control else "no", str(a.weight))
                for a in t.arms
            ),
        )
    )
    media = {item.sha256: item for item in t.media}
    for arm in t.arms:
        blocks += arm_blocks(arm, f"Arm {arm.id}", f"arm-{arm.id}", media)
    if t.other_versions:
        blocks += [
            Heading(3, "What visitors saw under later versions", "later-versions"),
            Paragraph(
                "Above is the locked (pre-registered) version. Visits were also recorded "
                "under the versions below; each lists what it showed differently.",
                "warning",
            ),
        ]
    for shown in t.other_versions:
        short = shown.version[:12]
        blocks += [
            Heading(4, f"Version {short}: {shown.visits:,} visits", f"version-{short}"),
            Paragraph(f"{shown.note}."),
        ]
        for language, version, text in shown.disclosures:
            blocks.append(Quote(text, language, f"Disclosure ({language}, version {version})"))
        for arm in shown.arms:
            blocks += arm_blocks(
                arm, f"Version {short}, arm {arm.id}", f"v{short}-arm-{arm.id}", media
            )
    locked = (
        f"locked version {pre.locked_version} at {pre.locked_at:%Y-%m-%d %H:%M} UTC"
        if pre.locked_version and pre.locked_at
        else "NOT LOCKED: the trial was never started, so no version was pre-registered"
    )
    expected = "none" if pre.expected_effect is None else f"{pre.expected_effect * 100:+.2f} pp"
    blocks += [
        Heading(3, "Pre-registration", "preregistration"),
        Bullets(
            (
                f"Lock: {locked}.",
                f"Primary outcome: {pre.primary_outcome}.",
                *(f"Outcome {text}" for text in pre.outcomes),
                *(f"Hypothesis {text}" for text in pre.hypotheses),
                f"Alpha {pre.alpha:g}, correction {pre.correction}, planned sample size "
                f"{pre.planned_sample_size:,}, baseline rate {percent(pre.baseline_rate)}, "
                f"pre-registered effect {expected}, power {pre.power:.0%}.",
                "Subgroups: "
                + (", ".join(pre.subgroups) or "none")
                + "; confirmatory: "
                + (", ".join(pre.confirmatory_subgroups) or "none")
                + ".",
                f"Schedule: {pre.schedule}.",
            )
        ),
        Heading(3, "Deviations from the plan", "deviations"),
    ]
    if t.deviations:
        blocks.append(
            Table(
                ("Kind", "What", "Planned", "Actual"),
                tuple((d.kind, d.what, d.planned, d.actual) for d in t.deviations),
            )
        )
    else:
        blocks.append(Paragraph("None: the analysis followed the locked plan."))
    blocks += [
        Heading(3, "Exclusions", "exclusions"),
        Bullets(t.exclusions or ("None.",)),
        Heading(3, "Looks, software, data and retention", "audit"),
        Bullets(
            (
                f"Results were looked at {t.looks} time{'s' if t.looks != 1 else ''}, "
                f"{t.looks_while_running} of them "
                f"before the trial was stopped ({t.looks_note}).",
                f"Software: nudgelab {t.software_version}.",
                f"Data analysed: {t.data_source}; SHA-256 {t.data_hash}.",
                f"Raw events are kept {t.retention_days} days and deleted on "
                f"{t.deletion_date.isoformat()} ({t.deletion_basis}).",
                *t.statistical_notes,
                f"Tables by location, language or time show counts from 1 to "
                f"{report.options.small_cell_threshold - 1} as "
                f"<{report.options.small_cell_threshold}; totals per arm are exact.",
            )
        ),
    ]
    return blocks


def arm_blocks(
    arm: ArmShown, label: str, anchor: str, media: Mapping[str, MediaFile] | None = None
) -> list[Block]:
    """One arm as shown: its materials in every language, its pictures (from the stored bytes
    in ``media``) and narrations, claims, figure and messenger."""
    blocks: list[Block] = [Heading(4, f"{label} ({arm.element}, strength {arm.strength})", anchor)]
    for language, title, body in arm.materials:
        blocks.append(Quote(f"{title}\n\n{body}", language, f"Material ({language})"))
    blocks += media_blocks(arm, media or {})
    extras = [f"Claim: {claim}" for claim in arm.claims]
    if arm.figure:
        extras.append(f"Figure: {arm.figure}")
    if arm.messenger:
        extras.append(f"Messenger: {arm.messenger}")
    if extras:
        blocks.append(Bullets(tuple(extras)))
    return blocks


def check_rendering(text: str, report: Report, writer: str) -> None:
    """Refuse a rendering that lacks the transparency section, an arm or an outcome."""
    if writer == "JSON":
        needles = ['"transparency"', *(f'"id": "{arm}"' for arm in report.arm_ids)]
    else:
        needles = [TRANSPARENCY_NOTE, *(f"Arm {arm} (" for arm in report.arm_ids)]
    needles += [report.transparency.data_hash, *(outcome.id for outcome in report.outcomes)]
    missing = [needle for needle in needles if needle not in text]
    if missing:
        raise IncompleteReport(f"{writer} rendering lacks {missing}")


def media_blocks(arm: ArmShown, media: Mapping[str, MediaFile]) -> list[Block]:
    """An arm's pictures as pinned (embedded from the stored bytes) and its narrations (what
    each says, with the SHA-256 of the sound)."""
    blocks: list[Block] = []
    for item in arm.media:
        stored = media.get(item.sha256 or "")
        pinned = f"{item.file}, SHA-256 {item.sha256}"
        if item.kind == "narration":
            label = f"Narration ({item.language}; {pinned}; {item.note})"
            blocks.append(Quote(item.text, item.language or "en", label))
        else:
            caption = f"{item.kind.capitalize()}: {pinned}; {item.note}"
            if stored is None:
                caption += " (its bytes are not stored with the trial version)"
            blocks.append(
                Picture(stored.media_type if stored else "", stored.data if stored else "",
                        item.text, caption)
            )  # fmt: skip
    return blocks
