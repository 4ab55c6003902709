"""The participant flow equals counts made by hand from the raw event-log rows."""

from __future__ import annotations

from analysis.consort import participant_flow
from analysis.counts import OutcomeSpec, load_counts
from tests.analysis.sim_helpers import hand_flow, simulated


def test_flow_equals_hand_counts(db_url: str) -> None:
    engine, trial = simulated(db_url, 500, opt_out_rate=0.1, exposure_rate=0.9)
    counts = load_counts(engine, trial.id, [OutcomeSpec("requested_contact", "contact_requested")])
    flow = participant_flow(counts, ["control", "gain", "norm"])
    hand = hand_flow(engine, trial)
    engine.dispose()
    for arm in flow.arms:
        row = hand[arm.arm]
        assert (arm.randomized, arm.exposed, arm.opted_out) == (
            row["randomized"],
            row["exposed"],
            row["opted_out"],
        )
        assert arm.analysed == row["randomized"] - row["opted_out"]
        assert arm.not_exposed == row["randomized"] - row["exposed"]
    assert flow.total.randomized == 500
    assert flow.total.opted_out == sum(row["opted_out"] for row in hand.values())


def test_an_arm_without_visits_is_listed_with_zeros(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine, trial = simulated(f"sqlite:///{tmp_path / 'z.db'}", 30)
    counts = load_counts(engine, trial.id, [OutcomeSpec("requested_contact", "contact_requested")])
    engine.dispose()
    flow = participant_flow(counts, ["control", "gain", "norm", "never_used"])
    assert flow.arm("never_used").to_dict() == {
        "arm": "never_used",
        "randomized": 0,
        "exposed": 0,
        "not_exposed": 0,
        "opted_out": 0,
        "analysed": 0,
    }
