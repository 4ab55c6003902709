"""The compact terminal summary printed by ``nudgelab analyze``."""

from __future__ import annotations

import re

from analysis.report.blocks import interval, number, p_value, percent, points
from analysis.report.sections import all_warnings
from analysis.report.summary import summarize
from analysis.results import Report


def render_summary(report: Report, max_warnings: int = 6) -> str:
    """A few lines: flow totals, the plain-language headline, each outcome's effects, checks,
    warnings (arms by id; the headline names them by title with the id in brackets)."""
    flow, o = report.flow.total, report.options
    lines = [
        f"{report.trial_id}: {number(flow.randomized)} randomized, {number(flow.opted_out)} "
        f"opted out, {number(flow.analysed)} analysed ({o.correction}, alpha {o.alpha:g})",
        "summary: " + re.sub(r"`([^`]+)`", r"[\1]", summarize(report).headline),
    ]
    for outcome in report.outcomes:
        kind = "primary" if outcome.primary else "secondary"
        lines.append(f"{kind} outcome {outcome.id}:")
        if outcome.comparison is None:
            lines.append("  not estimable: " + "; ".join(outcome.warnings))
            continue
        for e in outcome.comparison.arms:
            head = f"  {e.arm:<18} {number(e.n):>10} {percent(e.rate):>7}"
            if e.is_control:
                lines.append(head + "  (control)")
            else:
                lines.append(
                    f"{head}  {points(e.diff):>9} {interval(e.diff_ci_low, e.diff_ci_high):<16}"
                    f" p_adj {p_value(e.p_adjusted)}"
                )
    srm = report.checks.sample_ratio
    share = report.checks.quality.disclosure_share
    lines.append(
        f"checks: sample ratio {'MISMATCH' if srm.mismatch else 'ok'} (p {p_value(srm.p_value)});"
        f" current disclosure on {percent(share, 1)} of exposures;"
        f" {len(report.transparency.deviations)} deviations; looks {report.transparency.looks}"
    )
    warnings = all_warnings(report)
    for warning in warnings[:max_warnings]:
        lines.append(f"warning: {warning}")
    if len(warnings) > max_warnings:
        lines.append(f"... and {len(warnings) - max_warnings} more warnings in the report")
    return "\n".join(lines)
