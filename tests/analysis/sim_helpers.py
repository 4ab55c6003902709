"""Helpers for the analysis tests: small simulated event logs and counts by hand."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import Engine, select

from analysis.simulate import Settings, parse_rates, simulate
from experiments.eventlog import assignments, events, make_engine, upgrade
from experiments.model import Trial
from tests.factories import make_trial, trial_yaml

RATES = "control=0.05,gain=0.12,norm=0.08"


def simulated(
    url: str,
    visits: int = 600,
    *,
    seed: int = 1,
    rates: str = RATES,
    trial: Trial | None = None,
    source: str | None = None,
    **settings: Any,
) -> tuple[Engine, Trial]:
    """Migrate ``url`` (idempotent), simulate ``visits`` visits of the factory trial into it."""
    upgrade(url)
    engine = make_engine(url)
    trial = trial or make_trial()
    simulate(
        engine,
        trial,
        parse_rates(trial, rates),
        Settings(visits=visits, seed=seed, batch_size=250, **settings),
        source=source or trial_yaml(),
    )
    return engine, trial


def hand_flow(engine: Engine, trial: Trial) -> dict[str, dict[str, int]]:
    """Randomized, exposed, opted out and per-outcome successes per arm, from raw rows."""
    with engine.connect() as conn:
        arm_of = dict(
            conn.execute(
                select(assignments.c.visit_id, assignments.c.arm).where(
                    assignments.c.trial_id == trial.id
                )
            ).all()
        )
        seen: dict[str, set[str]] = defaultdict(set)
        for visit_id, kind in conn.execute(
            select(events.c.visit_id, events.c.type).where(events.c.trial_id == trial.id)
        ):
            seen[kind].add(visit_id)
    result: dict[str, dict[str, int]] = {}
    randomized = Counter(arm_of.values())
    for arm, n in randomized.items():
        mine = {visit for visit, a in arm_of.items() if a == arm}
        row = {
            "randomized": n,
            "exposed": len(mine & seen["exposure"]),
            "opted_out": len(mine & seen["opt_out"]),
        }
        for outcome in trial.outcomes:
            row[outcome.id] = len((mine & seen[outcome.event]) - seen["opt_out"])
        result[arm] = row
    return result
