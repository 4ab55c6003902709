"""Small valid trials for tests; override any part to make it invalid on purpose."""

from __future__ import annotations

import copy
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import Any

import yaml
from sqlalchemy import Connection, Engine

from experiments import store
from experiments.model import Trial
from experiments.rules import Settings
from experiments.store import driver

LANGUAGES = ["en", "ar"]
#: The public address the test apps and checks are configured with (NUDGELAB_PUBLIC_URL).
PUBLIC_URL = "https://nudgelab.example.org"
#: Check settings pinned to a date, so tests do not expire as sources age.
SETTINGS = Settings(today=date(2026, 11, 29), public_url=PUBLIC_URL)


def _texts(text: str) -> dict[str, str]:
    return {"en": text, "ar": f"{text} (ar)"}


def _disclosure(language: str) -> dict[str, str]:
    suffix = "" if language == "en" else " (ar)"
    return {
        "who": "This study is run by {organisation}." + suffix,
        "purpose": "Its aim is to help people consider assisted voluntary return." + suffix,
        "study": "We compare ways of presenting the same information; visitors see different "
        "versions." + suffix,
        "no_effect": "Using this kiosk has no effect on your procedure or reception." + suffix,
        "voluntary": "Taking part is voluntary: tap 'Don't use my visit' or 'Finish'." + suffix,
        "data": "We store nothing that identifies you." + suffix,
        "read_more": "Read more in the public register at {register_url} or ask staff." + suffix,
        "contact": "Questions: {contact}. Data protection: {privacy_contact}." + suffix,
    }


def _material(title: str, body: str) -> dict[str, dict[str, str]]:
    return {lang: {"title": f"{title} {lang}", "body": f"{body} {lang}"} for lang in LANGUAGES}


BASE: dict[str, Any] = {
    "id": "test-trial",
    "title": "Test trial",
    "purpose": _texts("Help people consider assisted voluntary return."),
    "organisation": _texts("Example Return Service"),
    "contact": "info@example.org",
    "register_url": PUBLIC_URL + "/register",
    "privacy": {
        "contact": "privacy@example.org",
        "retention_days": 730,
        "statement": _texts("Kiosk data never go to a body that decides individual cases."),
    },
    "languages": LANGUAGES,
    "locations": [
        {"id": "loc-a", "name": "Location A"},
        {"id": "loc-b", "name": "Location B"},
    ],
    "randomization": {"method": "block", "block_size": 6, "strata": ["location"]},
    "disclosure": {lang: _disclosure(lang) for lang in LANGUAGES},
    "arms": [
        {
            "id": "control",
            "control": True,
            "element": "control",
            "material": _material("Return support", "IOM can help you return."),
        },
        {
            "id": "gain",
            "element": "gain_frame",
            "material": _material("A new start", "With support you can start again."),
            "claims": [
                {
                    "text": _texts("IOM offers reintegration support."),
                    "source": _texts("IOM Netherlands website"),
                    "note": "Re-check the page before launch.",
                    "as_of": "2026-10-01",
                }
            ],
        },
        {
            "id": "norm",
            "element": "local_norm",
            "material": _material("Others here", "Last year {figure} people from here returned."),
            "figure": "returns_last_year",
        },
    ],
    "figures": {
        "returns_last_year": {
            "source": _texts("Return service annual figures"),
            "note": "Counted by hand from the yearly report.",
            "as_of": "2026-10-01",
            "values": {"loc-a": 34, "loc-b": 12},
            "denominator": _texts("of about 300 residents"),
        }
    },
    "outcomes": [
        {
            "id": "requested_contact",
            "event": "contact_requested",
            "primary": True,
            "description": _texts("Visitor asked to talk to someone about return support."),
            "label": _texts("I would like to talk to someone"),
            "acknowledgement": _texts("Please go to the desk; a staff member can arrange it."),
        },
        {
            "id": "opened_country_info",
            "event": "country_info_opened",
            "description": _texts("Visitor opened information about their country."),
            "label": _texts("Show me information about my country"),
            "acknowledgement": _texts("A staff member can show you this information."),
        },
    ],
    "analysis": {
        "alpha": 0.05,
        "correction": "holm",
        "hypotheses": [
            {
                "id": "h1",
                "statement": _texts("The gain frame raises contact requests."),
                "arm": "gain",
                "outcome": "requested_contact",
            }
        ],
        "planned_sample_size": 6000,
        "baseline_rate": 0.05,
        "expected_effect": 0.03,
        "subgroups": ["location", "language"],
    },
    "schedule": {"start": "2027-01-04", "end": "2027-03-28"},
}


def trial_dict(**overrides: Any) -> dict[str, Any]:
    """A deep copy of the valid base trial with top-level keys replaced."""
    data = copy.deepcopy(BASE)
    data.update(copy.deepcopy(overrides))
    return data


def trial_yaml(**overrides: Any) -> str:
    return yaml.safe_dump(trial_dict(**overrides), sort_keys=False, allow_unicode=True)


def make_trial(**overrides: Any) -> Trial:
    return Trial.model_validate(yaml.safe_load(trial_yaml(**overrides)))


def race_events(visit_ids: Iterable[str], kinds: Sequence[str], send: Callable[..., None]) -> None:
    """For each visit, ``send(visit_id, kind, barrier)`` each of ``kinds`` from a thread of its
    own, all released together by ``barrier``."""
    for visit_id in visit_ids:
        barrier = threading.Barrier(len(kinds))
        threads = [threading.Thread(target=send, args=(visit_id, kind, barrier)) for kind in kinds]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)


def race_outcome_with_opt_out(visit_ids: Iterable[str], send: Callable[..., None]) -> None:
    """:func:`race_events` of a ``contact_requested`` and an ``opt_out``."""
    race_events(visit_ids, ("contact_requested", "opt_out"), send)


def running_trial_visits(
    conn: Connection, count: int, seed: int, *, exposed: bool = False
) -> tuple[Trial, list[store.StartedVisit]]:
    """Load and start :func:`make_trial` and start ``count`` visits at loc-a in English, each
    with an exposure event when ``exposed``."""
    trial = make_trial()
    store.load_trial(conn, trial, trial_yaml())
    store.start_trial(conn, trial.id)
    specs = [store.VisitSpec("loc-a", "en")] * count
    started = store.start_visits(conn, trial, specs, rng=random.Random(seed))
    if exposed:
        events = [store.EventSpec(v.id, "exposure", f"x-{v.id}", "en") for v in started]
        store.record_events(conn, trial, events)
    return trial, started


def query_plan(engine: Engine, statement: driver.Compiled, values: Mapping[str, Any]) -> str:
    """The plan the database chooses for a hot-path statement with ``values`` (nothing it
    would write is kept). PostgreSQL is asked to choose an index, as it would read the few rows
    of a test's tables whole."""
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        if engine.dialect.name == "postgresql":
            cursor.execute("SET enable_seqscan = off")
        explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
        cursor.execute(explain + statement.sql, statement.parameters(values))
        plan = "\n".join(str(row[-1]) for row in cursor.fetchall())
        conn.rollback()
    return plan
