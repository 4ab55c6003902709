"""What the console's lifecycle leaves in the report: pauses in the participant flow and each
amendment as a deviation (with its reason, without its author), also through an export file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from analysis import analyze
from analysis.export import export_trial
from analysis.report import render_markdown
from analysis.report.json import render_json
from experiments import store
from experiments.lifecycle import load_trial_file
from tests.analysis.sim_helpers import simulated
from tests.factories import trial_dict, trial_yaml

ACTOR = store.Actor("researcher@example.org", "console")


def test_pauses_and_amendments_reach_the_report(tmp_path: Path) -> None:
    engine, trial = simulated(f"sqlite:///{tmp_path / 'r.db'}", 300)
    now = store.utcnow()
    with engine.begin() as conn:
        store.pause_trial(conn, trial.id, actor=ACTOR, now=now - timedelta(days=2))
        store.resume_trial(conn, trial.id, actor=ACTOR, now=now - timedelta(days=1))
        store.pause_trial(conn, trial.id, actor=ACTOR, now=now - timedelta(hours=1))
    data = trial_dict()
    data["arms"][1]["material"]["en"]["body"] += "\n\nOne more sentence."
    path = tmp_path / f"{trial.id}.yaml"
    path.write_text(trial_yaml(arms=data["arms"]))
    loaded = load_trial_file(
        engine, path, interface_languages=("en", "ar"), actor=ACTOR, reason="a clearer ending"
    )
    assert loaded.amendment is not None
    report = analyze(trial, engine, record_look=False)
    flow = report.flow.to_dict()
    assert [p["resumed_at"] is None for p in flow["pauses"]] == [False, True]
    (amendment,) = [d for d in report.transparency.deviations if d.kind == "amendment"]
    assert amendment.what.startswith(f"version {loaded.version[:12]}")
    assert amendment.actual == "changed: materials; reason: a clearer ending"
    markdown = render_markdown(report)
    assert "The trial was paused 2 times" in markdown and "now (still paused)" in markdown
    assert "a clearer ending" in markdown
    assert "researcher@example.org" not in markdown  # the author is in the audit log only
    assert "researcher@example.org" not in render_json(report)
    export = tmp_path / "export.json"
    export_trial(trial, engine, export, threshold=1)
    engine.dispose()
    assert "a clearer ending" in export.read_text()  # the export holds the history
    from_export = analyze(trial, export=export)
    assert from_export.flow.to_dict()["pauses"] == flow["pauses"]
    assert [d for d in from_export.transparency.deviations if d.kind == "amendment"] == [amendment]
