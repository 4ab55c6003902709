"""Exports and reports name staff by pseudonyms ("staff 1 (researcher)"), never by e-mail
address; only the admins' audit page shows the addresses."""

from __future__ import annotations

import io
import json
import zipfile

import pandas as pd
import yaml
from flask import Flask

from app.db import get_engine
from experiments import store
from tests.console.helpers import Console, run_visits
from tests.factories import trial_dict

TRIAL = "test-trial"
STAFF = ("owner@example.org", "other@example.org", "admin@example.org", "evaluator@example.org")
REASON = "The gain text promised too much; the lawyers asked for milder wording."


def _yaml(body: str = "With support you can start again.") -> str:
    """The test trial with published contacts that are not e-mail addresses (so that any "@"
    in an export would be a staff address)."""
    data = trial_dict(contact="the front desk, phone 088 123 4567")
    data["privacy"]["contact"] = "the data protection officer, via the front desk"
    data["arms"][1]["material"]["en"]["body"] = f"{body} en"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _closed_trial(app: Flask, owner: Console, admin: Console) -> None:
    """Loaded and started by the owner, a member added by the admin, visits, an amendment, an
    unplanned look and a close."""
    assert owner.load(_yaml()).status_code == 302
    admin.get(f"/console/trials/{TRIAL}")
    assert admin.post(f"/console/trials/{TRIAL}/members", {"email": STAFF[1]}).status_code == 302
    assert owner.step(TRIAL, "start").status_code == 302
    owner.add_kiosk(TRIAL, "loc-a")
    run_visits(app, store.parse_trial(_yaml()), 40, outcomes={"gain": 12, "control": 10})
    amended = owner.load(_yaml("With support you can make a new start."), TRIAL, reason=REASON)
    assert amended.status_code == 302, amended.get_data(as_text=True)
    owner.get(f"/console/trials/{TRIAL}/look")
    look = owner.post(
        f"/console/trials/{TRIAL}/look", {"reason": "The data protection officer asked for it."}
    )
    assert look.status_code == 200
    assert owner.step(TRIAL, "close").status_code == 302


def test_no_file_of_the_export_holds_an_at_sign(
    console_app: Flask, owner: Console, admin: Console, evaluator: Console
) -> None:
    _closed_trial(console_app, owner, admin)
    export = evaluator.get(f"/console/trials/{TRIAL}/export")
    assert export.status_code == 200
    with zipfile.ZipFile(io.BytesIO(export.data)) as archive:
        files = {name.rsplit("/", 1)[1]: archive.read(name) for name in archive.namelist()}
    assert len(files) == 5
    for name, data in files.items():
        assert b"@" not in data, name

    # audit.csv: every actor and every account target is a pseudonym, roles kept, stable.
    audit = pd.read_csv(io.BytesIO(files["audit.csv"]), keep_default_na=False)
    added = audit[audit["action"] == "member.add"]
    assert audit["actor"].iloc[0] == "staff 1 (researcher)"  # the owner, first in the log
    assert list(zip(added["actor"], added["target"], strict=True)) == [
        ("staff 1 (researcher)", "staff 1 (researcher)"),  # a loader becomes a member
        ("staff 2 (admin)", "staff 3 (researcher)"),  # the admin adds other@example.org
    ]
    owner_rows = audit[audit["actor"] == "staff 1 (researcher)"]
    assert set(owner_rows["action"]) >= {"trial.load", "trial.start", "kiosk.add", "trial.amend"}
    assert set(owner_rows["action"]) >= {"trial.look", "trial.close"}

    # counts.csv: each amendment's author is the same pseudonym as in audit.csv.
    meta = json.loads(files["counts.csv"].decode().splitlines()[1][2:])
    amendments = meta["record"]["amendments"]
    assert [a["actor"] for a in amendments] == ["staff 1 (researcher)"]
    assert amendments[0]["reason"] == REASON

    # The database still names the accounts, and the admins' audit page shows them.
    with get_engine(console_app).connect() as conn:
        actors = {entry.actor for entry in store.read_audit(conn, TRIAL)}
    assert {"owner@example.org", "admin@example.org"} <= actors
    page = admin.get(f"/console/audit?trial={TRIAL}").get_data(as_text=True)
    assert "owner@example.org" in page and "other@example.org" in page


def test_the_report_names_staff_by_pseudonym(
    console_app: Flask, owner: Console, admin: Console, evaluator: Console
) -> None:
    _closed_trial(console_app, owner, admin)
    report = evaluator.get(f"/console/trials/{TRIAL}/report")
    html = report.get_data(as_text=True)
    assert report.status_code == 200
    assert "by staff 1 (researcher): unplanned interim look" in html
    for email in STAFF:
        assert email not in html, email


def test_the_command_line_export_names_no_account(
    console_app: Flask, owner: Console, admin: Console, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from analysis.export import export_trial, read_export

    _closed_trial(console_app, owner, admin)
    path = tmp_path / "counts.csv"
    export_trial(store.parse_trial(_yaml()), get_engine(console_app), path)
    assert "@" not in path.read_text(encoding="utf-8")
    record = read_export(path, TRIAL).record
    assert [a.actor for a in record.amendments] == ["staff 1 (researcher)"]
