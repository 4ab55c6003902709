"""Who gets what: a role × route table over every console route of the app's URL map (a new
route without an entry fails), kiosk tokens get nothing from the console, and a console session
cannot post kiosk events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.db import get_engine
from experiments import store
from experiments.eventlog import events
from experiments.store.users import find_user
from tests.app.visitor import Visitor
from tests.console.helpers import PASSWORD, Console, add_account, run_visits
from tests.factories import trial_yaml

TRIAL = "test-trial"
ANON, OWNER, OTHER, EVALUATOR, ADMIN = "anonymous", "owner", "other", "evaluator", "admin"
ROLES = (ANON, OWNER, OTHER, EVALUATOR, ADMIN)
EMAILS = {
    OWNER: "owner@example.org",
    OTHER: "other@example.org",
    EVALUATOR: "evaluator@example.org",
    ADMIN: "admin@example.org",
}
#: A redirect to the sign-in page.
LOGIN = "login"


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    expect: dict[str, int | str]
    data: dict[str, str] | None = None


def _all(code: int | str, **others: int | str) -> dict[str, int | str]:
    """``code`` for every signed-in role, a sign-in redirect for anonymous, ``others`` over."""
    table: dict[str, int | str] = {role: code for role in ROLES}
    table[ANON] = LOGIN
    table.update(others)
    return table


def _only(roles: tuple[str, ...], code: int | str) -> dict[str, int | str]:
    """``code`` for ``roles``, 403 for the other signed-in roles."""
    return _all(403, **dict.fromkeys(roles, code))


@dataclass(frozen=True)
class World:
    app: Flask
    kiosk_id: str
    kiosk_path: str
    dummy_id: int


def _table(world: World) -> dict[str, list[Case]]:
    """Every console endpoint and what each role gets, on a running trial."""
    t, k = f"/console/trials/{TRIAL}", world.kiosk_id
    return {
        "console.sign_in": [
            Case("GET", "/console/sign-in", _all(302, **{ANON: 200})),
            Case(
                "POST",
                "/console/sign-in",
                _all(302, **{ANON: 401}),
                {"email": "nobody@example.org", "password": "wrong password"},
            ),
        ],
        # Signing out sends to the sign-in page (run last: the clients are shared).
        "console.sign_out": [Case("POST", "/console/sign-out", _all(LOGIN))],
        "console.password": [
            Case("GET", "/console/password", _all(200)),
            Case("POST", "/console/password", _all(200), {"current": "x", "new": "y"}),
        ],
        "console.trials": [Case("GET", "/console/", _all(200))],
        "console.trial": [Case("GET", t, _all(200, **{OTHER: 403}))],
        "console.load_new": [
            Case("GET", "/console/load", _only((OWNER, OTHER), 200)),
            Case("POST", "/console/load", _only((OWNER, OTHER), 422)),
        ],
        "console.load_version": [
            Case("GET", f"{t}/load", _only((OWNER,), 200)),
            Case("POST", f"{t}/load", _only((OWNER,), 422)),
        ],
        "console.step": [Case("POST", f"{t}/resume", _only((OWNER,), 302))],
        # On a running trial the owner is refused with a message (tested in test_results_link).
        "console.publish_results": [
            Case(
                "POST",
                f"{t}/results-url",
                _only((OWNER,), 302),
                {"results_url": "https://example.org/results"},
            )
        ],
        "console.add_trial_member": [
            Case("POST", f"{t}/members", _only((ADMIN,), 302), {"email": "dummy@example.org"})
        ],
        "console.monitoring": [Case("GET", f"{t}/monitoring", _all(200, **{OTHER: 403}))],
        "console.monitoring_json": [Case("GET", f"{t}/monitoring.json", _all(200, **{OTHER: 403}))],
        "console.look": [
            Case("GET", f"{t}/look", _only((OWNER,), 200)),
            Case("POST", f"{t}/look", _only((OWNER,), 422), {"reason": "too short"}),
        ],
        # Results while the trial runs: nobody (test_results_after_close has the other half).
        "console.report": [Case("GET", f"{t}/report", _all(403))],
        "console.export": [Case("GET", f"{t}/export", _all(403))],
        "console.kiosks": [Case("GET", f"{t}/kiosks", _only((OWNER, ADMIN), 200))],
        "console.add_kiosk": [
            Case("POST", f"{t}/kiosks", _only((OWNER, ADMIN), 200), {"location": "loc-b"})
        ],
        "console.change_kiosk": [
            Case("POST", f"/console/kiosks/{k}/off", _only((OWNER, ADMIN), 302)),
            Case("POST", f"/console/kiosks/{k}/on", _only((OWNER, ADMIN), 302)),
            Case("POST", f"/console/kiosks/{k}/replace", _only((OWNER, ADMIN), 200)),
            Case("POST", f"/console/kiosks/{k}/revoke", _only((OWNER, ADMIN), 302)),
        ],
        "console.users": [
            Case("GET", "/console/users", _only((ADMIN,), 200)),
            Case("POST", "/console/users", _only((ADMIN,), 200), {"email": "", "role": "admin"}),
        ],
        "console.change_user": [
            Case("POST", f"/console/users/{world.dummy_id}/disable", _only((ADMIN,), 302)),
            Case("POST", f"/console/users/{world.dummy_id}/enable", _only((ADMIN,), 302)),
        ],
        "console.audit": [Case("GET", "/console/audit", _only((ADMIN,), 200))],
    }


@pytest.fixture
def world(console_app: Flask) -> World:
    """A running trial loaded by the owner, with a kiosk and some visits; a spare account."""
    owner = Console(console_app).signed_in(EMAILS[OWNER])
    assert owner.load(trial_yaml()).status_code == 302
    assert owner.step(TRIAL, "start").status_code == 302
    path = owner.add_kiosk(TRIAL, "loc-a")
    add_account(console_app, "dummy@example.org", "researcher")
    with get_engine(console_app).connect() as conn:
        kiosk_id = store.list_kiosks(conn, TRIAL)[0].id
        dummy = find_user(conn, "dummy@example.org")
    assert dummy is not None
    run_visits(console_app, store.parse_trial(trial_yaml()), 20, outcomes={})
    return World(console_app, kiosk_id, path, dummy.id)


def _client(app: Flask, role: str) -> Console:
    console = Console(app)
    if role == ANON:
        console.get("/console/sign-in")  # a CSRF token, as a browser would have
        return console
    return console.signed_in(EMAILS[role], PASSWORD)


def _outcome(response) -> int | str:  # type: ignore[no-untyped-def]
    if response.status_code == 302 and "/console/sign-in" in response.headers["Location"]:
        return LOGIN
    return response.status_code


def test_every_console_route_has_an_entry(world: World) -> None:
    table = _table(world)
    rules = [
        rule for rule in world.app.url_map.iter_rules() if rule.endpoint.startswith("console.")
    ]
    assert {rule.endpoint for rule in rules} == set(table)
    for rule in rules:
        methods = (rule.methods or set()) - {"HEAD", "OPTIONS"}
        covered = {case.method for case in table[rule.endpoint]}
        assert methods <= covered, f"{rule.endpoint}: {methods - covered} not in the table"


def test_each_role_gets_what_the_table_says(world: World) -> None:
    wrong = []
    clients = {role: _client(world.app, role) for role in ROLES}
    table = _table(world)
    ordered = sorted(table.items(), key=lambda item: item[0] == "console.sign_out")
    for _endpoint, cases in ordered:
        for case in cases:
            for role in ROLES:
                console = clients[role]
                if case.method == "GET":
                    response = console.get(case.path)
                else:
                    response = console.post(case.path, case.data or {})
                got = _outcome(response)
                if got != case.expect[role]:
                    wrong.append(
                        f"{role} {case.method} {case.path}: {got}, not {case.expect[role]}"
                    )
    assert not wrong, "\n".join(wrong)


def test_results_after_close(world: World) -> None:
    owner = _client(world.app, OWNER)
    assert owner.step(TRIAL, "close").status_code == 302
    expect = {OWNER: 200, OTHER: 403, EVALUATOR: 200, ADMIN: 403, ANON: LOGIN}
    for role, code in expect.items():
        console = _client(world.app, role)
        for path in (f"/console/trials/{TRIAL}/report", f"/console/trials/{TRIAL}/export"):
            assert _outcome(console.get(path)) == code, (role, path)
    # A closed trial has no interim looks: the look page sends to the report.
    assert owner.get(f"/console/trials/{TRIAL}/look").headers["Location"].endswith("/report")


def _console_gets(world: World) -> list[str]:
    return [
        case.path
        for cases in _table(world).values()
        for case in cases
        if case.method == "GET" and case.path != "/console/sign-in"
    ]


def test_a_kiosk_token_gets_nothing_from_the_console(world: World) -> None:
    kiosk = Visitor(world.app, world.kiosk_path)
    kiosk.arrives()
    kiosk.starts_in("en")  # the kiosk's browser holds a visit cookie
    headers = {"Authorization": f"Bearer {kiosk.token}"}
    for path in _console_gets(world):
        response = kiosk.client.get(path, headers=headers)
        assert _outcome(response) == LOGIN, path
    for path in (f"/console/trials/{TRIAL}/start", f"/console/kiosks/{world.kiosk_id}/off"):
        response = kiosk.client.post(path, headers=headers)
        assert response.status_code in (400, 302), path  # no CSRF token, and never signed in
        assert _outcome(response) in (400, LOGIN)
    with get_engine(world.app).connect() as conn:
        assert store.require_kiosk(conn, world.kiosk_id).state == "active"


def _event_count(app: Flask) -> int:
    with get_engine(app).connect() as conn:
        return conn.execute(select(func.count()).select_from(events)).scalar_one()


def test_a_console_session_cannot_post_kiosk_events(world: World) -> None:
    visitor = Visitor(world.app, world.kiosk_path)
    visitor.arrives()
    visitor.starts_in("en")
    before = _event_count(world.app)
    owner = _client(world.app, OWNER)
    body = {
        "visit_id": visitor.visit_id,
        "type": "contact_requested",
        "idempotency_key": uuid.uuid4().hex,
    }
    response = owner.client.post("/api/v1/events", json=body)
    assert response.status_code == 401  # the API takes a kiosk token only, never a session
    with_csrf = owner.client.post(
        "/api/v1/events", json=body, headers={"X-CSRFToken": owner.token or ""}
    )
    assert with_csrf.status_code == 401
    # The kiosk's own form endpoint: the console's cookie is not a visit.
    action = owner.client.post(world.kiosk_path + "action", data={"event": "contact_requested"})
    assert action.status_code in (302, 400, 403, 503)  # refused or back to the welcome page
    assert _event_count(world.app) == before
