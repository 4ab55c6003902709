"""The visit-level export: merged exactly like the count export, its codebook, the bundle."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sqlalchemy import func, select

from analysis.counts import OutcomeSpec, load_counts, outcome_column
from analysis.export import EXPORT_KEYS, coarsen, merge_cells, read_export
from analysis.export_bundle import export_bundle
from analysis.media_export import MEDIA_COLUMNS, media_rows, write_media
from analysis.visit_export import coarsen_visits, codebook, read_visit_rows
from experiments.eventlog import result_looks
from experiments.store import Amendment, TrialHistory, TrialStatus, parse_trial
from tests.analysis.sim_helpers import hand_flow, simulated
from tests.factories import make_trial

OUTCOMES = [
    OutcomeSpec("requested_contact", "contact_requested"),
    OutcomeSpec("opened_country_info", "country_info_opened"),
]
FLAGS = ["opted_out", "exposed", *(outcome_column(o.id) for o in OUTCOMES)]


def _random_visits(seed: int) -> pd.DataFrame:
    """Visit rows with uneven cells: many small ones, so every merge step is exercised."""
    rng = np.random.default_rng(seed)
    rows = []
    for arm, rate in (("control", 0.05), ("gain", 0.3), ("norm", 0.6)):
        for location in ("loc-a", "loc-b", "loc-c")[: rng.integers(1, 4)]:
            for language in ("en", "ar"):
                for week in ("2027-01-04", "2027-01-11", "2027-01-18"):
                    for _ in range(int(rng.choice([0, 3, 12, 40]))):
                        opted = int(rng.random() < 0.08)
                        rows.append({
                            "arm": arm, "location": location, "language": language,
                            "week": week, "opted_out": opted,
                            "exposed": int(rng.random() < 0.95),
                            "outcome_requested_contact": int(rng.random() < rate) * (1 - opted),
                            "outcome_opened_country_info": int(rng.random() < 0.5) * (1 - opted),
                        })  # fmt: skip
    return pd.DataFrame(rows)


def _cells(rows: pd.DataFrame) -> pd.DataFrame:
    cells = rows.groupby(list(EXPORT_KEYS), as_index=False)[FLAGS].sum()
    cells.insert(4, "n", rows.groupby(list(EXPORT_KEYS)).size().to_numpy())
    return cells


@pytest.mark.parametrize("seed", range(25))
def test_grouped_visits_are_exactly_the_count_export(seed: int) -> None:
    rows = _random_visits(seed)
    cells = _cells(rows)
    merged = merge_cells(cells, OUTCOMES, 10)
    table, suppressed = coarsen(cells, OUTCOMES, 10)
    pd.testing.assert_frame_equal(merged.table, table)
    assert merged.suppressed == suppressed
    visits = coarsen_visits(rows, merged, OUTCOMES)
    assert len(visits) == len(rows)
    keys = list(EXPORT_KEYS)
    grouped = (
        visits.groupby(keys)
        .agg(
            n=("arm", "size"),
            **{column: (column, lambda s: s.sum(min_count=len(s))) for column in FLAGS},
        )
        .reset_index()
    )
    expected = table.set_index(keys).sort_index()
    got = grouped.set_index(keys).sort_index()
    assert list(got.index) == list(expected.index)
    for column in ["n", *FLAGS]:
        want = expected[column].astype("Float64").to_numpy()
        have = got[column].astype("Float64").to_numpy()
        assert ((want == have) | (pd.isna(want) & pd.isna(have))).all(), column
    # Nothing small is left anywhere: every cell's counts and complements are 0 or >= 10.
    sizes = visits.groupby(keys).size()
    assert ((sizes == 0) | (sizes >= 10)).all()


def test_a_count_left_empty_is_empty_for_every_visit_of_its_row() -> None:
    rows = pd.DataFrame(
        [{"arm": "a", "location": "x", "language": "en", "week": "w", "opted_out": 0,
          "exposed": 1, "outcome_o": int(i < 3)} for i in range(40)]
        + [{"arm": "b", "location": "x", "language": "en", "week": "w", "opted_out": 0,
            "exposed": 1, "outcome_o": int(i < 20)} for i in range(50)]
    )  # fmt: skip
    outcomes = [OutcomeSpec("o", "e")]
    cells = rows.groupby(list(EXPORT_KEYS), as_index=False)[
        ["opted_out", "exposed", "outcome_o"]
    ].sum()
    cells["n"] = [40, 50]
    merged = merge_cells(cells, outcomes, 10)
    assert merged.suppressed == {"outcome_o": ["a"]}
    visits = coarsen_visits(rows, merged, outcomes)
    assert visits.loc[visits["arm"] == "a", "outcome_o"].isna().all()
    assert int(visits.loc[visits["arm"] == "b", "outcome_o"].sum()) == 20


def test_codebook_describes_every_column_with_a_pandas_type() -> None:
    trial = make_trial()
    book = codebook(trial, OUTCOMES)
    names = [variable.variable for variable in book]
    assert names == ["arm", "location", "language", "week", *FLAGS]
    for variable in book:
        pd.Series([], dtype=variable.type)  # a type pandas knows
        assert variable.meaning and variable.allowed_values
    assert book[0].allowed_values == "control | gain | norm"
    assert "primary outcome requested_contact" in book[6].meaning


def test_bundle_reads_once_counts_once_and_matches_the_database(tmp_path, db_url: str) -> None:  # type: ignore[no-untyped-def]
    engine, trial = simulated(db_url, 500, opt_out_rate=0.1, exposure_rate=0.8)
    with engine.connect() as conn:
        looks = conn.execute(select(func.count()).select_from(result_looks)).scalar_one()
        assert len(read_visit_rows(conn, trial.id, OUTCOMES)) == 500
    bundle = export_bundle(trial, engine, tmp_path / "out")
    assert [path.name for path in bundle.files] == [
        "counts.csv",
        "visits.csv",
        "codebook.csv",
        "audit.csv",
        "media.csv",
    ]
    with engine.connect() as conn:
        after = conn.execute(select(func.count()).select_from(result_looks)).scalar_one()
    assert after == looks + 1
    book = pd.read_csv(tmp_path / "out" / "codebook.csv", dtype=str, keep_default_na=False)
    types = dict(zip(book["variable"], book["type"], strict=True))
    table = pd.read_csv(tmp_path / "out" / "visits.csv", dtype=types)
    assert str(table["exposed"].dtype) == "Int64" and str(table["arm"].dtype) == "string"
    hand = hand_flow(engine, trial)
    exported = read_export(tmp_path / "out" / "counts.csv", trial.id)
    for arm, row in hand.items():
        mine = table[table["arm"] == arm]
        assert len(mine) == row["randomized"]
        assert int(mine["exposed"].sum()) == row["exposed"]
        assert int(mine["opted_out"].sum()) == row["opted_out"]
        column = outcome_column("requested_contact")
        if not mine[column].isna().any():
            assert int(mine[column].sum()) == row["requested_contact"]
        assert exported.counts.by("arm").at[arm, "n"] == row["randomized"]
    engine.dispose()


def test_visit_rows_agree_with_the_counting_pass(db_url: str) -> None:
    engine, trial = simulated(db_url, 300, opt_out_rate=0.1)
    counts = load_counts(engine, trial.id, OUTCOMES)
    with engine.connect() as conn:
        rows = read_visit_rows(conn, trial.id, OUTCOMES)
    by_arm = rows.groupby("arm")[FLAGS].sum()
    totals = counts.by("arm")
    for column in FLAGS:
        assert by_arm[column].to_dict() == totals[column].to_dict(), column
    weeks = set(counts.cells["week"].astype(str))
    assert set(rows["week"]) == weeks  # the same week keys as the cells
    engine.dispose()


# -- media.csv: the pictures and narrations a visitor of each arm met ---------------------------

TRIALS_DIR = Path("experiments/trials")


def _expected_media(text: str) -> set[tuple[str, str, str, str, str, str]]:
    """The media rows read from the trial file with plain YAML, each file hashed from disk."""
    data = yaml.safe_load(text)
    rows = set()
    for arm in data["arms"]:
        found = [
            (
                arm["id"],
                "picture",
                image["file"],
                hashlib.sha256((TRIALS_DIR / image["file"]).read_bytes()).hexdigest(),
                image["kind"],
                " ".join(sorted(image["alt"])),
            )
            for image in arm.get("images", [])
        ]
        found += [
            (
                arm["id"],
                "narration",
                narration["file"],
                hashlib.sha256((TRIALS_DIR / narration["file"]).read_bytes()).hexdigest(),
                narration["voice"],
                language,
            )
            for language, narration in arm.get("audio", {}).items()
        ]
        rows |= set(found) or {(arm["id"], "none", "", "", "", "")}
    return rows


def _media_keys(rows: list[dict[str, str]]) -> set[tuple[str, ...]]:
    keys = ("arm", "media", "file", "sha256", "kind", "languages")
    return {tuple(row[key] for key in keys) for row in rows}


@pytest.mark.parametrize("example", ["organ-donation-2013", "tearoom-return-info"])
def test_media_rows_are_the_files_each_arm_shows(example: str) -> None:
    text = (TRIALS_DIR / f"{example}.yaml").read_text(encoding="utf-8")
    trial = parse_trial(text)
    start, end = datetime(2027, 1, 4, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)
    record = TrialHistory(
        status=TrialStatus.CLOSED,
        current_version="v1",
        locked_version="v1",
        locked_at=start,
        stopped_at=end,
        version_sources={"v1": text},
    )
    rows = media_rows(record, trial)
    expected = _expected_media(text)
    assert _media_keys(rows) == expected and len(rows) == len(expected)
    assert any(media != "none" for _, media, *_ in expected)  # the example has media
    assert {(r["version"], r["in_use_from"], r["in_use_until"]) for r in rows} == {
        ("v1", "2027-01-04T00:00:00+00:00", "2027-03-01T00:00:00+00:00")
    }


def test_media_rows_follow_the_versions_visitors_met(tmp_path: Path) -> None:
    text = (TRIALS_DIR / "organ-donation-2013.yaml").read_text(encoding="utf-8")
    old_sha = hashlib.sha256((TRIALS_DIR / "organ-donation-2013/group-of-people.png").read_bytes())
    new_sha = "ab" * 32
    amended = text.replace(old_sha.hexdigest(), new_sha)
    assert amended != text
    times = [datetime(2027, 1, day, tzinfo=UTC) for day in (4, 18, 31)]
    amendment = Amendment("v2", "v1", times[1], ("materials",), "new photo", "a", "cli")
    record = TrialHistory(
        status=TrialStatus.CLOSED,
        current_version="v2",
        locked_version="v1",
        locked_at=times[0],
        stopped_at=times[2],
        version_sources={"v1": text, "v2": amended},
        amendments=(amendment,),
    )
    rows = [row for row in media_rows(record, parse_trial(amended)) if row["arm"] == "norm_photo"]
    assert [
        (r["version"], r["in_use_from"][:10], r["in_use_until"][:10], r["sha256"]) for r in rows
    ] == [
        ("v1", "2027-01-04", "2027-01-18", old_sha.hexdigest()),
        ("v2", "2027-01-18", "2027-01-31", new_sha),
    ]
    path = write_media(tmp_path / "media.csv", record, parse_trial(amended))
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert tuple(table.columns) == MEDIA_COLUMNS
    assert len(table) == 2 * len(_expected_media(text))
