"""analysis.calibration: the band, the simulated trials, the report's methods, a wrong method.

Independent references: the band is checked against statsmodels' Clopper-Pearson interval
(``proportion_confint(method="beta")``) and exact binomial sums from scipy; the simulated counts
against their expectation; the harness's unadjusted method against a direct call of
``compare_arms``; the deliberately wrong rate interval is statsmodels' Wald interval
(``method="normal"``).

False-alarm rates (every simulation has a fixed seed, so each outcome is reproducible):

- ``test_draw_is_nested_and_unbiased``: |z| < 4 per arm × location, about 6e-5 each.
- ``test_quick_grid_keeps_the_report_within_its_bands``: every judged value of the quick grid
  against a Bonferroni band over all of them (level 1 − 0.01/K), so at most 1 % for the test.
- ``test_a_wrong_interval_is_flagged`` and
  ``test_naive_peeking_and_a_missing_correction_are_flagged``: each wrong method misses its band
  by at least 4.5 Monte Carlo standard errors (Wald coverage of a 2 % rate at n = 50 about 0.64
  against a band from 0.92; naive peeking over 10 looks about 0.19 against a band ending near
  0.09 with 300 trials; 4 uncorrected comparisons about 0.14 against a band ending near 0.08
  with 600 trials), so each fails to flag with a chance of about 1e-5 or less.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import binom
from statsmodels.stats.proportion import proportion_confint

from analysis.calibration import (
    QUICK,
    REPEATED,
    ArmTest,
    Budget,
    Calibration,
    Cell,
    Interval,
    Methods,
    NaivePeeking,
    PlannedLooks,
    Result,
    Sample,
    Strata,
    _Cellwork,
    _judge,
    band,
    calibrate,
    comparison_intervals,
    draw,
    exact_rejection,
    family_band_level,
    grid,
    render_markdown,
    report_adjusted,
    report_unadjusted,
    truth,
)
from analysis.estimate import ArmCounts, ArmEstimate, compare_arms
from nudgelab.cli import main


def _arm_counts(sample: Sample) -> list[ArmCounts]:
    return [
        ArmCounts(arm, int(n.sum()), int(x.sum()))
        for arm, n, x in zip(sample.arms, sample.n, sample.successes, strict=True)
    ]


# -- the band --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nominal", "replications"), [(0.05, 100), (0.05, 2000), (0.95, 400), (0.8, 300)]
)
def test_band_is_where_the_clopper_pearson_interval_contains_the_nominal(
    nominal: float, replications: int
) -> None:
    limits = band(nominal, replications)
    x = np.arange(replications + 1)
    low, high = proportion_confint(x, replications, alpha=0.01, method="beta")
    contains = (np.nan_to_num(low, nan=0.0) <= nominal) & (nominal <= np.nan_to_num(high, nan=1.0))
    inside = (x / replications >= limits.low) & (x / replications <= limits.high)
    assert np.array_equal(contains, inside)
    assert contains.any()


def test_a_calibrated_method_leaves_the_band_at_most_one_time_in_a_hundred() -> None:
    for nominal, replications in [(0.05, 2000), (0.95, 2000), (0.05, 300), (0.8, 500)]:
        limits = band(nominal, replications)
        x = np.arange(replications + 1)
        outside = (x < round(limits.low * replications)) | (x > round(limits.high * replications))
        rate = binom.pmf(x[outside], replications, nominal).sum()
        assert 0.002 < rate <= 0.01


def test_bonferroni_band_is_wider() -> None:
    level = family_band_level(200)
    assert level == pytest.approx(1 - 0.01 / 200)
    wide, narrow = band(0.05, 1000, level), band(0.05, 1000)
    assert wide.low <= narrow.low and wide.high > narrow.high


def test_band_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        band(0.05, 0)
    with pytest.raises(ValueError):
        Budget(replications=10, adjusted=20)


# -- the simulated trials --------------------------------------------------------------------


def test_locations_split_like_blocks_and_average_to_the_rate() -> None:
    strata = Strata()
    assert strata.sizes(50).tolist() == [5, 3, 42]  # 5, 2.5, 42.5: largest remainders, in order
    assert strata.sizes(10_000).tolist() == [1000, 500, 8500]
    assert float(np.dot(strata.shares, strata.rates(0.1))) == pytest.approx(0.1)
    world = truth(Cell(50, 0.10, 2), strata, delta=0.05)
    control = (5 * 0.15 + 3 * 0.05 + 42 * 0.1 * 0.825 / 0.85) / 50
    assert world.rate(0) == pytest.approx(control)
    assert world.value("difference", 1) == pytest.approx(0.05)
    assert world.value("risk ratio", 1) == pytest.approx((control + 0.05) / control)
    odds = ((control + 0.05) / (0.95 - control)) / (control / (1 - control))
    assert world.value("odds ratio", 1) == pytest.approx(odds)
    with pytest.raises(ValueError):
        truth(Cell(50, 0.30, 2), strata, delta=0.6)  # 1.5 × 0.30 + 0.6 > 1


def test_draw_is_nested_and_unbiased() -> None:
    world = truth(Cell(200, 0.10, 3), Strata(), delta=0.05)
    replications = 4000
    successes, visits = draw(np.random.default_rng(7), world, replications, looks=10)
    assert successes.shape == (replications, 10, 3, 3)
    assert visits.shape == (10, 3, 3)
    assert np.array_equal(visits[-1], world.n)
    assert np.array_equal(visits[4], (world.n * 5) // 10)
    assert (np.diff(successes, axis=1) >= 0).all()
    assert (successes <= visits[None]).all()
    final = successes[:, -1]
    expected = world.n * world.p
    se = np.sqrt(world.n * world.p * (1 - world.p) / replications)
    assert (np.abs(final.mean(axis=0) - expected) < 4 * se).all()


# -- the report's methods --------------------------------------------------------------------


def test_report_unadjusted_is_compare_arms_with_the_plans_choices() -> None:
    world = truth(Cell(200, 0.10, 3), Strata())
    x = np.array([[3, 1, 20], [2, 0, 15], [5, 2, 25]])
    sample = Sample(world.arms, Strata().names, world.n, x)
    result = report_unadjusted(sample)
    direct = compare_arms(_arm_counts(sample), "control", correction="holm", interval="newcombe")
    assert [t.p_value for t in result.tests] == [e.p_value for e in direct.arms[1:]]
    assert [t.rejected for t in result.tests] == [e.significant for e in direct.arms[1:]]
    by_name = {(i.name, i.arm): i for i in result.intervals}
    arm2 = direct.arm("arm2")
    assert by_name[("difference (newcombe)", "arm2")].low == arm2.diff_ci_low
    assert by_name[("odds ratio (log)", "arm2")].high == arm2.odds_ratio_ci_high
    assert by_name[("rate (clopper-pearson)", "control")].low == direct.arm("control").rate_ci_low
    assert result.corrected


@dataclass(frozen=True)
class _WithBootstrap(ArmEstimate):
    diff_bootstrap_ci_low: float | None = None
    diff_bootstrap_ci_high: float | None = None


def test_a_new_interval_field_of_the_comparison_is_judged_too() -> None:
    comparison = compare_arms([ArmCounts("control", 100, 10), ArmCounts("b", 100, 20)], "control")
    arm = comparison.arm("b")
    extended = _WithBootstrap(**vars(arm), diff_bootstrap_ci_low=-0.1, diff_bootstrap_ci_high=0.3)
    comparison = type(comparison)(**{**vars(comparison), "arms": (comparison.arms[0], extended)})
    listed = comparison_intervals(comparison)
    found = {(i.name, i.parameter, i.arm) for i in listed}
    assert ("diff bootstrap", "difference", "b") in found
    assert ("difference (newcombe)", "difference", "b") in found
    assert ("rate (clopper-pearson)", "rate", "control") in found
    per_comparison = {i.name for i in listed if not i.joint}
    assert {"rate (clopper-pearson)", "difference (newcombe)", "risk ratio (log)"} <= per_comparison
    assert {(i.low, i.high) for i in listed if i.name == "diff bootstrap"} == {(-0.1, 0.3)}


def test_joint_intervals_cover_only_together() -> None:
    world = truth(Cell(200, 0.10, 3), Strata())
    sample = Sample(world.arms, Strata().names, world.n, world.n // 10)
    both = (
        Interval("s", "difference", "arm1", -0.1, 0.1, joint=True),
        Interval("s", "difference", "arm2", 0.01, 0.1, joint=True),
    )
    work = _Cellwork()
    _judge(work, "A/A", "unadjusted", Result((), both, False), sample, world, None)
    tally = work.tallies[("A/A", "coverage", "s")]
    assert (tally.hits, tally.trials) == (0, 1)  # one trial, not covered: arm2 misses 0


# -- the grid --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick() -> Calibration:
    """The quick grid with the report's methods (naive peeking, a contrast, is tested below)."""
    methods = Methods(report_unadjusted, report_adjusted, (PlannedLooks(),))
    return calibrate(grid(quick=True), QUICK, seed=20261130, methods=methods, quick=True)


