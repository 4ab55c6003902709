"""The plain-text table of a comparison: methods stated, numbers for humans, columns aligned."""

from __future__ import annotations

import re

from analysis.comparison_text import render_comparison
from analysis.estimate import ArmCounts, compare_arms

COUNTS = [ArmCounts("control", 1200, 36), ArmCounts("gain", 1000, 45), ArmCounts("norm", 900, 40)]


def lines_of(text: str, first: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(first)]


def test_the_methods_come_first_and_follow_the_options() -> None:
    comparison = compare_arms(COUNTS, "control", correction="bh", alpha=0.1, interval="wald")
    head = render_comparison(comparison, "table2.csv").splitlines()[:5]
    assert head == [
        "table2.csv: each arm against control 'control'",
        "rates: Clopper-Pearson 90% CI; differences: Wald 90% CI (percentage points, unadjusted); "
        "risk ratio: log (Katz) CI; odds ratio: log (Woolf) CI (unadjusted)",
        "90% FCR CI: Benjamini–Yekutieli FCR-adjusted interval (level 1 − R·q/m, R selected "
        "of m = 2) for the comparisons Benjamini–Hochberg selects; none for the others",
        "test: z = two-proportion z-test (pooled); exact-z = exact unconditional z-test "
        "(Suissa–Shuster with Berger–Boos gamma 0.001), used when an expected cell count is "
        "below 5",
        "p adj: Benjamini–Hochberg across 2 comparisons; * = p adj < 0.1",
    ]
    fisher = compare_arms(COUNTS, "control", small_sample="fisher", exact_below=2)
    assert "fisher = Fisher's exact test, used when an expected cell count is below 2" in (
        render_comparison(fisher, "t.csv")
    )


def test_the_family_interval_has_its_own_column_and_line() -> None:
    comparison = compare_arms(COUNTS, "control")  # Holm over 2 comparisons: 97.5% Bonferroni
    text = render_comparison(comparison, "c.csv")
    assert (
        "97.5% sim. CI: Bonferroni simultaneous interval (level 1 − alpha/m, m = 2); together "
        "they cover every difference with probability at least 95%; Holm can star an arm whose "
        "simultaneous CI still touches 0" in text
    )
    header = text.split("\n\n")[1].splitlines()[0]
    assert "  diff pp  95% CI" in header and "97.5% sim. CI  risk ratio" in header
    (gain,) = lines_of(text, "gain ")
    e = comparison.arm("gain")
    low, high = e.diff_simultaneous_ci_low * 100, e.diff_simultaneous_ci_high * 100
    assert f"[{low:+.2f}, {high:+.2f}]" in gain
    plain = render_comparison(compare_arms(COUNTS, "control", correction="none"), "c.csv")
    assert "sim. CI" not in plain and "FCR CI" not in plain


def test_rates_in_percent_and_differences_in_percentage_points() -> None:
    text = render_comparison(compare_arms(COUNTS, "control"), "c.csv")
    (control,) = lines_of(text, "control")
    (gain,) = lines_of(text, "gain ")
    # rates: Clopper-Pearson, statsmodels proportion_confint(method="beta") gives 2.11-4.13 %
    assert control.split() == ["control", "1,200", "36", "3.00", "[2.11,", "4.13]", "(control)"]
    assert gain.split()[:6] == ["gain", "1,000", "45", "4.50", "[3.30,", "5.98]"]
    # simultaneous (Holm over 2: Bonferroni 97.5%): statsmodels newcomb at alpha 0.025 gives
    # -0.318 to +3.444 percentage points
    assert gain.split()[6:11] == ["+1.50", "[-0.09,", "+3.18]", "[-0.32,", "+3.44]"]
    assert gain.split()[-3:] == ["z", "0.0628", "0.1257"]  # Holm: no star above alpha


def test_columns_are_aligned_numbers_right_and_text_left() -> None:
    counts = [ArmCounts("control", 2000, 2), ArmCounts("a-long-arm-name", 20, 4)]
    text = render_comparison(compare_arms(counts, "control"), "c.csv")
    header, control, arm = text.split("\n\n")[1].splitlines()
    n_end = header.index(" n ") + 2  # the n column ends where its header does
    assert control[:n_end].endswith("  2,000") and arm[:n_end].endswith("     20")
    assert control.startswith("control          ") and arm.startswith("a-long-arm-name  ")
    assert all(line == line.rstrip() for line in text.splitlines())


def test_small_p_values_a_star_and_the_small_sample_test() -> None:
    counts = [ArmCounts("control", 200, 2), ArmCounts("small", 20, 4)]
    comparison = compare_arms(counts, "control")
    (small,) = lines_of(render_comparison(comparison, "c.csv"), "small")
    p = comparison.arm("small").p_value
    assert p is not None and 1e-4 < p < 0.05
    assert small.endswith(f"exact-z  {p:.4f}  {p:.4f} *")
    counts = [ArmCounts("control", 2000, 20), ArmCounts("big", 2000, 120)]
    (big,) = lines_of(render_comparison(compare_arms(counts, "control"), "c.csv"), "big")
    assert re.search(r"z +\d\.\d\de-\d\d +\d\.\d\de-\d\d \*$", big)


def test_an_arm_without_visits_and_an_undefined_omnibus_test() -> None:
    counts = [ArmCounts("control", 50, 5), ArmCounts("empty", 0, 0)]
    text = render_comparison(compare_arms(counts, "control"), "c.csv")
    (empty,) = lines_of(text, "empty")
    assert empty.split()[:3] == ["empty", "0", "0"] and empty.endswith("(no visits)")
    assert "p adj: Holm across 0 comparisons" in text
    assert "omnibus chi-square across all arms: undefined, df 0, p –" in text


def test_every_warning_ends_the_text_comparison_first_then_each_arm() -> None:
    counts = [ArmCounts("control", 10, 0), ArmCounts("gain", 10, 0)]
    comparison = compare_arms(counts, "control")
    text = render_comparison(comparison, "c.csv")
    expected = [*comparison.warnings, *comparison.arm("gain").warnings]
    assert len(expected) >= 2
    assert text.splitlines()[-len(expected) :] == [f"warning: {w}" for w in expected]
    assert "p adj: Holm across 1 comparison;" in text
