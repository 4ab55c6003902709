"""Cell counts by SQL GROUP BY equal counts by hand; time keys; hash; the export file."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pandas as pd
import pytest

from analysis.checks import Quality
from analysis.counts import OutcomeSpec, cells_hash, itt_frame, load_counts, outcome_column
from analysis.export import coarsen, read_export, write_export
from experiments import store
from experiments.store import TrialHistory, TrialStatus
from tests.analysis.sim_helpers import hand_flow, simulated
from tests.factories import trial_yaml

OUTCOMES = [
    OutcomeSpec("requested_contact", "contact_requested"),
    OutcomeSpec("opened_country_info", "country_info_opened"),
]


def test_cells_sum_to_hand_counts_and_itt_rows(db_url: str) -> None:
    engine, trial = simulated(db_url, 400, opt_out_rate=0.1)
    counts = load_counts(engine, trial.id, OUTCOMES)
    by_arm = counts.by("arm")
    hand = hand_flow(engine, trial)
    for arm, row in hand.items():
        assert by_arm.at[arm, "n"] == row["randomized"]
        assert by_arm.at[arm, "exposed"] == row["exposed"]
        assert by_arm.at[arm, "opted_out"] == row["opted_out"]
        for outcome in OUTCOMES:
            assert by_arm.at[arm, outcome_column(outcome.id)] == row[outcome.id]
    rows = itt_frame(engine, trial.id, OUTCOMES)
    assert len(rows) == 400 == by_arm["n"].sum()
    assert rows.groupby("arm")["requested_contact"].sum().to_dict() == {
        arm: row["requested_contact"] for arm, row in hand.items()
    }
    engine.dispose()


def test_time_keys_are_utc_week_hour_and_weekday(engine, trial) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        store.load_trial(conn, trial, trial_yaml())
        store.start_trial(conn, trial.id)
        when = [datetime(2027, 1, 6, 14, 30, tzinfo=UTC), datetime(2027, 1, 10, 23, 5, tzinfo=UTC)]
        store.start_visits(
            conn,
            trial,
            [store.VisitSpec("loc-a", "en", started_at=t) for t in when],
            rng=random.Random(1),
        )
    cells = load_counts(engine, trial.id, OUTCOMES).cells
    keys = set(zip(cells["week"], cells["hour"], cells["weekday"], strict=True))
    # Wednesday 6 January 14:30 and Sunday 10 January 23:05 fall in the week of Monday 4 January.
    assert keys == {("2027-01-04", "14", "2"), ("2027-01-04", "23", "6")}


def test_hash_ignores_row_order_and_changes_with_any_count() -> None:
    cells = pd.DataFrame(
        {
            "arm": ["a", "b"],
            "location": ["x", "x"],
            "language": ["en", "en"],
            "week": ["w", "w"],
            "hour": ["1", "1"],
            "weekday": ["0", "0"],
            "n": [10, 12],
        }
    )
    outcomes = [OutcomeSpec("o", "e")]
    assert cells_hash(cells, outcomes) == cells_hash(cells.iloc[::-1], outcomes)
    changed = cells.assign(n=[10, 13])
    assert cells_hash(cells, outcomes) != cells_hash(changed, outcomes)


@pytest.fixture(scope="module")
def counts(tmp_path_factory):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path_factory.mktemp('export') / 'e.db'}"
    engine, trial = simulated(url, 1500, opt_out_rate=0.05)
    yield load_counts(engine, trial.id, OUTCOMES)
    engine.dispose()


def test_export_merges_small_cells_and_keeps_arm_totals(counts, tmp_path) -> None:  # type: ignore[no-untyped-def]
    table, suppressed = coarsen(counts.cells, OUTCOMES, 10)
    columns = ["n", "opted_out", "exposed", *(outcome_column(o.id) for o in OUTCOMES)]
    values = table[columns].to_numpy(dtype=float)
    assert not ((values > 0) & (values < 10)).any()
    analysed = table["n"] - table["opted_out"]
    for column in columns[3:]:
        remaining = (analysed - table[column]).dropna()
        assert not ((remaining > 0) & (remaining < 10)).any()
    assert "hour" not in table and "weekday" not in table
    if not suppressed:
        assert (
            table.groupby("arm")[columns]
            .sum()
            .astype(int)
            .equals(counts.by("arm")[columns].astype(int))
        )
    path = tmp_path / "export.csv"
    write_export(path, counts, TrialHistory(status=TrialStatus.RUNNING), Quality(), threshold=10)
    back = read_export(path, counts.trial_id)
    assert back.counts.source == "export"
    assert back.counts.by("arm")["n"].to_dict() == counts.by("arm")["n"].to_dict()
    assert back.record.status == "running"


def test_export_leaves_a_count_empty_when_even_the_arm_total_is_small() -> None:
    cells = pd.DataFrame(
        {
            "arm": ["a", "a", "b"],
            "location": ["x", "y", "x"],
            "language": ["en"] * 3,
            "week": ["w"] * 3,
            "n": [40, 30, 50],
            "opted_out": [0, 0, 0],
            "exposed": [40, 30, 50],
            "outcome_o": [2, 1, 20],
        }
    )
    table, suppressed = coarsen(cells, [OutcomeSpec("o", "e")], 10)
    assert suppressed == {"outcome_o": ["a"]}
    assert table.loc[table["arm"] == "a", "n"].tolist() == [70]
    assert table.loc[table["arm"] == "a", "outcome_o"].isna().all()


def test_cells_are_compact_and_batches_change_nothing(db_url: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Keys are categoricals of their sorted texts; fetching and hashing in small batches gives
    the same cells and the same hash as the canonical CSV of the whole table."""
    import hashlib

    from analysis import counts as counts_module

    engine, trial = simulated(db_url, 300, opt_out_rate=0.1)
    whole = load_counts(engine, trial.id, OUTCOMES)
    monkeypatch.setattr(counts_module, "FETCH_ROWS", 7)
    monkeypatch.setattr(counts_module, "HASH_ROWS", 5)
    batched = load_counts(engine, trial.id, OUTCOMES)
    engine.dispose()
    assert batched.cells.equals(whole.cells) and batched.data_hash == whole.data_hash
    cells = whole.cells
    for key in ("arm", "location", "language", "week", "hour", "weekday"):
        assert isinstance(cells[key].dtype, pd.CategoricalDtype)
        categories = [str(c) for c in cells[key].cat.categories]
        assert categories == sorted(categories)
    plain = cells.astype({key: str for key in ("arm", "location", "language", "week")})
    plain = plain.astype({"hour": str, "weekday": str})
    text = plain.to_csv(index=False, lineterminator="\n")
    assert whole.data_hash == hashlib.sha256(text.encode()).hexdigest()
    assert cells_hash(plain.iloc[::-1], OUTCOMES) == whole.data_hash
    by_arm = whole.by("arm", "location")
    assert not any(isinstance(level, pd.CategoricalIndex) for level in by_arm.index.levels)
    assert by_arm["n"].sum() == 300
