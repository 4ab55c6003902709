"""The whole lifecycle of a trial through the console, as the issue's "Done when" walks it:
sign in, a refused file with the check's messages, load, start (lock hash and time), visits,
an amendment with a reason (in the report's deviations and on the register), pause (nobody
randomized, nothing logged), resume, close, and an evaluator downloads report and export."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
from flask import Flask
from sqlalchemy import func, select

from analysis import analyze
from app.db import get_engine
from experiments import store
from experiments.eventlog import events, visits
from tests.app.visitor import Visitor
from tests.console.helpers import Console, run_visits
from tests.factories import trial_dict, trial_yaml

TRIAL = "test-trial"


def _amended_yaml() -> str:
    """The test trial with the gain arm's text changed: a change of its materials."""
    import yaml

    data = trial_dict()
    data["arms"][1]["material"]["en"]["body"] = "With support you can make a new start. en"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _count(app: Flask, table) -> int:  # type: ignore[no-untyped-def]
    with get_engine(app).connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_trial_from_loading_to_the_evaluators_download(
    console_app: Flask, owner: Console, evaluator: Console
) -> None:
    # A file with an error is refused, with the check's messages, and nothing is stored.
    refused = owner.load(trial_yaml(analysis={"alpha": 2}))
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "refused" in text and "analysis.alpha: input should be less than 0.5" in text
    with get_engine(console_app).connect() as conn:
        assert store.read_trial(conn, TRIAL) is None

    # Loaded (as an upload): a draft, with the researcher as a member.
    loaded = owner.load(trial_yaml(), upload=True)
    assert loaded.status_code == 302 and loaded.headers["Location"].endswith(f"/trials/{TRIAL}")
    page = owner.get(f"/console/trials/{TRIAL}").get_data(as_text=True)
    assert "draft" in page and "owner@example.org" in page

    # Started: the page shows the locked version's hash and the time.
    started = owner.step(TRIAL, "start")
    assert started.status_code == 302
    with get_engine(console_app).connect() as conn:
        record = store.require_trial(conn, TRIAL)
    assert record.status == "running" and record.locked_version and record.locked_at
    page = owner.get(f"/console/trials/{TRIAL}").get_data(as_text=True)
    assert record.locked_version in page
    assert record.locked_at.strftime("%Y-%m-%d %H:%M:%S") in page

    # Visits: one visitor at a kiosk added in the console, and many more by the store.
    kiosk = owner.add_kiosk(TRIAL, "loc-a")
    visitor = Visitor(console_app, kiosk)
    visitor.arrives()
    visitor.starts_in("en")
    assert visitor.visit_id is not None, (visitor.page.status_code, visitor.text[-800:])  # type: ignore[union-attr]
    visitor.taps("contact_requested")
    trial = store.parse_trial(trial_yaml())
    run_visits(console_app, trial, 150, outcomes={"control": 20, "gain": 30, "norm": 25})

    # An amendment needs a reason; with one it is stored, and the register shows it.
    reason = "The gain text promised too much; the lawyers asked for milder wording."
    missing = owner.load(_amended_yaml(), TRIAL)
    assert missing.status_code == 422
    assert "materials" in missing.get_data(as_text=True)
    amended = owner.load(_amended_yaml(), TRIAL, reason=reason)
    assert amended.status_code == 302, amended.get_data(as_text=True)
    page = owner.get(f"/console/trials/{TRIAL}").get_data(as_text=True)
    assert reason in page

    # Paused: a visitor sees the control information; nobody is randomized, nothing logged.
    assert owner.step(TRIAL, "pause").status_code == 302
    before = (_count(console_app, visits), _count(console_app, events))
    paused_visitor = Visitor(console_app, kiosk)
    paused_visitor.arrives()
    paused_visitor.starts_in("en")
    assert paused_visitor.page is not None and paused_visitor.page.status_code == 200
    assert (_count(console_app, visits), _count(console_app, events)) == before
    assert "paused" in owner.get(f"/console/trials/{TRIAL}").get_data(as_text=True)

    # Resumed, then closed; each step is in the audit log with the account's name.
    assert owner.step(TRIAL, "resume").status_code == 302
    assert owner.step(TRIAL, "close").status_code == 302
    with get_engine(console_app).connect() as conn:
        record = store.require_trial(conn, TRIAL)
        actions = [(e.action, e.actor, e.interface) for e in store.read_audit(conn, TRIAL)]
    assert record.status == "closed"
    for action in (
        "trial.load",
        "trial.start",
        "kiosk.add",
        "trial.amend",
        "trial.pause",
        "trial.resume",
        "trial.close",
    ):
        assert (action, "owner@example.org", "console") in actions, action

    # The evaluator downloads the report and the export.
    report = evaluator.get(f"/console/trials/{TRIAL}/report?download=1")
    assert report.status_code == 200 and report.mimetype == "text/html"
    assert "attachment" in report.headers["Content-Disposition"]
    html = report.get_data(as_text=True)
    assert reason in html  # the amendment is a deviation in the report
    assert "paus" in html.lower()  # the pause is in the report's flow
    export = evaluator.get(f"/console/trials/{TRIAL}/export")
    assert export.status_code == 200 and export.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(export.data)) as archive:
        names = sorted(archive.namelist())
        files = {name.rsplit("/", 1)[1]: archive.read(name) for name in names}
    assert sorted(files) == ["audit.csv", "codebook.csv", "counts.csv", "media.csv", "visits.csv"]
    audit = pd.read_csv(io.BytesIO(files["audit.csv"]))
    assert "trial.amend" in set(audit["action"]) and reason in " ".join(audit["detail"].dropna())

    # The visit-level file loads with the codebook's types; its totals equal the report's.
    codebook = pd.read_csv(io.BytesIO(files["codebook.csv"]), dtype=str, keep_default_na=False)
    assert set(codebook["locked_version"]) == {record.locked_version}
    table = pd.read_csv(
        io.BytesIO(files["visits.csv"]),
        dtype=dict(zip(codebook["variable"], codebook["type"], strict=True)),
    )
    assert list(table.columns) == list(codebook["variable"])
    result = analyze(store.parse_trial(_amended_yaml()), get_engine(console_app), record_look=False)
    primary = result.outcomes[0]
    analysed = table[table["opted_out"] == 0]
    for total in primary.totals:
        rows = analysed[analysed["arm"] == total.arm]
        assert len(rows) == total.n, total.arm
        assert int(rows[f"outcome_{primary.id}"].sum()) == total.successes, total.arm
    assert len(table) == result.flow.total.randomized

    # The public register lists the amendment with its reason.
    register = console_app.test_client().get(f"/register/{TRIAL}").get_data(as_text=True)
    assert reason in register
