"""Blocks of the checks and power sections of the report."""

from __future__ import annotations

from analysis.report.blocks import (
    Block,
    Bullets,
    Heading,
    Paragraph,
    Table,
    number,
    p_value,
    percent,
    points,
    small,
)
from analysis.report.summary import arm_label
from analysis.results import Report


def checks(report: Report) -> list[Block]:
    """Sample ratio, opt-outs, data quality and balance tables."""
    c = report.checks
    k = report.options.small_cell_threshold
    srm = c.sample_ratio
    weights = {arm.id: arm.weight for arm in report.transparency.arms}
    verdict = (
        f"SAMPLE RATIO MISMATCH (p = {p_value(srm.p_value)} < {srm.threshold:g})"
        if srm.mismatch
        else f"no sample-ratio mismatch (p = {p_value(srm.p_value)}; alarm below {srm.threshold:g})"
    )
    blocks: list[Block] = [
        Heading(2, "Checks", "checks"),
        Heading(3, "Sample ratio", "srm"),
        Paragraph(
            f"Chi-square test of randomized visits per arm against the allocation weights: "
            f"chi² = {srm.chi2:.3f}, df = {srm.df}: {verdict}.",
            "alarm" if srm.mismatch else "plain",
        ),
        Table(
            ("Arm", "Weight", "Expected", "Randomized"),
            tuple(
                (
                    arm_label(report, arm),
                    str(weights.get(arm, "")),
                    f"{srm.expected[arm]:,.1f}",
                    number(srm.observed[arm]),
                )
                for arm in srm.observed
            ),
        ),
        Heading(3, "Opt-outs per arm", "opt-outs"),
        Table(
            ("Arm", "Randomized", "Opted out", "Share"),
            tuple(
                (arm_label(report, arm), number(n), number(out), percent(out / n if n else None))
                for arm, (n, out) in c.opt_outs.per_arm.items()
            ),
        ),
        Paragraph(
            "Test of equal opt-out rates across arms (chi-square): "
            + (
                "not computable"
                if c.opt_outs.p_value is None
                else f"chi² = {c.opt_outs.chi2:.3f}, p = {p_value(c.opt_outs.p_value)}"
            )
            + "."
        ),
        Heading(3, "Data quality", "quality"),
        Bullets(quality_items(report)),
        Heading(3, "Covariate balance", "balance"),
        Paragraph(
            f"Randomized visits per arm by location, language and time (UTC). Counts from "
            f"1 to {k - 1} are shown as <{k}.",
            "note",
        ),
    ]
    for table in c.balance:
        rows = tuple(
            (arm_label(report, arm), *(small(v, k) for v in row))
            for arm, row in zip(table.arms, table.counts, strict=True)
        )
        test = (
            table.note
            if table.p_value is None
            else f"chi² = {table.chi2:.2f}, df = {table.df}, p = {p_value(table.p_value)}"
            + (f" ({table.note})" if table.note else "")
        )
        caption = f"Balance by {table.covariate}: {test}"
        blocks.append(Table(("Arm", *table.levels), rows, caption))
    return blocks


def quality_items(report: Report) -> tuple[str, ...]:
    """One line per data-quality count (nothing is dropped silently)."""
    q = report.checks.quality
    items = [
        f"Visits without an assignment (not analysed): {number(q.visits_without_assignment)}.",
        "Events of visits without an assignment: "
        + (
            ", ".join(f"{kind} {number(n)}" for kind, n in q.events_without_assignment.items())
            or "none"
        )
        + ".",
        "Analysed visits with an outcome but no exposure (kept in the analysis): "
        + ", ".join(f"{o} {number(n)}" for o, n in q.outcomes_without_exposure.items())
        + ".",
        f"Opted-out visits that still have outcome events: {number(q.opted_out_with_outcome)}.",
        f"Exposures carrying the current disclosure: {percent(q.disclosure_share, 1)} (target 100%)"
        + "".join(f"; {d.group} {number(d.current)} of {number(d.exposures)}" for d in q.disclosure)
        + ".",
        "Exposures showing the arm's current material: "
        + ("; ".join(f"{m.group} {percent(m.share, 1)}" for m in q.material) or "no exposures")
        + ".",
        "Visits per trial version: "
        + ("; ".join(f"{v[:12]} {number(n)}" for v, n in q.visits_by_version.items()) or "none")
        + ".",
    ]
    return tuple(items)


def power(report: Report) -> list[Block]:
    """Planned and achieved MDE and power per comparison."""
    p = report.power
    rows = tuple(
        (
            arm_label(report, r.arm),
            f"{number(r.planned_n_control)} / {number(r.planned_n_arm)}",
            points(r.planned_mde),
            percent(r.planned_power, 0),
            f"{number(r.n_control)} / {number(r.n_arm)}",
            points(r.mde),
            percent(r.power_for_expected, 0),
        )
        for r in p.arms
    )
    expected = "none pre-registered" if p.expected_effect is None else points(p.expected_effect)
    return [
        Heading(2, "Power", "power"),
        Paragraph(
            f"Two-sided test at alpha {p.alpha:g}/{p.comparisons} = {p.comparison_alpha:.4g} per "
            f"comparison, pre-registered baseline {percent(p.baseline_rate)} (observed control "
            f"rate {percent(p.observed_control_rate)}), target power {p.target_power:.0%}, "
            f"pre-registered effect {expected}. Analysed {number(p.analysed)} of "
            f"{number(p.planned_sample_size)} planned visits."
        ),
        Table(
            (
                "Arm vs control",
                "Planned n (control / arm)",
                "Planned MDE",
                "Planned power",
                "Analysed n (control / arm)",
                "MDE now",
                "Power for the pre-registered effect",
            ),
            rows,
        ),
        *[Paragraph(w, "warning") for w in p.warnings],
    ]
