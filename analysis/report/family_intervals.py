"""What the report says about its two difference intervals: unadjusted and family-level.

With a correction for multiple comparisons, the results table shows each difference with its
per-comparison (unadjusted) interval and its family-level interval: Bonferroni simultaneous
intervals for Holm and Bonferroni, Benjamini–Yekutieli FCR-adjusted intervals for the
comparisons Benjamini–Hochberg selects (:func:`analysis.corrections.family_interval_level`).
These helpers give the column heading, the cell and the caption sentence, so every rendering
(HTML, Markdown) names each interval the same way. The forest plot's caption and axis say that
its intervals are the unadjusted ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analysis.corrections import level_text
from analysis.report.blocks import interval

if TYPE_CHECKING:
    from analysis.estimate import ArmEstimate, Comparison

__all__ = ["difference_heading", "family_caption", "family_cell", "family_heading"]

FAMILY_NAMES = {
    "bonferroni": "Bonferroni",
    "benjamini-yekutieli": "Benjamini–Yekutieli FCR-adjusted",
}
INTERVAL_NAMES = {"newcombe": "Newcombe", "wald": "Wald"}


def difference_heading(comparison: Comparison) -> str:
    """Heading of the difference column: method, level, and that it is not adjusted."""
    method = INTERVAL_NAMES.get(comparison.interval, comparison.interval)
    return f"Difference ({method} {level_text(1 - comparison.alpha)} CI, unadjusted)"


def family_heading(comparison: Comparison) -> str | None:
    """Heading of the family-level interval column; ``None`` when the correction has none."""
    if comparison.simultaneous is None:
        return None
    name = FAMILY_NAMES.get(comparison.simultaneous, comparison.simultaneous)
    level = comparison.simultaneous_level
    kind = "FCR-adjusted" if comparison.simultaneous == "benjamini-yekutieli" else "simultaneous"
    shown = "" if level is None else f" {level_text(level)}"
    return f"Difference,{shown} {kind} CI ({name.split(' ')[0]})"


def family_cell(estimate: ArmEstimate) -> str:
    """The arm's family-level interval in percentage points, or ``–`` when it has none."""
    if estimate.is_control:
        return "–"
    return interval(estimate.diff_simultaneous_ci_low, estimate.diff_simultaneous_ci_high)


def family_caption(comparison: Comparison) -> str:
    """The caption's sentence on which interval is which and how it goes with the stars."""
    unadjusted = (
        f"Difference intervals in the column marked unadjusted are per-comparison "
        f"{level_text(1 - comparison.alpha)} intervals and do not account for the "
        f"{comparison.family_size} comparisons; risk-ratio and odds-ratio intervals are "
        "unadjusted as well."
    )
    m, alpha = comparison.family_size, comparison.alpha
    if comparison.simultaneous == "bonferroni":
        level = level_text(comparison.simultaneous_level or 1 - alpha / max(m, 1))
        holm = (
            " Holm rejects at least what Bonferroni rejects, so an arm can be significant after "
            "Holm while its simultaneous interval still includes 0 (Holm has no simple "
            "compatible intervals; Strassburger & Bretz 2008)."
            if comparison.correction == "holm" and m > 1
            else ""
        )
        return (
            f"{unadjusted} The simultaneous intervals are Bonferroni intervals at level "
            f"1 − {alpha:g}/{m} = {level}: all {m} together cover the true differences with "
            f"probability at least {level_text(1 - alpha)}.{holm}"
        )
    if comparison.simultaneous == "benjamini-yekutieli":
        return (
            f"{unadjusted} The FCR-adjusted intervals (Benjamini & Yekutieli 2005) are given for "
            "the comparisons Benjamini–Hochberg selects, at level 1 − R·q/m with R selected of "
            f"m = {m} and q = {alpha:g}; at most a share q of them is expected to miss its "
            "difference. Comparisons not selected get none (–)."
        )
    if comparison.correction == "none" and m > 1:
        return f"{unadjusted} No correction was applied, so there is no family-level interval."
    return unadjusted
