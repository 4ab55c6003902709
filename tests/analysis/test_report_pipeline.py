"""``analyze`` on SQLite and PostgreSQL: hand-checkable numbers, looks, version deviations."""

from __future__ import annotations

import random

import yaml
from sqlalchemy import func, select

from analysis import analyze
from analysis.report import render_markdown
from experiments import store
from experiments.eventlog import result_looks
from tests.analysis.sim_helpers import hand_flow, simulated
from tests.factories import make_trial, trial_dict, trial_yaml


def test_report_numbers_equal_hand_counts_and_looks_are_counted(db_url: str) -> None:
    engine, trial = simulated(db_url, 500, opt_out_rate=0.06)
    first = analyze(trial, engine)
    second = analyze(trial, engine)
    with engine.connect() as conn:
        looks = conn.execute(select(func.count()).select_from(result_looks)).scalar_one()
    hand = hand_flow(engine, trial)
    engine.dispose()
    assert (first.transparency.looks, second.transparency.looks, looks) == (1, 2, 2)
    assert first.transparency.data_hash == second.transparency.data_hash
    for total in second.primary.totals:
        row = hand[total.arm]
        assert total.n == row["randomized"] - row["opted_out"]
        assert total.successes == row["requested_contact"]
    assert second.transparency.deviations == ()
    # Visits are randomized within location: a stratum of the randomization, not a cluster.
    assert second.options.cluster is None and second.options.strata == ("location",)
    assert second.primary.status == "pre-registered"


def test_changes_after_the_lock_are_deviations(db_url: str) -> None:
    engine, _ = simulated(db_url, 200)  # loads and locks version 1
    data = trial_dict()
    data["schedule"] = {"start": "2027-01-04", "end": "2027-04-30"}
    data["outcomes"] = [
        *data["outcomes"],
        {"id": "finished", "event": "finish", "description": "Visitor tapped Finish."},
    ]
    data["outcomes"] = [o for o in data["outcomes"] if o["id"] != "opened_country_info"]
    data["analysis"] = {**data["analysis"], "correction": "bh"}
    source = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    changed = make_trial(**{k: data[k] for k in ("schedule", "outcomes", "analysis")})
    with engine.begin() as conn:
        store.load_trial(conn, changed, source)
        store.start_visits(
            conn, changed, [store.VisitSpec("loc-a", "en")] * 3, rng=random.Random(4)
        )
    report = analyze(changed, engine)
    engine.dispose()
    kinds = {(d.kind, d.what) for d in report.transparency.deviations}
    assert ("date changed", "schedule.end") in kinds
    assert ("outcome added", "finished") in kinds
    assert ("outcome removed", "opened_country_info") in kinds
    assert ("plan changed", "analysis.correction") in kinds
    assert any(kind == "data under a changed version" for kind, _ in kinds)
    # The pre-registered plan rules: holm, and the removed outcome is still reported.
    assert report.options.correction == "holm"
    statuses = {o.id: o.status for o in report.outcomes}
    assert statuses["opened_country_info"].startswith("pre-registered, removed")
    assert statuses["finished"].startswith("added after pre-registration")
    assert report.outcomes[0].id == "requested_contact"


def test_a_trial_never_started_has_no_lock_and_says_so(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from experiments.eventlog import make_engine, upgrade

    url = f"sqlite:///{tmp_path / 'n.db'}"
    upgrade(url)
    engine = make_engine(url)
    trial = make_trial()
    with engine.begin() as conn:
        store.load_trial(conn, trial, trial_yaml())
    report = analyze(trial, engine, record_look=False)
    engine.dispose()
    assert report.transparency.deviations[0].kind == "no pre-registration lock"
    assert "NOT LOCKED" in render_markdown(report)
    assert report.transparency.looks == 0


def test_the_report_shows_the_locked_materials_and_what_later_versions_changed(
    db_url: str,
) -> None:
    engine, _ = simulated(db_url, 200)  # loads and locks version 1
    data = trial_dict()
    data["arms"][1]["material"]["en"]["body"] = "Edited after the lock. en"
    data["disclosure"]["en"]["study"] = "An edited study sentence."
    data["outcomes"][1]["event"] = "country_page_opened"
    source = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    changed = make_trial(
        arms=data["arms"], disclosure=data["disclosure"], outcomes=data["outcomes"]
    )
    with engine.begin() as conn:
        store.load_trial(conn, changed, source)
        store.start_visits(
            conn, changed, [store.VisitSpec("loc-a", "en")] * 3, rng=random.Random(4)
        )
    report = analyze(changed, engine, adjustment="logit")
    engine.dispose()
    t = report.transparency
    gain = next(arm for arm in t.arms if arm.id == "gain")
    locked_body = "With support you can start again. en"
    assert dict((m[0], m[2]) for m in gain.materials)["en"] == locked_body
    assert all("An edited study sentence." not in text for _, _, text in t.disclosures)
    (later,) = t.other_versions
    assert later.visits == 3
    assert [arm.id for arm in later.arms] == ["gain"]
    assert dict((m[0], m[2]) for m in later.arms[0].materials)["en"] == "Edited after the lock. en"
    assert [(language, "An edited study sentence." in text) for language, _, text in
            later.disclosures] == [("en", True)]  # fmt: skip
    found = {(d.kind, d.what): d for d in t.deviations}
    redefined = found[("outcome redefined", "opened_country_info")]
    assert (redefined.planned, redefined.actual.split(" (")[0]) == (
        "event country_info_opened",
        "event country_page_opened",
    )
    assert found[("analysis choice", "adjustment")].actual == "logit"
    (warning,) = [w for w in report.warnings if "from the pre-registered plan" in w]
    assert warning.startswith(f"{len(t.deviations)} deviations") and "outcome redefined" in warning
    markdown = render_markdown(report)
    assert "What visitors saw under later versions" in markdown
    assert markdown.index("With support you can start again. en") < markdown.index(
        "Edited after the lock. en"
    )