def test_quick_grid_keeps_the_report_within_its_bands(quick: Calibration) -> None:
    judged = quick.judged()
    measures = {(m.scenario, m.measure, m.method) for m in judged}
    for expected in [
        ("A/A", "false-positive rate", "unadjusted"),
        ("A/A", "family-wise error", "unadjusted"),
        ("A/A", "coverage", "difference (newcombe)"),
        ("effect", "coverage", "difference (newcombe)"),
        ("A/A", "stopping error", "sequential plan"),
        ("A/A", "coverage", REPEATED),
        ("effect", "coverage", REPEATED),
        ("A/A", "false-positive rate", "adjusted"),
        ("A/A", "coverage", "adjusted difference"),
    ]:
        assert expected in measures
    level = family_band_level(len(judged))
    failures = [
        f"{m.cell.label} {m.scenario} {m.measure} {m.method}: {m.value:.4f} "
        f"({m.band(level).low:.4f}–{m.band(level).high:.4f})"
        for m in quick.failures(level)
    ]
    assert not failures, "\n".join(failures)


def test_the_page_shows_every_cell_and_band(quick: Calibration) -> None:
    page = render_markdown(quick, "nudgelab calibrate --quick")
    for heading in (
        "## How to read the tables",
        "## Summary",
        "## False positives",
        "## Coverage of every interval (A/A)",
        "## Power at the minimum detectable",
        "## Ten looks at an A/A trial",
        "## Methods as run",
        "## Exact false-positive rate of the unadjusted test",
    ):
        assert heading in page
    # the quick grid's 2-arm cells of up to 200 per arm are enumerated
    assert [(e.n_per_arm, e.rate) for e in quick.exact] == [(50, 0.10), (200, 0.30)]
    assert f"| 50 | 0.10 | {quick.exact[0].size:.4f} |" in page
    for cell in grid(quick=True):
        assert f"| {cell.n_per_arm:,} | {cell.rate:.2f} | {cell.arms} |" in page
    limits = band(0.05, QUICK.replications)
    assert f"| false-positive rate | 0.050 | {QUICK.replications:,} | {limits.low:.4f}" in page
    assert "sequential plan" in page


