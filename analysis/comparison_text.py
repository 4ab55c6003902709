"""A :class:`~analysis.estimate.Comparison` as plain text: the methods, then an aligned table.

Rates are in percent and differences in percentage points (the JSON of
:meth:`~analysis.estimate.Comparison.to_dict` keeps proportions).
"""

from __future__ import annotations

import math

from analysis.corrections import CORRECTION_NAMES
from analysis.estimate import ArmEstimate, Comparison

__all__ = ["render_comparison"]

DIFF_INTERVAL_NAMES = {"newcombe": "Newcombe hybrid score", "wald": "Wald"}

#: Columns after ``arm, n, successes, rate %, CI``; a control or an arm without visits leaves
#: them empty but for a note in the first.
EFFECT_COLUMNS = 9
#: Columns aligned to the right (numbers); the others are aligned to the left.
NUMERIC_COLUMNS = frozenset({1, 2, 3, 5, 7, 9, 12, 13})


def render_comparison(comparison: Comparison, source: str) -> str:
    """The comparison as a compact aligned table under the methods; ``source`` names the data."""
    level = f"{1 - comparison.alpha:.0%}"
    ci = f"{level} CI"
    header = ("arm", "n", "successes", "rate %", ci, "diff pp", ci,
              "risk ratio", ci, "odds ratio", ci, "test", "p", "p adj")  # fmt: skip
    table = [header, *(_row(estimate) for estimate in comparison.arms)]
    return "\n".join(
        [
            *_methods(comparison, source, level),
            "",
            *_aligned(table),
            "",
            _omnibus(comparison),
            *(f"warning: {warning}" for warning in _warnings(comparison)),
        ]
    )


def _methods(comparison: Comparison, source: str, level: str) -> list[str]:
    """What is compared, and how: intervals, tests and the correction."""
    tested = sum(estimate.p_value is not None for estimate in comparison.arms)
    interval = DIFF_INTERVAL_NAMES[comparison.interval]
    return [
        f"{source}: each arm against control {comparison.control!r}",
        f"rates: Wilson {level} CI; differences: {interval} {level} CI (percentage points); "
        "risk ratio: log (Katz) CI; odds ratio: log (Woolf) CI",
        "test: z = two-proportion z-test (pooled), fisher = Fisher's exact test (used when an "
        f"expected cell count is below {comparison.fisher_below:g})",
        f"p adj: {CORRECTION_NAMES[comparison.correction]} across {tested} "
        f"comparison{'' if tested == 1 else 's'}; * = p adj < {comparison.alpha:g}",
    ]


def _row(e: ArmEstimate) -> tuple[str, ...]:
    counts = (e.arm, f"{e.n:,}", f"{e.successes:,}", f"{e.rate * 100:.2f}",
              _range(e.rate_ci_low, e.rate_ci_high, 100, ".2f"))  # fmt: skip
    if e.is_control or e.diff is None:
        note = "(control)" if e.is_control else "(no visits)"
        return (*counts, note, *[""] * (EFFECT_COLUMNS - 1))
    star = " *" if e.significant else ""
    return (
        *counts,
        f"{e.diff * 100:+.2f}", _range(e.diff_ci_low, e.diff_ci_high, 100, "+.2f"),
        f"{e.relative_risk:.3f}", _range(e.relative_risk_ci_low, e.relative_risk_ci_high, 1, ".3f"),
        f"{e.odds_ratio:.3f}", _range(e.odds_ratio_ci_low, e.odds_ratio_ci_high, 1, ".3f"),
        str(e.test), _p(e.p_value), _p(e.p_adjusted) + star,
    )  # fmt: skip


def _aligned(table: list[tuple[str, ...]]) -> list[str]:
    """Each row's cells padded to their column's width: numbers right, text left."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return [
        "  ".join(
            cell.rjust(width) if i in NUMERIC_COLUMNS else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in table
    ]


def _omnibus(comparison: Comparison) -> str:
    chi2 = comparison.omnibus_chi2
    shown = "undefined" if math.isnan(chi2) else f"{chi2:.3f}"
    return (
        f"omnibus chi-square across all arms: {shown}, df {comparison.omnibus_df}, "
        f"p {_p(comparison.omnibus_p)}"
    )


def _warnings(comparison: Comparison) -> list[str]:
    """The comparison's warnings, then each arm's."""
    return [*comparison.warnings, *(w for e in comparison.arms for w in e.warnings)]


def _p(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.2e}" if value < 1e-4 else f"{value:.4f}"


def _range(low: float | None, high: float | None, scale: float, form: str) -> str:
    if low is None or high is None:
        return ""
    return f"[{format(low * scale, form)}, {format(high * scale, form)}]"
