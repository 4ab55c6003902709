"""A :class:`~analysis.estimate.Comparison` as plain text: the methods, then an aligned table.

Rates are in percent and differences in percentage points (the JSON of
:meth:`~analysis.estimate.Comparison.to_dict` keeps proportions). With a correction the
difference has two intervals: the unadjusted one (``95% CI``) and the family-level one
(``98.33% sim. CI`` for Bonferroni and Holm, ``FCR CI`` for Benjamini–Hochberg); the methods
above the table say which is which.
"""

from __future__ import annotations

import math

from analysis.corrections import CORRECTION_NAMES, level_text
from analysis.estimate import ArmEstimate, Comparison
from analysis.significance import BERGER_BOOS_GAMMA

__all__ = ["family_header", "render_comparison"]

DIFF_INTERVAL_NAMES = {"newcombe": "Newcombe hybrid score", "wald": "Wald"}

#: Columns aligned to the right (numbers) when the table has no family-level interval column;
#: with one, every column from the seventh on moves one to the right.
NUMERIC_COLUMNS = frozenset({1, 2, 3, 5, 7, 9, 12, 13})


def family_header(comparison: Comparison) -> str | None:
    """The heading of the family-level difference interval (``None`` when there is none)."""
    if comparison.simultaneous is None:
        return None
    kind = "FCR CI" if comparison.simultaneous == "benjamini-yekutieli" else "sim. CI"
    level = comparison.simultaneous_level
    return kind if level is None else f"{level_text(level)} {kind}"


def render_comparison(comparison: Comparison, source: str) -> str:
    """The comparison as a compact aligned table under the methods; ``source`` names the data."""
    level = f"{1 - comparison.alpha:.0%}"
    ci = f"{level} CI"
    family = family_header(comparison)
    header = ("arm", "n", "successes", "rate %", ci, "diff pp", ci,
              *([family] if family else []),
              "risk ratio", ci, "odds ratio", ci, "test", "p", "p adj")  # fmt: skip
    table = [header, *(_row(estimate, family is not None) for estimate in comparison.arms)]
    numeric = _numeric_columns(family is not None)
    return "\n".join(
        [
            *_methods(comparison, source, level),
            "",
            *_aligned(table, numeric),
            "",
            _omnibus(comparison),
            *(f"warning: {warning}" for warning in _warnings(comparison)),
        ]
    )


def _methods(comparison: Comparison, source: str, level: str) -> list[str]:
    """What is compared, and how: intervals, tests and the correction."""
    tested = comparison.family_size
    interval = DIFF_INTERVAL_NAMES[comparison.interval]
    return [
        f"{source}: each arm against control {comparison.control!r}",
        f"rates: Clopper-Pearson {level} CI; differences: {interval} {level} CI "
        "(percentage points, unadjusted); risk ratio: log (Katz) CI; odds ratio: log (Woolf) CI "
        "(unadjusted)",
        *_family_method(comparison),
        _test_method(comparison),
        f"p adj: {CORRECTION_NAMES[comparison.correction]} across {tested} "
        f"comparison{'' if tested == 1 else 's'}; * = p adj < {comparison.alpha:g}",
    ]


def _family_method(comparison: Comparison) -> list[str]:
    """The line that says what the family-level interval column holds (none without one)."""
    header = family_header(comparison)
    if header is None:
        return []
    m = comparison.family_size
    if comparison.simultaneous == "benjamini-yekutieli":
        return [
            f"{header}: Benjamini–Yekutieli FCR-adjusted interval (level 1 − R·q/m, R selected "
            f"of m = {m}) for the comparisons Benjamini–Hochberg selects; none for the others"
        ]
    note = (
        "; Holm can star an arm whose simultaneous CI still touches 0"
        if comparison.correction == "holm" and m > 1
        else ""
    )
    return [
        f"{header}: Bonferroni simultaneous interval (level 1 − alpha/m, m = {m}); together "
        f"they cover every difference with probability at least {level_text(1 - comparison.alpha)}"
        + note
    ]


def _test_method(comparison: Comparison) -> str:
    """The line that names the tests and when the small-sample one is used."""
    if comparison.small_sample == "fisher":
        small = "fisher = Fisher's exact test"
    else:
        small = (
            "exact-z = exact unconditional z-test (Suissa–Shuster with Berger–Boos "
            f"gamma {BERGER_BOOS_GAMMA:g})"
        )
    return (
        f"test: z = two-proportion z-test (pooled); {small}, used when an expected cell count "
        f"is below {comparison.exact_below:g}"
    )


def _numeric_columns(family: bool) -> frozenset[int]:
    if not family:
        return NUMERIC_COLUMNS
    return frozenset(i if i < 7 else i + 1 for i in NUMERIC_COLUMNS) | {7}


def _row(e: ArmEstimate, family: bool) -> tuple[str, ...]:
    counts = (e.arm, f"{e.n:,}", f"{e.successes:,}", f"{e.rate * 100:.2f}",
              _range(e.rate_ci_low, e.rate_ci_high, 100, ".2f"))  # fmt: skip
    if e.is_control or e.diff is None:
        note = "(control)" if e.is_control else "(no visits)"
        return (*counts, note, *[""] * (8 + family))
    star = " *" if e.significant else ""
    simultaneous = _range(e.diff_simultaneous_ci_low, e.diff_simultaneous_ci_high, 100, "+.2f")
    return (
        *counts,
        f"{e.diff * 100:+.2f}", _range(e.diff_ci_low, e.diff_ci_high, 100, "+.2f"),
        *([simultaneous or "–"] if family else []),
        f"{e.relative_risk:.3f}", _range(e.relative_risk_ci_low, e.relative_risk_ci_high, 1, ".3f"),
        f"{e.odds_ratio:.3f}", _range(e.odds_ratio_ci_low, e.odds_ratio_ci_high, 1, ".3f"),
        str(e.test), _p(e.p_value), _p(e.p_adjusted) + star,
    )  # fmt: skip


def _aligned(table: list[tuple[str, ...]], numeric: frozenset[int]) -> list[str]:
    """Each row's cells padded to their column's width: numbers right, text left."""
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return [
        "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
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