# -- a wrong method is caught ----------------------------------------------------------------


def _wald_rates(sample: Sample) -> Result:
    """The report's comparison, but the rates get Wald intervals (statsmodels, normal)."""
    result = report_unadjusted(sample)
    counts = _arm_counts(sample)
    wald = tuple(
        Interval(
            "rate (Wald)",
            "rate",
            c.arm,
            *map(float, proportion_confint(c.successes, c.n, 0.05, "normal")),
        )
        for c in counts
    )
    return Result(result.tests, wald, result.corrected)


def _no_correction(sample: Sample) -> Result:
    """Each comparison at α with no correction for the family, as if it were corrected."""
    direct = compare_arms(_arm_counts(sample), sample.control, correction="none")
    tests = tuple(ArmTest(e.arm, e.p_value, e.p_value < sample.alpha) for e in direct.arms[1:])
    return Result(tests, (), True)


def test_exact_rejection_is_the_binomial_sum_over_the_rejected_tables() -> None:
    """Issue 10: A/A rejection of the small-sample test at 50/arm, rate 10% lies in [0.045, top
    of the 99% band]. Checked here by an independent sum: scipy's binomial weights over the
    tables compare_arms rejects, every table of the 51 x 51 (none left out)."""
    n, rate = 50, 0.10
    pmf = binom.pmf(np.arange(n + 1), n, rate)
    rejected = np.array([[
        bool(compare_arms([ArmCounts("control", n, y0), ArmCounts("arm", n, y1)], "control")
             .arm("arm").significant)
        for y0 in range(n + 1)] for y1 in range(n + 1)])  # fmt: skip
    exact = float(pmf @ rejected.astype(float) @ pmf)
    found = exact_rejection(n, rate)
    assert found.size <= exact <= found.size + found.left_out + 1e-15
    assert 0.045 <= exact <= band(0.05, 2000).high
    assert exact_rejection(50, 0.02).size < 0.02  # two successes in all: no test reaches 5%


