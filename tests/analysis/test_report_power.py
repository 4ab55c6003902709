"""The report's power section against statsmodels' NormalIndPower (same arcsine z-test)."""

from __future__ import annotations

import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from analysis.consort import ArmFlow, Flow
from analysis.power import power_summary
from tests.factories import make_trial


def test_power_at_the_analysed_size_matches_statsmodels() -> None:
    trial = make_trial()  # baseline 0.05, expected +0.03, power 0.8, alpha 0.05, 2 comparisons
    flow = Flow(
        (
            ArmFlow("control", 1010, 1000, 10),
            ArmFlow("gain", 905, 900, 5),
            ArmFlow("norm", 1200, 1190, 0),
        )
    )
    summary = power_summary(trial, flow, observed_control_rate=0.051)
    h = proportion_effectsize(0.08, 0.05)
    for row in summary.arms:
        n_arm = {"gain": 900, "norm": 1200}[row.arm]
        expected = NormalIndPower().power(h, nobs1=n_arm, alpha=0.025, ratio=1000 / n_arm)
        assert (row.n_control, row.n_arm) == (1000, n_arm)
        assert row.power_for_expected == pytest.approx(expected, abs=1e-9)
        achieved = NormalIndPower().power(
            proportion_effectsize(0.05 + row.mde, 0.05),
            nobs1=n_arm,
            alpha=0.025,
            ratio=1000 / n_arm,
        )
        assert achieved == pytest.approx(0.8, abs=1e-9)  # the MDE is where power reaches 80 %
    assert summary.comparison_alpha == 0.025
    assert summary.underpowered  # about 70 % < 80 %
    assert summary.warnings[0].startswith("underpowered")
    assert summary.analysed == 3100


def test_no_warning_when_the_trial_is_large_enough() -> None:
    trial = make_trial()
    flow = Flow(tuple(ArmFlow(arm, 3000, 3000, 0) for arm in ("control", "gain", "norm")))
    summary = power_summary(trial, flow)
    assert not summary.underpowered
    assert summary.warnings == ()
