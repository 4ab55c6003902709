"""Family-level intervals: Bonferroni for Holm and Bonferroni, FCR-adjusted for BH.

References are computed independently: the interval by statsmodels'
``confint_proportions_2indep`` at the family level, the BH selection by statsmodels'
``multipletests``. The simulations use a fixed seed; each states its false-alarm rate.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from scipy.stats import binom
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep

from analysis import analyze
from analysis.estimate import ArmCounts, compare_arms
from analysis.report import render_html, render_json, render_markdown
from analysis.report.blocks import Table
from analysis.report.sections import document
from analysis.results import Report
from tests.analysis.sim_helpers import simulated

ARMS = [
    ArmCounts("control", 1200, 36),
    ArmCounts("gain", 1000, 45),
    ArmCounts("norm", 900, 40),
    ArmCounts("loss", 1100, 70),
]


def reference(arm: ArmCounts, control: ArmCounts, alpha: float, method: str) -> tuple:
    method = {"newcombe": "newcomb", "wald": "wald"}[method]
    return confint_proportions_2indep(
        arm.successes, arm.n, control.successes, control.n, method=method, alpha=alpha
    )


@pytest.mark.parametrize("correction", ["holm", "bonferroni"])
@pytest.mark.parametrize("interval", ["newcombe", "wald"])
def test_holm_and_bonferroni_get_bonferroni_intervals(correction: str, interval: str) -> None:
    comparison = compare_arms(ARMS, "control", correction=correction, interval=interval)  # type: ignore[arg-type]
    assert comparison.family_size == 3 and comparison.simultaneous == "bonferroni"
    assert comparison.simultaneous_level == pytest.approx(1 - 0.05 / 3)
    for arm in ARMS[1:]:
        e = comparison.arm(arm.arm)
        low, high = reference(arm, ARMS[0], 0.05 / 3, interval)
        assert (e.diff_simultaneous_ci_low, e.diff_simultaneous_ci_high) == pytest.approx(
            (low, high), abs=1e-12
        )
        assert e.simultaneous_level == comparison.simultaneous_level
        # wider than the unadjusted interval on both sides
        assert e.diff_simultaneous_ci_low < e.diff_ci_low < e.diff_ci_high
        assert e.diff_ci_high < e.diff_simultaneous_ci_high


def test_benjamini_hochberg_gets_fcr_intervals_for_the_selected_only() -> None:
    """Benjamini & Yekutieli (2005): R selected of m, each at level 1 − R·q/m."""
    comparison = compare_arms(ARMS, "control", correction="bh")
    raw = [comparison.arm(a.arm).p_value for a in ARMS[1:]]
    selected = multipletests(raw, alpha=0.05, method="fdr_bh")[0]
    r = int(selected.sum())
    assert 0 < r < 3  # the example selects some, not all
    assert comparison.simultaneous == "benjamini-yekutieli"
    assert comparison.simultaneous_level == pytest.approx(1 - r * 0.05 / 3)
    for arm, chosen in zip(ARMS[1:], selected, strict=True):
        e = comparison.arm(arm.arm)
        assert e.significant == chosen
        if chosen:
            low, high = reference(arm, ARMS[0], r * 0.05 / 3, "newcombe")
            assert (e.diff_simultaneous_ci_low, e.diff_simultaneous_ci_high) == pytest.approx(
                (low, high), abs=1e-12
            )
            assert e.diff_simultaneous_ci_low > 0  # consistent with the selection here
        else:
            assert e.diff_simultaneous_ci_low is None and e.simultaneous_level is None


def test_no_correction_or_nothing_selected_gives_no_family_interval() -> None:
    none = compare_arms(ARMS, "control", correction="none")
    assert none.simultaneous is None and none.simultaneous_level is None
    assert all(e.diff_simultaneous_ci_low is None for e in none.arms)
    flat = [ArmCounts("control", 500, 50), ArmCounts("a", 500, 52), ArmCounts("b", 500, 49)]
    bh = compare_arms(flat, "control", correction="bh")
    assert bh.simultaneous == "benjamini-yekutieli" and bh.simultaneous_level is None
    assert all(e.diff_simultaneous_ci_low is None for e in bh.arms)


def test_one_comparison_has_a_family_interval_equal_to_the_unadjusted_one() -> None:
    e = compare_arms(ARMS[:2], "control").arm("gain")
    assert e.simultaneous_level == pytest.approx(0.95)
    assert (e.diff_simultaneous_ci_low, e.diff_simultaneous_ci_high) == (
        e.diff_ci_low,
        e.diff_ci_high,
    )


def test_the_issue_s_sixteen_arm_table_no_longer_shows_a_starless_interval_clear_of_zero() -> None:
    """Issue 10: +4.88 pp [+0.84, +8.95] with no star in a 16-arm table. Here: 15 arms of 400
    against a control of 400 at 10%; one arm at 59/400 (+4.75 pp). Its unadjusted interval
    excludes 0, Holm does not reject, and its simultaneous interval includes 0: the interval
    set beside the decision agrees with it."""
    counts = [ArmCounts("control", 400, 40), ArmCounts("a00", 400, 59)]
    counts += [ArmCounts(f"a{i:02d}", 400, 40 + i % 5) for i in range(1, 15)]
    comparison = compare_arms(counts, "control")
    e = comparison.arm("a00")
    assert comparison.family_size == 15
    assert e.diff_ci_low > 0 and not e.significant
    assert e.diff_simultaneous_ci_low < 0 < e.diff_simultaneous_ci_high
    assert e.simultaneous_level == pytest.approx(1 - 0.05 / 15)


# -- coverage by simulation ------------------------------------------------------------------

REPLICATIONS = 2000


def band(nominal: float, level: float = 0.99) -> tuple[float, float]:
    """Binomial ``level`` acceptance band of a proportion around ``nominal``."""
    low = binom.ppf((1 - level) / 2, REPLICATIONS, nominal) / REPLICATIONS
    high = binom.ppf(1 - (1 - level) / 2, REPLICATIONS, nominal) / REPLICATIONS
    return float(low), float(high)


def test_bonferroni_intervals_cover_every_difference_at_once() -> None:
    """4 arms against a control, 300 visits each, rates 10/10/12/14/10%. Joint coverage of the
    simultaneous intervals is at least 95% (Bonferroni's inequality); a false alarm needs it to
    fall below the 99% band's low end: probability < 0.005 if the coverage were exactly 95%, far
    less as it is above. The unadjusted intervals cover jointly about 85%: below the band.
    """
    rng = np.random.default_rng(20240510)
    rates = np.array([0.10, 0.10, 0.12, 0.14, 0.10])
    n = 300
    joint_sim = joint_raw = 0
    for successes in rng.binomial(n, rates, size=(REPLICATIONS, len(rates))):
        counts = [ArmCounts(f"a{i}", n, int(x)) for i, x in enumerate(successes)]
        comparison = compare_arms(counts, "a0")
        truth = rates[1:] - rates[0]
        arms = comparison.arms[1:]
        joint_sim += all(
            e.diff_simultaneous_ci_low <= d <= e.diff_simultaneous_ci_high
            for e, d in zip(arms, truth, strict=True)
        )
        joint_raw += all(
            e.diff_ci_low <= d <= e.diff_ci_high for e, d in zip(arms, truth, strict=True)
        )
    low, _ = band(0.95)
    assert joint_sim / REPLICATIONS >= low
    assert joint_raw / REPLICATIONS < low


def test_fcr_intervals_keep_the_false_coverage_rate_below_q() -> None:
    """5 arms against a control, 400 visits each; two arms differ (+5 pp, +7 pp). Over the
    trials, the false coverage statement rate E[V/max(R, 1)] (V: selected intervals missing
    their difference) stays below q = 0.05 plus the 99% band's half-width; the same selected
    arms with unadjusted 95% intervals are not guaranteed this (reported, not asserted)."""
    rng = np.random.default_rng(7)
    rates = np.array([0.10, 0.10, 0.10, 0.10, 0.15, 0.17])
    n = 400
    shares = []
    for successes in rng.binomial(n, rates, size=(REPLICATIONS, len(rates))):
        counts = [ArmCounts(f"a{i}", n, int(x)) for i, x in enumerate(successes)]
        comparison = compare_arms(counts, "a0", correction="bh")
        truth = rates[1:] - rates[0]
        chosen = [(e, d) for e, d in zip(comparison.arms[1:], truth, strict=True) if e.significant]
        missed = sum(
            not e.diff_simultaneous_ci_low <= d <= e.diff_simultaneous_ci_high for e, d in chosen
        )
        shares.append(missed / max(len(chosen), 1))
    _, high = band(0.05)
    assert float(np.mean(shares)) <= high


# -- JSON and report tables say which interval is which ---------------------------------------


def test_the_json_names_the_family_and_each_interval() -> None:
    data = json.loads(json.dumps(compare_arms(ARMS, "control").to_dict(), allow_nan=False))
    assert data["family"] == {
        "correction": "holm",
        "correction_name": "Holm",
        "controls": "family-wise error rate",
        "comparisons": 3,
        "alpha": 0.05,
    }
    described = {tuple(item["fields"]): item for item in data["intervals"]}
    assert described["diff_ci_low", "diff_ci_high"]["adjustment"] == "none: per comparison"
    simultaneous = described["diff_simultaneous_ci_low", "diff_simultaneous_ci_high"]
    assert simultaneous["adjustment"] == "bonferroni" and simultaneous["family_size"] == 3
    assert simultaneous["level"] == pytest.approx(1 - 0.05 / 3)
    gain = data["arms"][1]
    assert gain["diff_ci_unadjusted"] == {
        "low": gain["diff_ci_low"],
        "high": gain["diff_ci_high"],
        "level": 0.95,
        "method": "newcombe",
        "adjustment": "none",
    }
    assert gain["diff_ci_simultaneous"]["low"] == gain["diff_simultaneous_ci_low"]
    assert gain["diff_ci_simultaneous"]["adjustment"] == "bonferroni"
    assert data["arms"][0]["diff_ci_unadjusted"] is None  # the control


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Report:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path_factory.mktemp('family') / 'f.db'}"
    engine, trial = simulated(url, 600)
    simulated_report = analyze(trial, engine, record_look=False)
    engine.dispose()
    comparison = compare_arms(
        [ArmCounts("control", 1000, 50), ArmCounts("gain", 1000, 90), ArmCounts("norm", 1000, 60)],
        "control",
    )
    primary = dataclasses.replace(simulated_report.primary, comparison=comparison, adjusted=())
    return dataclasses.replace(simulated_report, outcomes=(primary, *simulated_report.outcomes[1:]))


def test_the_results_table_heads_and_captions_both_intervals(report: Report) -> None:
    table = next(b for b in document(report) if isinstance(b, Table) and "Element" in b.columns)
    assert "Difference (Newcombe 95% CI, unadjusted)" in table.columns
    assert "Difference, 97.5% simultaneous CI (Bonferroni)" in table.columns
    column = table.columns.index("Difference, 97.5% simultaneous CI (Bonferroni)")
    gain = report.primary.comparison.arm("gain")
    row = next(r for r in table.rows if "gain" in r[0])
    low, high = gain.diff_simultaneous_ci_low * 100, gain.diff_simultaneous_ci_high * 100
    assert row[column] == f"[{low:.2f}, {high:.2f}]"
    assert "do not account for the 2 comparisons" in table.caption
    assert "Bonferroni intervals at level 1 − 0.05/2 = 97.5%" in table.caption
    assert "Strassburger & Bretz 2008" in table.caption
    markdown = render_markdown(report)
    assert "simultaneous CI (Bonferroni)" in markdown and "not adjusted for multiple" in markdown
    page = render_html(report, {"flow": b"", "forest": b""})
    assert "Difference, 97.5% simultaneous CI (Bonferroni)" in page
    assert "Difference (Newcombe 95% CI, unadjusted)" in page


def test_the_report_json_carries_the_family_and_labelled_intervals(report: Report) -> None:
    data = json.loads(render_json(report))
    primary = data["outcomes"][0]["comparison"]
    assert primary["family"]["comparisons"] == 2 and primary["family"]["correction"] == "holm"
    gain = next(a for a in primary["arms"] if a["arm"] == "gain")
    assert gain["diff_ci_simultaneous"]["level"] == pytest.approx(0.975)
