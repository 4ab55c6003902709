"""The one-pass counting (visit classes) equals a plain per-visit recount of the raw rows.

The event log is simulated and then given every irregularity the report must count: opt-outs
with outcomes left behind, outcomes without exposure, a second exposure in another language
with outdated versions, an exposure without versions, randomized visits without events, visits
without an assignment (with and without events) and a second trial in the same database.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, insert, select

from analysis.checks import read_quality
from analysis.counts import (
    KEY_COLUMNS,
    OutcomeSpec,
    count_columns,
    load_counts,
    outcome_column,
    unexposed_column,
)
from analysis.visit_classes import (
    RECORD,
    UNIT,
    decode_signature,
    encode_signature,
    stale_signatures,
)
from experiments import store
from experiments.eventlog import assignments, events, visits
from tests.analysis.sim_helpers import simulated
from tests.factories import make_trial, trial_yaml

OUTCOMES = [
    OutcomeSpec("requested_contact", "contact_requested"),
    OutcomeSpec("opened_country_info", "country_info_opened"),
]


def _event(visit_id: str, trial_id: str, kind: str, key: str, **values: object) -> dict:
    now = datetime(2027, 2, 1, 12, tzinfo=UTC)
    row = {"language": None, "material_version": None, "disclosure_version": None}
    row.update(values)
    return {
        "visit_id": visit_id,
        "trial_id": trial_id,
        "type": kind,
        "idempotency_key": key,
        "occurred_at": now,
        "recorded_at": now,
        **row,
    }


def _irregular(conn: Connection, trial_id: str) -> None:
    """Add rows no kiosk would write, straight into the tables."""
    randomized = sorted(
        conn.execute(select(assignments.c.visit_id).where(assignments.c.trial_id == trial_id))
        .scalars()
        .all()
    )
    kinds: defaultdict[str, set[str]] = defaultdict(set)
    for visit_id, kind in conn.execute(select(events.c.visit_id, events.c.type)):
        kinds[visit_id].add(kind)
    opted = [v for v in randomized if "opt_out" in kinds[v]][:5]
    exposed = [v for v in randomized if "exposure" in kinds[v] and "opt_out" not in kinds[v]]
    unexposed = [v for v in randomized if "exposure" not in kinds[v] and "opt_out" not in kinds[v]]
    rows = [_event(v, trial_id, "contact_requested", f"left-{v}") for v in opted]
    rows += [_event(v, trial_id, "country_info_opened", f"unexposed-{v}") for v in unexposed[:7]]
    rows += [  # a language switch: a second exposure, in Arabic, with outdated versions
        _event(
            v,
            trial_id,
            "exposure",
            f"switch-{v}",
            language="ar",
            disclosure_version="old-disclosure",
            material_version="old-material",
        )
        for v in exposed[:9]
    ]
    rows += [_event(v, trial_id, "exposure", f"bare-{v}") for v in unexposed[7:10]]
    started = datetime(2027, 1, 20, 22, 59, tzinfo=UTC)
    for i in range(6):  # visits without an assignment, the first four with events
        orphan = f"orphan-{i}"
        conn.execute(
            insert(visits).values(
                id=orphan,
                trial_id=trial_id,
                trial_version="an older version",
                location="loc-b",
                language="ar",
                started_at=started + timedelta(hours=i),
            )
        )
        if i < 4:
            rows.append(_event(orphan, trial_id, "exposure", f"o-x-{i}", language="ar"))
            rows.append(_event(orphan, trial_id, "timeout", f"o-t-{i}"))
        if i == 0:
            rows.append(_event(orphan, trial_id, "contact_requested", "o-c-0"))
    conn.execute(insert(events), rows)
    # Randomized visits without any event.
    store.start_visits(
        conn,
        make_trial(),
        [store.VisitSpec("loc-a", "en", started_at=started - timedelta(days=d)) for d in (1, 8)],
        rng=random.Random(7),
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def recount(conn: Connection, trial_id: str) -> tuple[dict, dict]:
    """Cells and quality figures from the raw rows, one visit at a time, in plain Python."""
    arm_of = {
        row.visit_id: row.arm
        for row in conn.execute(select(assignments))
        if row.trial_id == trial_id
    }
    events_of: defaultdict[str, list] = defaultdict(list)
    for row in conn.execute(select(events)):
        if row.trial_id == trial_id:
            events_of[row.visit_id].append(row)
    cells: defaultdict[tuple, Counter] = defaultdict(Counter)
    quality = {
        "by_version": Counter(),
        "orphans": 0,
        "orphan_events": Counter(),
        "exposures": Counter(),
    }
    for visit in conn.execute(select(visits)):
        if visit.trial_id != trial_id:
            continue
        quality["by_version"][visit.trial_version] += 1
        kinds = [e.type for e in events_of[visit.id]]
        if visit.id not in arm_of:
            quality["orphans"] += 1
            quality["orphan_events"].update(kinds)
            continue
        arm = arm_of[visit.id]
        for e in events_of[visit.id]:
            if e.type == "exposure":
                shown = (e.language, e.disclosure_version, e.material_version)
                quality["exposures"][(arm, *shown)] += 1
        start = _utc(visit.started_at)
        monday = start.date() - timedelta(days=start.weekday())
        key = (
            arm,
            visit.location,
            visit.language,
            monday.isoformat(),
            str(start.hour),
            str(start.weekday()),
        )
        cell = cells[key]
        opted, exposed = "opt_out" in kinds, "exposure" in kinds
        cell["n"] += 1
        cell["opted_out"] += opted
        cell["exposed"] += exposed
        cell["opted_out_with_outcome"] += opted and any(o.event in kinds for o in OUTCOMES)
        for o in OUTCOMES:
            cell[outcome_column(o.id)] += not opted and o.event in kinds
            cell[unexposed_column(o.id)] += not opted and not exposed and o.event in kinds
    return dict(cells), quality


@pytest.fixture
def irregular_log(db_url: str):  # type: ignore[no-untyped-def]
    other = make_trial(id="other-trial")
    engine, _ = simulated(db_url, 300, seed=5, trial=other, source=trial_yaml(id="other-trial"))
    engine.dispose()
    engine, trial = simulated(db_url, 700, opt_out_rate=0.1, exposure_rate=0.85)
    with engine.begin() as conn:
        _irregular(conn, trial.id)
    yield engine, trial
    engine.dispose()


def test_cells_equal_a_per_visit_recount(irregular_log) -> None:  # type: ignore[no-untyped-def]
    engine, trial = irregular_log
    counts = load_counts(engine, trial.id, OUTCOMES)
    with engine.connect() as conn:
        expected, _ = recount(conn, trial.id)
    columns = count_columns(OUTCOMES)
    got = {
        tuple(str(row[k]) for k in KEY_COLUMNS): Counter(
            {c: int(row[c]) for c in columns if row[c]}
        )
        for _, row in counts.cells.iterrows()
    }
    assert got == expected
    # The log really has what the recount must get right:
    totals = sum(expected.values(), Counter())
    assert totals["n"] == 702 and totals["opted_out_with_outcome"] == 5
    assert totals[unexposed_column("opened_country_info")] >= 7
    assert len({key[3] for key in expected}) >= 10  # weeks
    assert {key[1:3] for key in expected} >= {("loc-a", "en"), ("loc-b", "ar")}


def test_quality_figures_equal_a_per_visit_recount(irregular_log) -> None:  # type: ignore[no-untyped-def]
    engine, trial = irregular_log
    with engine.begin() as conn:
        counts = load_counts(conn, trial.id, OUTCOMES)
        quality = read_quality(conn, trial, counts)
        _, hand = recount(conn, trial.id)
    assert quality.visits_by_version == dict(hand["by_version"])
    assert quality.visits_without_assignment == hand["orphans"] == 6
    assert (
        quality.events_without_assignment
        == {
            "contact_requested": 1,
            "exposure": 4,
            "timeout": 4,
        }
        == dict(hand["orphan_events"])
    )
    disclosure: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
    material: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (arm, language, shown_d, shown_m), number in hand["exposures"].items():
        lang = language or "?"
        current_d = trial.disclosure_version(lang) if lang in trial.disclosure else ""
        disclosure[lang][0] += number
        disclosure[lang][1] += number * (shown_d == current_d)
        current_m = trial.material_version(arm, lang) if lang in trial.languages else ""
        material[arm][0] += number
        material[arm][1] += number * (shown_m == current_m)
    assert {s.group: [s.exposures, s.current] for s in quality.disclosure} == dict(disclosure)
    assert {s.group: [s.exposures, s.current] for s in quality.material} == dict(material)
    assert disclosure["?"][0] == 3  # the exposures without versions


def test_a_counts_object_without_tally_reads_the_log_again(irregular_log) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    engine, trial = irregular_log
    with engine.begin() as conn:
        counts = load_counts(conn, trial.id, OUTCOMES)
        first = read_quality(conn, trial, counts)
        again = read_quality(conn, trial, dataclasses.replace(counts, tally=None))
    assert again == first


def test_signatures_decode_exposures_types_and_missing_values() -> None:
    text = RECORD.join(
        [
            UNIT.join(["x", "=en", "=d1", "=m1"]),
            UNIT.join(["x", "", "=", ""]),
            "opt_out",
            "finish",
            "finish",
        ]
    )
    decoded = decode_signature(text)
    assert decoded.exposures == (("en", "d1", "m1"), (None, "", None))
    assert dict(decoded.type_counts) == {"exposure": 2, "opt_out": 1, "finish": 2}
    assert decode_signature(None).types == frozenset()
    with pytest.raises(ValueError, match="cannot decode"):
        decode_signature(UNIT.join(["x", "en", "=d", "=m"]))


def test_a_signature_encodes_what_it_decodes_sorted_without_uncounted_events() -> None:
    visit_events = [
        ("opt_out", "en", None, None),
        ("exposure", "en", "d1", "m1"),
        ("finish", "en", None, None),
        ("exposure", None, "", None),
        ("language_switch", "ar", None, None),
    ]
    encoded = encode_signature(visit_events)
    exposures = [UNIT.join(["x", "", "=", ""]), UNIT.join(["x", "=en", "=d1", "=m1"])]
    assert encoded == RECORD.join(["opt_out", *exposures])  # by code point
    decoded = decode_signature(encoded)
    assert decoded.exposures == ((None, "", None), ("en", "d1", "m1"))
    assert dict(decoded.type_counts) == {"exposure": 2, "opt_out": 1}
    assert encode_signature([("timeout", None, None, None)]) is None


def test_stale_signatures_are_none_after_writes_and_found_when_changed(irregular_log) -> None:  # type: ignore[no-untyped-def]
    """The triggers keep every signature equal to the recount; a signature changed behind
    their back (or an event's) is found."""
    engine, _trial = irregular_log
    with engine.begin() as conn:
        assert stale_signatures(conn) == []
        first, second = conn.execute(
            select(events.c.visit_id).where(events.c.type == "exposure").limit(2)
        ).scalars()
        conn.execute(visits.update().where(visits.c.id == first).values(signature="opt_out"))
        assert stale_signatures(conn) == [first]
        conn.rollback()
    assert second != first


@pytest.mark.postgres
def test_planner_settings_are_restored_for_the_rest_of_the_transaction(postgres_url: str) -> None:
    from sqlalchemy import text

    from analysis.visit_classes import PLAN_SETTINGS

    engine, trial = simulated(postgres_url, 30)
    names = sorted(PLAN_SETTINGS)
    with engine.begin() as conn:
        before = [conn.execute(text(f"SHOW {name}")).scalar() for name in names]
        load_counts(conn, trial.id, OUTCOMES)
        after = [conn.execute(text(f"SHOW {name}")).scalar() for name in names]
    engine.dispose()
    assert after == before and before != [PLAN_SETTINGS[name] for name in names]


def test_sqlite_reads_the_classes_in_order_from_their_index(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No sort: SQLite walks ix_visits_classes, which only works when the query's start-hour
    expression is the index's (a bound format parameter made it sort every visit)."""
    from analysis.visit_classes import classes_query

    engine, trial = simulated(f"sqlite:///{tmp_path / 'plan.db'}", 30)
    query = classes_query(trial.id, "sqlite").compile(dialect=engine.dialect)
    parameters = tuple(query.params[name] for name in query.positiontup or ())
    with engine.connect() as conn:  # as executed: with the statement's own parameters
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}", parameters)
        plan = " | ".join(row[-1] for row in rows)
    engine.dispose()
    assert "COVERING INDEX ix_visits_classes" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
