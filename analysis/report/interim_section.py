"""The report's interim section: the looks taken, their boundaries, each comparison's decision.

Shown whenever :func:`analysis.interim.interim_analysis` made a value: for a trial with a
pre-registered interim plan (the sequential decisions and repeated confidence intervals), and
for looks at a running trial without one (the looks counted and what naive peeking costs). The
method is in ``docs/statistics.md`` ("Interim looks: group-sequential analysis").
"""

from __future__ import annotations

import math

from analysis.interim import ComparisonStatus, InterimAnalysis, InterimLook
from analysis.report.blocks import (
    Block,
    Heading,
    Paragraph,
    Table,
    interval,
    number,
    p_value,
    points,
)
from analysis.report.summary import arm_label
from analysis.results import Report

DECISIONS = {
    "continue": "continue",
    "stop for efficacy": "stop for efficacy",
    "stop: not significant": "final: not significant",
}


def interim_blocks(report: Report) -> list[Block]:
    """The interim section, or nothing when the report has no interim value."""
    interim = report.interim
    if interim is None:
        return []
    if not interim.planned:
        return _unplanned(interim)
    return _planned(report, interim)


def _boundary(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return "never (no alpha spent yet)" if math.isinf(value) else f"{value:.3f}"


def _when(look: InterimLook) -> str:
    return "–" if look.at is None else f"{look.at:%Y-%m-%d %H:%M}"


def _stage(interim: InterimAnalysis) -> str:
    now = interim.current
    assert now is not None
    planned = ", ".join(f"{t:.0%}" for t in interim.planned_fractions)
    kind = "the final analysis" if interim.final else "an interim analysis"
    return (
        f"This is look {now.look}, {kind}: {number(now.visits)} analysed visits of "
        f"{number(interim.planned_sample_size)} planned (information fraction "
        f"{now.fraction:.3f}). Looks planned at {planned} of the planned visits; the boundaries "
        "below are computed from the information actually reached at every look taken, so looks "
        "taken earlier, later or more often than planned keep the error at alpha."
    )


def _look_rows(interim: InterimAnalysis) -> tuple[tuple[str, ...], ...]:
    return tuple(
        (
            str(look.look),
            _when(look),
            number(look.visits),
            f"{look.fraction:.3f}",
            _boundary(look.z_boundary),
            p_value(look.p_boundary),
            f"{look.alpha_cumulative:.5f}",
            look.basis,
        )
        for look in interim.looks
    )


def _decision(status: ComparisonStatus) -> str:
    decision = DECISIONS.get(status.decision, status.decision)
    if status.crossed_at is not None:
        side = "higher" if (status.z or 0.0) > 0 else "lower"
        return f"{decision} at look {status.crossed_at} ({side} than control)"
    return decision


def _comparison_rows(report: Report, interim: InterimAnalysis) -> tuple[tuple[str, ...], ...]:
    return tuple(
        (
            arm_label(report, status.arm),
            points(status.difference),
            interval(status.rci_low, status.rci_high),
            "–" if status.z is None else f"{status.z:+.3f}",
            p_value(status.p),
            _boundary(status.z_boundary),
            "–" if status.level is None else f"{status.level:.4g}",
            p_value(status.p_boundary),
            _decision(status),
        )
        for status in interim.comparisons
    )


def _planned(report: Report, interim: InterimAnalysis) -> list[Block]:
    m = interim.comparisons_in_family
    confidence = f"{(1 - interim.family_level) * 100:.4g}%"
    blocks: list[Block] = [
        Heading(2, "Interim analysis", "interim"),
        Paragraph(
            f"Pre-registered group-sequential plan on the primary outcome {interim.outcome}, "
            f"alpha {interim.alpha:g}: {interim.procedure}"
        ),
        Paragraph(_stage(interim)),
        Table(
            (
                "Look",
                "Time (UTC)",
                "Analysed visits",
                "Information fraction",
                f"|z| boundary (one comparison, alpha {interim.family_level:.4g})",
                "Nominal p boundary",
                f"Alpha spent by this look (of {interim.alpha:g})",
                "Counts",
            ),
            _look_rows(interim),
            "Every look at the results while the trial ran, and this one. A comparison stops "
            "for efficacy when its |z| reaches the boundary of its level; the boundary shown is "
            f"that of the first Holm step (alpha/{m}) and the alpha spent is the family's.",
        ),
        Table(
            (
                "Arm",
                "Difference vs control",
                f"Repeated {confidence} CI",
                "z",
                "p (nominal)",
                "|z| boundary",
                "Level tested",
                "p boundary",
                "Decision",
            ),
            _comparison_rows(report, interim),
            f"Each arm against the control on {interim.outcome} at this look. z: pooled "
            "two-proportion z-statistic; the decision compares |z| with the boundary of the level "
            "at which the comparison was tested (alpha divided by the comparisons still open). "
            f"Repeated confidence interval: difference ± boundary × unpooled standard error, at "
            f"the family level alpha/{m}; over all looks and comparisons these intervals cover the "
            "true differences together with probability at least "
            f"{1 - interim.alpha:.0%}, whenever the trial stops. They replace the fixed-design "
            "intervals of the results tables while the trial runs.",
        ),
    ]
    blocks += [Paragraph(note, "note") for note in interim.notes]
    if interim.naive_error is not None and len(interim.looks) > 1:
        blocks.append(
            Paragraph(
                f"For comparison: stopping at the first nominal p < {interim.alpha:g} over these "
                f"{len(interim.looks)} looks would give a false-positive rate of "
                f"{interim.naive_error:.3f} per comparison instead of {interim.alpha:g}.",
                "note",
            )
        )
    return blocks


def _unplanned(interim: InterimAnalysis) -> list[Block]:
    rows = tuple(
        (str(look.look), _when(look), number(look.visits), look.basis) for look in interim.looks
    )
    blocks: list[Block] = [
        Heading(2, "Looks at a running trial", "interim"),
        Paragraph(
            "The pre-registered plan has no interim looks (analysis.interim), so this report is "
            "a fixed-design analysis: its p-values and intervals assume one look at the end. "
            "Every look taken while the trial ran is counted below.",
        ),
        Table(("Look", "Time (UTC)", "Analysed visits", "Counts"), rows),
    ]
    blocks += [Paragraph(warning, "warning") for warning in interim.warnings]
    return blocks