def test_a_wrong_interval_is_flagged() -> None:
    small = calibrate(
        [Cell(50, 0.02, 2)], Budget(300, 0, 0), seed=5, methods=Methods(_wald_rates, None, ())
    )
    [wald] = [m for m in small.metrics if m.scenario == "A/A" and m.method == "rate (Wald)"]
    assert wald.value < 0.8  # x = 0 (probability 0.36) gives the empty interval [0, 0]
    assert wald.verdict() == "below" and not wald.passed()
    assert wald in small.failures()
    assert f"**{wald.value:.3f} ↓**" in render_markdown(small)


def test_naive_peeking_and_a_missing_correction_are_flagged() -> None:
    peeking = calibrate(
        [Cell(1000, 0.30, 2)],
        Budget(300, 0, 300),
        seed=5,
        methods=Methods(report_unadjusted, None, (NaivePeeking(),)),
    )
    [naive] = [m for m in peeking.metrics if m.measure == "stopping error"]
    assert naive.contrast and naive.value > 0.14  # about 0.19 (Armitage et al. 1969)
    assert naive.verdict() == "above" and not naive.passed()
    assert f"**{naive.value:.3f} ↑**" in render_markdown(peeking)
    uncorrected = calibrate(
        [Cell(200, 0.30, 5)], Budget(600, 0, 0), seed=5, methods=Methods(_no_correction, None, ())
    )
    [family] = [
        m for m in uncorrected.metrics if m.scenario == "A/A" and m.measure == "family-wise error"
    ]
    assert family.value > 0.1  # four comparisons at 0.05 sharing the control: about 0.14
    assert family.verdict() == "above"
    assert family in uncorrected.failures()


# -- the command -----------------------------------------------------------------------------


def test_calibrate_command_writes_the_page(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "calibration.md"
    result = CliRunner().invoke(
        main,
        [
            "calibrate",
            "--quick",
            "--replications",
            "20",
            "--adjusted",
            "5",
            "--sequential",
            "5",
            "--seed",
            "3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("# Calibration of the report's statistics")
    assert "`nudgelab calibrate --quick --seed 3`" in page
    assert "[3/3]" in result.output
