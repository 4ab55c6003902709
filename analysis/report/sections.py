"""The report's content and order, as blocks: flow, results, forest, checks, power, transparency.

Order (issue 4): participant flow; primary outcome, then secondary outcomes; forest plot;
checks; power; transparency. Warnings are repeated in a box under the title.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.report.blocks import (
    Block,
    FigureRef,
    Heading,
    Paragraph,
    Table,
    interval,
    number,
    p_value,
    percent,
    points,
    ratio,
    small,
    statistic,
)
from analysis.report.check_sections import checks, power
from analysis.report.family_intervals import (
    difference_heading,
    family_caption,
    family_cell,
    family_heading,
)
from analysis.report.interim_section import interim_blocks
from analysis.report.summary import arm_label, summary_blocks
from analysis.report.transparency_section import transparency_blocks
from analysis.results import OutcomeResult, Report, SubgroupResult, is_small

if TYPE_CHECKING:
    from collections.abc import Sequence

    from analysis.adjust import AdjustedEstimate
    from experiments.store import Pause

CORRECTION_NAMES = {"holm": "Holm", "bonferroni": "Bonferroni", "bh": "Benjamini–Hochberg"}
TEST_NAMES = {"z": "z-test", "exact-z": "exact unconditional z", "fisher": "Fisher exact"}


def document(report: Report) -> list[Block]:
    """All blocks of the report in their fixed order."""
    return [
        *header(report),
        *flow(report),
        *results(report),
        *interim_blocks(report),
        *forest(report),
        *checks(report),
        *power(report),
        *transparency_blocks(report),
    ]


def all_warnings(report: Report) -> list[str]:
    """Every warning of the report once, in order of appearance."""
    seen: list[str] = []
    groups = [report.warnings, report.checks.warnings, report.power.warnings]
    groups += [outcome.warnings for outcome in report.outcomes]
    for group in groups:
        seen += [w for w in group if w not in seen]
    return seen


def header(report: Report) -> list[Block]:
    """Title, one-line summary and the warnings box."""
    o = report.options
    blocks: list[Block] = [
        Heading(1, f"Trial report: {report.title}", "top"),
        Paragraph(
            f"Trial `{report.trial_id}`; generated {report.generated_at:%Y-%m-%d %H:%M} UTC "
            f"from the {o.source}; {number(report.flow.total.randomized)} randomized visits, "
            f"{number(report.flow.total.analysed)} analysed. Correction "
            f"{CORRECTION_NAMES.get(o.correction, o.correction)}, alpha {o.alpha:g}, "
            f"difference intervals {o.interval}."
        ),
        *summary_blocks(report),
    ]
    warnings = all_warnings(report)
    if warnings:
        alarm = any(w.startswith("SAMPLE RATIO MISMATCH") for w in warnings)
        blocks.append(Heading(2, "Warnings", "warnings"))
        blocks += [
            Paragraph(w, "alarm" if alarm and i == 0 else "warning")
            for i, w in enumerate(sorted(warnings, key=lambda w: not w.isupper()))
        ]
    return blocks


def pause_sentence(pauses: Sequence[Pause]) -> str:
    """When the trial was paused, and what a pause means for the flow."""
    spans = [
        f"from {p.paused_at:%Y-%m-%d %H:%M} to "
        + (f"{p.resumed_at:%Y-%m-%d %H:%M} UTC" if p.resumed_at else "now (still paused)")
        for p in pauses
    ]
    return (
        f"The trial was paused {len(pauses)} time{'s' if len(pauses) != 1 else ''}: "
        + "; ".join(spans)
        + ". While paused, kiosks showed the control arm's plain information with the "
        "disclosure, randomized nobody and stored nothing for the trial, so no visit above "
        "started in a pause."
    )


def flow(report: Report) -> list[Block]:
    """Participant flow: figure, table and the modified intention-to-treat rule."""
    rows = [
        (
            arm_label(report, a.arm) if a.arm in report.arm_ids else a.arm,
            number(a.randomized),
            number(a.exposed),
            number(a.not_exposed),
            number(a.opted_out),
            number(a.analysed),
        )
        for a in (*report.flow.arms, report.flow.total)
    ]
    blocks: list[Block] = [
        Heading(2, "Participant flow", "flow"),
        FigureRef(
            "flow",
            "Participant flow: visits randomized → exposed → opted out → analysed (modified "
            "intention to treat: opt-outs excluded), per arm.",
            "CONSORT-style flow diagram with the numbers of the table below",
        ),
        Table(
            ("Arm", "Randomized", "Exposed", "Not exposed", "Opted out", "Analysed"), tuple(rows)
        ),
        Paragraph(
            "Modified intention to treat (opt-outs excluded): visits are analysed in the arm "
            "they were randomized to, whether or not they saw the material (not exposed visits "
            "are included). Visits that opted out are excluded from every outcome analysis: "
            "the visitor withdrew consent and the visit's outcome events were deleted, so only "
            "their number is kept here. This is not a full intention-to-treat analysis; "
            "compare the opt-outs per arm in the checks.",
            "note",
        ),
    ]
    if report.flow.pauses:
        blocks.append(Paragraph(pause_sentence(report.flow.pauses), "note"))
    if report.flow.not_randomized:
        blocks.append(
            Paragraph(
                f"{number(report.flow.not_randomized)} visits have no assignment (not randomized) "
                "and are not analysed.",
                "warning",
            )
        )
    return blocks


def results(report: Report) -> list[Block]:
    """Every outcome, the pre-registered primary first."""
    blocks: list[Block] = [Heading(2, "Results", "results")]
    for outcome in report.outcomes:
        blocks += outcome_blocks(report, outcome)
    return blocks


def outcome_blocks(report: Report, outcome: OutcomeResult) -> list[Block]:
    """Results table, omnibus test, adjusted estimates and subgroups of one outcome."""
    kind = "Primary outcome" if outcome.primary else "Secondary outcome"
    blocks: list[Block] = [
        Heading(3, f"{kind}: {outcome.id}", f"outcome-{outcome.id}"),
        Paragraph(f"{outcome.description} Event `{outcome.event}`; {outcome.status}."),
    ]
    comparison = outcome.comparison
    if comparison is None:
        rows = tuple(
            (t.arm, number(t.n), number(t.successes), "–", "–", "–", "–", "–", "–", "–")
            for t in outcome.totals
        )
        blocks.append(Table(("Arm", "Analysed", "Successes", *(["–"] * 7)), rows))
        return blocks + [Paragraph(w, "warning") for w in outcome.warnings]
    level = f"{1 - comparison.alpha:.0%}"
    correction = CORRECTION_NAMES.get(comparison.correction, comparison.correction)
    elements = {arm.id: arm.element for arm in report.transparency.arms}
    family = family_heading(comparison)
    rows = []
    for e in comparison.arms:
        control = e.is_control
        rows.append(
            (
                arm_label(report, e.arm) + (" (control)" if control else ""),
                elements.get(e.arm, ""),
                number(e.n),
                number(e.successes),
                f"{percent(e.rate)} {interval(e.rate_ci_low, e.rate_ci_high)}",
                "–" if control else f"{points(e.diff)} {interval(e.diff_ci_low, e.diff_ci_high)}",
                *([family_cell(e)] if family else []),
                "–"
                if control
                else ratio(e.relative_risk, e.relative_risk_ci_low, e.relative_risk_ci_high),
                "–" if control else ratio(e.odds_ratio, e.odds_ratio_ci_low, e.odds_ratio_ci_high),
                "–" if control or e.test is None else TEST_NAMES.get(e.test, str(e.test)),
                "–" if control else p_value(e.p_value),
                "–" if control else p_value(e.p_adjusted),
            )
        )
    blocks.append(
        Table(
            (
                "Arm",
                "Element",
                "Analysed",
                "Successes",
                f"Rate (Clopper-Pearson {level} CI)",
                difference_heading(comparison),
                *([family] if family else []),
                f"Risk ratio ({level} CI)",
                f"Odds ratio ({level} CI)",
                "Test",
                "p",
                f"p adj. ({correction})",
            ),
            tuple(rows),
            f"{outcome.id}: each arm against {comparison.control}; rates and differences in "
            "percent and percentage points; relative-risk intervals on the log scale (Katz), "
            "odds-ratio intervals by Woolf's method. " + family_caption(comparison),
        )
    )
    blocks.append(
        Paragraph(
            f"Omnibus chi-square test of equal rates across all arms: chi² = "
            f"{statistic(comparison.omnibus_chi2)}, df = {comparison.omnibus_df}, "
            f"p = {p_value(comparison.omnibus_p)}."
        )
    )
    for warning in (*comparison.warnings, *(w for e in comparison.arms for w in e.warnings)):
        blocks.append(Paragraph(warning, "note"))
    blocks += adjusted_blocks(report, outcome)
    for subgroup_dimension in dict.fromkeys(s.dimension for s in outcome.subgroups):
        blocks += subgroup_blocks(
            report, outcome, [s for s in outcome.subgroups if s.dimension == subgroup_dimension]
        )
    return blocks + [Paragraph(w, "warning") for w in outcome.warnings]


MODEL_NAMES = {
    "lpm": "Linear probability model",
    "logit": "Logistic regression (average marginal effect)",
}


def adjusted_blocks(report: Report, outcome: OutcomeResult) -> list[Block]:
    """Covariate-adjusted effects of one outcome (if any were computed)."""
    if not outcome.adjusted:
        return []
    rows = tuple(
        (
            arm_label(report, a.arm),
            f"{points(a.effect)} {interval(a.ci_low, a.ci_high)}",
            p_value(a.p_value),
            str(a.se_type) + (f", t with {a.df:.1f} df" if a.df else ""),
            number(a.n),
        )
        for a in outcome.adjusted
    )
    first = outcome.adjusted[0]
    notes = list(dict.fromkeys(note for a in outcome.adjusted for note in a.warnings))
    return [
        Heading(4, f"Covariate-adjusted estimates: {outcome.id}", f"adjusted-{outcome.id}"),
        Table(
            ("Arm", "Effect vs control (CI)", "p", "Standard errors", "n in model"),
            rows,
            adjusted_caption(report, first),
        ),
        *[Paragraph(note, "note") for note in notes],
    ]


def adjusted_caption(report: Report, first: AdjustedEstimate) -> str:
    """Which estimator the adjusted table shows, on which terms, and why (the design)."""
    terms = [" × ".join(first.strata) + " (stratum)"] if first.strata else []
    terms += list(first.covariates)
    adjusted = ", ".join(terms) or "no covariate (none varies)"
    method = first.estimator or MODEL_NAMES.get(str(first.model), str(first.model))
    why = report.options.adjustment_reason
    return (
        f"{method[0].upper()}{method[1:]}. Adjusted for {adjusted}"
        + (f"; {why}" if why else "")
        + f". {1 - report.options.alpha:.0%} intervals and p-values per arm, not corrected for "
        "multiple comparisons; a check on the unadjusted estimates above, not a replacement."
    )


INTERVAL_NAMES = {"newcombe": "Newcombe hybrid score", "wald": "Wald"}
SUPPRESSED = "suppressed (small cell)"


def _successes(n: int, successes: int, k: int) -> str:
    """Successes in a subgroup row; few failures (1 … k-1) are hidden as ``>n-k``."""
    if not is_small(n, k) and not is_small(successes, k) and is_small(n - successes, k):
        return f">{n - k:,}"
    return small(successes, k)


def subgroup_caption(report: Report, groups: list[SubgroupResult]) -> str:
    """What the numbers of a subgroup table are, how they were tested, and what they are not."""
    k = report.options.small_cell_threshold
    first = next((g.comparison for g in groups if g.comparison is not None), None)
    alpha = first.alpha if first is not None else report.options.alpha
    method = first.interval if first is not None else report.options.interval
    correction = first.correction if first is not None else report.options.correction
    exact_below = first.exact_below if first is not None else 5
    small_test = (
        "Fisher's exact test"
        if first is not None and first.small_sample == "fisher"
        else "its exact unconditional version (Suissa–Shuster, Berger–Boos)"
    )
    label = groups[0].label
    if correction == "none":
        adjusted = '"p adjusted" is not adjusted (correction none): it equals p. '
    else:
        adjusted = (
            f'"p adjusted" is {CORRECTION_NAMES.get(correction, correction)}-adjusted across '
            "the arms compared with the control within that subgroup level only (arms without "
            "analysed visits in the level are left out), not across levels, subgroup variables "
            "or outcomes. "
        )
    if groups[0].confirmatory:
        standing = "This subgroup variable was pre-registered as confirmatory. "
    else:
        standing = (
            "Exploratory: these subgroup results generate hypotheses and are not confirmatory "
            "evidence of an effect in any subgroup. "
        )
    return (
        f"{label.capitalize()} subgroup analysis. Difference: the arm's rate minus the control's "
        f"rate in the same level, in percentage points, with a two-sided {1 - alpha:.0%} "
        f"{INTERVAL_NAMES.get(method, method)} interval (per comparison, not adjusted for "
        "multiplicity). p: two-sided, from the test named in the row (pooled two-proportion "
        f"z-test, or {small_test} when an expected cell count of the arm-vs-control 2×2 table "
        f"is below {exact_below:g}). "
        + adjusted
        + standing
        + f"Small cells: counts from 1 to {k - 1} are shown as <{k} (1 to {k - 1} failures by "
        f"showing the successes as >n−{k}); when the arm or the control of a level has such a "
        "count, that row's difference, test "
        f'and p-values are not shown ("{SUPPRESSED}"), because they would give the hidden '
        "count back."
    )


def subgroup_blocks(
    report: Report, outcome: OutcomeResult, groups: list[SubgroupResult]
) -> list[Block]:
    """One subgroup variable of one outcome; small counts as ``<k``, their effects withheld."""
    k = report.options.small_cell_threshold
    label = groups[0].label
    rows = []
    for group in groups:
        if group.comparison is None:
            rows += [
                (
                    group.level,
                    arm_label(report, t.arm),
                    small(t.n, k),
                    _successes(t.n, t.successes, k),
                    "–",
                    "–",
                    "–",
                    "–",
                )
                for t in group.totals
            ]
            continue
        withheld = group.suppressed_arms(k)
        for e in group.comparison.arms:
            name = arm_label(report, e.arm)
            counts = (group.level, name, small(e.n, k), _successes(e.n, e.successes, k))
            if e.is_control:
                rows.append((*counts, "control", "–", "–", "–"))
            elif e.arm in withheld:
                rows.append((*counts, SUPPRESSED, "–", "–", "–"))
            elif e.diff is None:  # no analysed visits in this level
                rows.append((*counts, "–", "–", "–", "–"))
            else:
                rows.append(
                    (
                        *counts,
                        f"{points(e.diff)} {interval(e.diff_ci_low, e.diff_ci_high)}",
                        "–" if e.test is None else TEST_NAMES.get(e.test, str(e.test)),
                        p_value(e.p_value),
                        p_value(e.p_adjusted),
                    )
                )
    dimension = groups[0].dimension
    notes = [f"{g.level}: {g.error}" for g in groups if g.error]
    level = f"{1 - report.options.alpha:.0%}"
    return [
        Heading(
            4,
            f"Subgroups by {dimension} ({label}): {outcome.id}",
            f"subgroups-{outcome.id}-{dimension}",
        ),
        Table(
            (
                "Subgroup",
                "Arm",
                "Analysed",
                "Successes",
                f"Difference vs control, pp ({level} CI)",
                "Test",
                "p (two-sided)",
                "p adjusted (within level)",
            ),
            tuple(rows),
            subgroup_caption(report, groups),
        ),
        *[Paragraph(note, "note") for note in notes],
    ]


def forest(report: Report) -> list[Block]:
    """The forest plot of all outcomes."""
    return [
        Heading(2, "Effects at a glance", "forest"),
        FigureRef(
            "forest",
            "Forest plot: difference from control in percentage points with per-comparison "
            "confidence intervals, not adjusted for multiple comparisons (the simultaneous, "
            "family-level intervals are in the results tables), per outcome and arm (by "
            "title, id in small print). Blue circles: the "
            "unadjusted estimates, filled when the difference is significant after the "
            "correction for multiple comparisons, hollow when it is not; grey squares: "
            "covariate-adjusted estimates.",
            "Forest plot of the differences listed in the results tables",
        ),
    ]
