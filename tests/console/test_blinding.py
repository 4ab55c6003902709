"""While a trial runs, no console page or JSON shows an outcome count or rate per arm; after
close, the report shows them.

The arms get outcome counts (71, 89, 97) that no other figure of the trial has: visits per
arm are about 106, times have minutes below 60, the planned sample size is 6000. Every console
GET of every role is scanned for these counts, the matching rates in the usual formats, and the
outcome's event name.
"""

from __future__ import annotations

import re

from flask import Flask

from experiments import store
from tests.console.helpers import Console, run_visits
from tests.factories import trial_yaml

TRIAL = "test-trial"
OUTCOMES = {"control": 71, "gain": 89, "norm": 97}


def _forbidden(visits: dict[str, int]) -> list[re.Pattern[str]]:
    """Each arm's outcome count as a number of its own, and its rate as text."""
    patterns = [re.compile(rf"(?<![\w.:/-]){count}(?![\w.:/])") for count in OUTCOMES.values()]
    for arm, count in OUTCOMES.items():
        rate = count / visits[arm]
        # A rate rounded as a page would show it, as a number of its own (so an unrelated value
        # such as a sample-ratio p-value of 0.9134 does not match 0.91), and unrounded: its
        # first 6 decimals, followed by any further digits.
        for text in (f"{rate:.2f}", f"{rate:.3f}", f"{rate:.1%}", f"{100 * rate:.1f}"):
            patterns.append(re.compile(rf"(?<![\d.]){re.escape(text)}(?!\d)"))
        if len(repr(rate)) > 8:  # more decimals than the rounded forms above
            patterns.append(re.compile(rf"(?<![\d.]){re.escape(repr(rate)[:8])}"))
    patterns.append(re.compile("contact_requested|requested_contact"))
    return patterns


def _pages(trial_id: str) -> list[str]:
    t = f"/console/trials/{trial_id}"
    return [
        "/console/",
        t,
        f"{t}/monitoring",
        f"{t}/monitoring.json",
        f"{t}/kiosks",
        f"{t}/look",
        f"{t}/load",
        f"{t}/report",
        f"{t}/export",
        "/console/users",
        "/console/audit",
        f"/console/audit?trial={trial_id}",
        "/console/password",
    ]


def test_no_outcome_per_arm_while_running_and_all_of_them_after_close(
    console_app: Flask, owner: Console, evaluator: Console, admin: Console
) -> None:
    assert owner.load(trial_yaml()).status_code == 302
    assert owner.step(TRIAL, "start").status_code == 302
    owner.add_kiosk(TRIAL, "loc-a")
    visits = run_visits(
        console_app, store.parse_trial(trial_yaml()), 160, outcomes=OUTCOMES, seed=7
    )
    assert all(visits[arm] > OUTCOMES[arm] for arm in OUTCOMES)
    assert not any(str(n) in {"71", "89", "97"} for n in visits.values())
    patterns = _pages(TRIAL)
    forbidden = _forbidden(visits)
    scanned = 0
    for console in (owner, evaluator, admin):
        for path in patterns:
            response = console.get(path)
            if response.status_code != 200:
                assert response.status_code == 403, (path, response.status_code)
                continue
            body = response.get_data(as_text=True)
            scanned += 1
            for pattern in forbidden:
                assert not pattern.search(body), (console, path, pattern.pattern)
    assert scanned == 22  # owner 8, evaluator 5, admin 9 pages (the rest 403)
    # Monitoring shows the per-arm visits it may show.
    data = owner.get(f"/console/trials/{TRIAL}/monitoring.json").get_json()
    assert {row["key"]: row["visits"] for row in data["by_arm"]} == visits

    assert owner.step(TRIAL, "close").status_code == 302
    report = evaluator.get(f"/console/trials/{TRIAL}/report")
    assert report.status_code == 200
    html = report.get_data(as_text=True)
    for count in OUTCOMES.values():
        assert re.search(rf"(?<![\w.:/-]){count}(?![\w.:/])", html), count
    assert "requested_contact" in html
