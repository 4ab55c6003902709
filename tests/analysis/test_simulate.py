"""The simulator: reproducible, writes through the recording path, recovers its true rates."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from analysis.counts import OutcomeSpec, load_counts
from analysis.simulate import SimulationError, parse_rates
from experiments.eventlog import events, visits
from tests.analysis.sim_helpers import simulated
from tests.factories import make_trial

PRIMARY = OutcomeSpec("requested_contact", "contact_requested")


def test_same_seed_same_data(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first, trial = simulated(f"sqlite:///{tmp_path / 'a.db'}", 300, seed=7)
    second, _ = simulated(f"sqlite:///{tmp_path / 'b.db'}", 300, seed=7)
    other, _ = simulated(f"sqlite:///{tmp_path / 'c.db'}", 300, seed=8)
    hashes = [load_counts(e, trial.id, [PRIMARY]).data_hash for e in (first, second, other)]
    with first.connect() as a, second.connect() as b:
        query = select(visits.c.id).order_by(visits.c.id)
        assert a.execute(query).scalars().all() == b.execute(query).scalars().all()
    for engine in (first, second, other):
        engine.dispose()
    assert hashes[0] == hashes[1] != hashes[2]


def test_known_rates_fall_inside_the_intervals(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from analysis.estimate import ArmCounts, compare_arms

    true = {"control": 0.05, "gain": 0.12, "norm": 0.08}
    engine, trial = simulated(
        f"sqlite:///{tmp_path / 'k.db'}",
        6000,
        seed=11,
        exposure_rate=1.0,
        rates=",".join(f"{arm}={rate}" for arm, rate in true.items()),
    )
    by_arm = load_counts(engine, trial.id, [PRIMARY]).by("arm")
    engine.dispose()
    counts = [
        ArmCounts(arm, int(row["n"] - row["opted_out"]), int(row["outcome_requested_contact"]))
        for arm, row in by_arm.iterrows()
    ]
    comparison = compare_arms(counts, "control")
    for estimate in comparison.arms:
        assert estimate.rate_ci_low <= true[estimate.arm] <= estimate.rate_ci_high
        if not estimate.is_control:
            diff = true[estimate.arm] - true["control"]
            assert estimate.diff_ci_low <= diff <= estimate.diff_ci_high


def test_rates_per_location_from_a_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    trial = make_trial()
    path = tmp_path / "rates.csv"
    path.write_text(
        "outcome,arm,location,language,rate\n"
        "requested_contact,control,loc-a,,0.40\n"
        "requested_contact,control,,,0.02\n"
    )
    rates = parse_rates(trial, "gain=0.1", path)
    assert rates.rate("requested_contact", "control", "loc-a", "ar") == 0.40
    assert rates.rate("requested_contact", "control", "loc-b", "ar") == 0.02
    assert rates.rate("requested_contact", "gain", "loc-b", "en") == 0.1
    assert rates.rate("opened_country_info", "gain", "loc-b", "en") == 0.05  # plan baseline
    engine, trial = simulated(
        f"sqlite:///{tmp_path / 'r.db'}",
        1200,
        exposure_rate=1.0,
        opt_out_rate=0.0,
        rates="",
        trial=trial,
    )
    from analysis.simulate import Settings, simulate

    simulate(engine, trial, rates, Settings(visits=1200, seed=5))
    cells = load_counts(engine, trial.id, [PRIMARY]).cells
    engine.dispose()
    control = (
        cells[cells["arm"] == "control"]
        .groupby("location")[["n", "outcome_requested_contact"]]
        .sum()
    )
    rate_a = control.at["loc-a", "outcome_requested_contact"] / control.at["loc-a", "n"]
    assert rate_a > 0.2  # (0.05 on the first 1,200 visits, 0.40 on the next ones)


def test_opted_out_visits_keep_no_outcome_events(db_url: str) -> None:
    engine, trial = simulated(db_url, 400, opt_out_rate=0.3, rates="control=0.5,gain=0.5,norm=0.5")
    with engine.connect() as conn:
        opted = set(
            conn.execute(select(events.c.visit_id).where(events.c.type == "opt_out")).scalars()
        )
        kept = set(
            conn.execute(select(events.c.type).where(events.c.visit_id.in_(opted))).scalars()
        )
    engine.dispose()
    assert kept & trial.outcome_events == set()  # outcome events deleted; exposures may stay
    assert "opt_out" in kept
    assert 60 < len(opted) < 180


@pytest.mark.parametrize(
    ("spec", "message"),
    [("gain=1.5", "between 0 and 1"), ("nobody=0.1", "unknown arm"), ("gain", "arm=0.05")],
)
def test_bad_rates_are_refused_with_a_reason(spec: str, message: str) -> None:
    with pytest.raises(SimulationError, match=message):
        parse_rates(make_trial(), spec)
