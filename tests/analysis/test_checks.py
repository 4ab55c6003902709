"""Sample-ratio mismatch, balance, opt-outs and data-quality counts, against scipy and by hand."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import delete, insert, select

from analysis.checks import balance_table, opt_outs, read_quality, run_checks, sample_ratio
from analysis.counts import OutcomeSpec, load_counts
from experiments import store
from experiments.eventlog import assignments, events, visits
from tests.analysis.sim_helpers import simulated

OUTCOMES = [
    OutcomeSpec("requested_contact", "contact_requested"),
    OutcomeSpec("opened_country_info", "country_info_opened"),
]


def test_sample_ratio_matches_scipy_and_trips_below_0001() -> None:
    # Hand: expected 925 each; chi2 = 2 * 75**2 / 925 = 12.162..., df 1, p = 0.000488.
    result = sample_ratio({"a": 1000, "b": 850}, {"a": 1, "b": 1})
    assert result.chi2 == pytest.approx(2 * 75**2 / 925, abs=1e-9)
    assert result.p_value == pytest.approx(stats.chi2.sf(2 * 75**2 / 925, 1), abs=1e-12)
    assert result.mismatch
    assert not sample_ratio({"a": 1000, "b": 960}, {"a": 1, "b": 1}).mismatch


def test_sample_ratio_uses_the_allocation_weights() -> None:
    result = sample_ratio({"control": 200, "gain": 100}, {"control": 2, "gain": 1})
    assert result.expected == {"control": 200.0, "gain": 100.0}
    assert result.chi2 == pytest.approx(0.0, abs=1e-12)
    assert not result.mismatch


def test_srm_warning_on_a_skewed_event_log(db_url: str) -> None:
    engine, trial = simulated(db_url, 900)
    with engine.begin() as conn:  # lose 40 % of one arm's visits, as a broken logger would
        lost = (
            conn.execute(select(assignments.c.visit_id).where(assignments.c.arm == "norm"))
            .scalars()
            .all()[:120]
        )
        conn.execute(delete(events).where(events.c.visit_id.in_(lost)))
        conn.execute(delete(assignments).where(assignments.c.visit_id.in_(lost)))
        conn.execute(delete(visits).where(visits.c.id.in_(lost)))
        counts = load_counts(conn, trial.id, OUTCOMES)
        checks = run_checks(
            counts, ["control", "gain", "norm"], trial.weights, read_quality(conn, trial, counts)
        )
    engine.dispose()
    assert checks.sample_ratio.mismatch
    assert checks.warnings[0].startswith("SAMPLE RATIO MISMATCH")


@pytest.fixture(scope="module")
def counts(tmp_path_factory):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path_factory.mktemp('checks') / 'c.db'}"
    engine, trial = simulated(url, 900, opt_out_rate=0.08)
    yield load_counts(engine, trial.id, OUTCOMES)
    engine.dispose()


def test_balance_table_equals_a_crosstab_and_scipy(counts) -> None:  # type: ignore[no-untyped-def]
    table = balance_table(counts, ["control", "gain", "norm"], "language")
    by = counts.by("arm", "language")["n"].unstack()
    assert table.levels == ("ar", "en")
    assert np.array_equal(np.array(table.counts), by.loc[["control", "gain", "norm"]].to_numpy())
    expected = stats.chi2_contingency(np.array(table.counts), correction=False)
    assert table.chi2 == pytest.approx(expected.statistic, abs=1e-9)
    assert table.p_value == pytest.approx(expected.pvalue, abs=1e-12)
    dayparts = balance_table(counts, ["control", "gain", "norm"], "daypart")
    assert sum(map(sum, dayparts.counts)) == counts.cells["n"].sum()


def test_opt_outs_per_arm(counts) -> None:  # type: ignore[no-untyped-def]
    result = opt_outs(counts, ["control", "gain", "norm"])
    by = counts.by("arm")
    for arm, (n, out) in result.per_arm.items():
        assert (n, out) == (by.at[arm, "n"], by.at[arm, "opted_out"])
    table = [[out, n - out] for n, out in result.per_arm.values()]
    assert result.p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)


def test_differential_opt_out_is_a_loud_warning_only_below_0001(counts) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from analysis.checks import Quality

    arms, weights = ["control", "gain", "norm"], {"control": 1, "gain": 1, "norm": 1}
    calm = run_checks(counts, arms, weights, Quality())
    assert calm.opt_outs.p_value > 0.001
    assert not any("differential opt-out" in w for w in calm.warnings)
    cells = counts.cells.copy()
    norm = cells["arm"] == "norm"
    cells.loc[norm, "opted_out"] = cells.loc[norm, "n"] // 2  # half of one arm withdraws
    skewed = run_checks(dataclasses.replace(counts, cells=cells), arms, weights, Quality())
    table = [[out, n - out] for n, out in skewed.opt_outs.per_arm.values()]
    p = stats.chi2_contingency(table, correction=False).pvalue
    assert skewed.opt_outs.p_value == pytest.approx(p) and p < 0.001
    (warning,) = [w for w in skewed.warnings if w.startswith("differential opt-out")]
    assert f"p = {p:.2g}" in warning and "attrition" in warning


def test_orphans_and_outcomes_without_exposure_are_counted_not_dropped(engine, trial) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import trial_yaml

    with engine.begin() as conn:
        store.load_trial(conn, trial, trial_yaml())
        store.start_trial(conn, trial.id)
        visit = store.start_visit(
            conn, trial, location="loc-a", language="en", rng=random.Random(2)
        )
        # An outcome without an exposure on a randomized visit:
        store.record_event(
            conn, trial, store.EventSpec(visit.id, "contact_requested", "k1")
        )
        # A visit without an assignment, with an exposure:
        conn.execute(
            insert(visits).values(
                id="orphan",
                trial_id=trial.id,
                trial_version="v",
                location="loc-b",
                language="ar",
                started_at=store.utcnow(),
            )
        )
        store.record_event(
            conn, trial, store.EventSpec("orphan", "exposure", "k2", disclosure_version="old")
        )
        counts = load_counts(conn, trial.id, OUTCOMES)
        quality = read_quality(conn, trial, counts)
        checks = run_checks(counts, ["control", "gain", "norm"], trial.weights, quality)
    assert quality.visits_without_assignment == 1
    assert quality.events_without_assignment == {"exposure": 1}
    assert quality.outcomes_without_exposure == {"requested_contact": 1, "opened_country_info": 0}
    assert counts.by("arm")["n"].sum() == 1  # the orphan is not in the ITT counts ...
    assert any("without an assignment" in w for w in checks.warnings)  # ... but reported
    assert any("but no exposure" in w for w in checks.warnings)


def test_share_of_exposures_with_the_current_disclosure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, trial = simulated(f"sqlite:///{tmp_path / 'd.db'}", 400, stale_disclosure_rate=0.25)
    with engine.begin() as conn:
        counts = load_counts(conn, trial.id, OUTCOMES)
        quality = read_quality(conn, trial, counts)
        current = {lang: trial.disclosure_version(lang) for lang in trial.languages}
        rows = conn.execute(
            select(events.c.language, events.c.disclosure_version).where(
                events.c.type == "exposure"
            )
        ).all()
    engine.dispose()
    hand = sum(1 for lang, version in rows if version == current[lang]) / len(rows)
    assert quality.disclosure_share == pytest.approx(hand, abs=1e-12)
    assert 0.6 < hand < 0.9
    checks = run_checks(counts, ["control", "gain", "norm"], trial.weights, quality)
    assert any("current disclosure" in w for w in checks.warnings)
