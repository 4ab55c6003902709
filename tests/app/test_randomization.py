"""Randomization under load: concurrent block starts, and the weights of simple draws."""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import select

from app.db import get_engine
from experiments import store
from experiments.assignment import BLOCK_DERIVATION, block_sequence, block_units
from experiments.eventlog import assignments
from experiments.model import Trial
from tests.app.visitor import Visitor, add_kiosk, run_trial
from tests.factories import BASE, trial_yaml


@pytest.mark.parametrize(
    "factory_trial",
    [{"randomization": {"method": "block", "block_size": 6, "strata": ["location"]}}],
    indirect=True,
)
def test_200_concurrent_starts_fill_every_block_exactly(app: Flask, factory_trial: Trial) -> None:
    """200 visitors tap "start" at once on two kiosks (two strata): no block over- or
    under-filled, every complete block a permutation of the arms, no position given twice,
    and every stored arm re-derived from its recorded inputs and the trial's secret."""
    paths = [add_kiosk(app, factory_trial, location) for location in ("loc-a", "loc-b")]

    def start(number: int) -> int:
        visitor = Visitor(app, paths[number % 2])
        return visitor.client.post(visitor.path + "start", data={"language": "en"}).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(start, range(200)))
    assert statuses == [302] * 200

    with get_engine(app).connect() as conn:
        rows = conn.execute(select(assignments.c.arm, assignments.c.inputs)).all()
        secret = store.require_trial(conn, factory_trial.id).allocation_secret
    assert len(rows) == 200
    blocks: dict[tuple[str, int], dict[int, str]] = defaultdict(dict)
    for row in rows:
        data = json.loads(row.inputs)
        assert data["derivation"] == BLOCK_DERIVATION and data["block_size"] == 6
        audit = block_sequence(factory_trial.weights, 6, secret, data["stratum"], data["block"])
        assert audit[data["position"]] == row.arm
        key = (data["stratum"], data["block"])
        assert data["position"] not in blocks[key], f"position given twice in {key}"
        blocks[key][data["position"]] = row.arm
    units = sorted(block_units(factory_trial.weights, 6))
    per_stratum = Counter(stratum for stratum, _ in blocks)
    assert per_stratum == {"location=loc-a": 17, "location=loc-b": 17}  # 100 = 16 x 6 + 4
    for (stratum, block), filled in blocks.items():
        assert sorted(filled) == list(range(len(filled)))  # no gaps
        if len(filled) == 6:
            assert sorted(filled.values()) == units, (stratum, block)
        else:
            assert block == 16 and len(filled) == 4  # only the last block is partial
            assert all(Counter(filled.values())[arm] <= 2 for arm in units)


def _chi_square(observed: dict[str, int], weights: dict[str, int]) -> float:
    total = sum(observed.values())
    weight_sum = sum(weights.values())
    return sum(
        (observed.get(arm, 0) - total * weight / weight_sum) ** 2 / (total * weight / weight_sum)
        for arm, weight in weights.items()
    )


def test_simple_randomization_matches_the_weights(app: Flask) -> None:
    """10,000 visits, weights 2:1:1, Pearson chi-square goodness of fit with 2 degrees of freedom.

    For 2 degrees of freedom the chi-square survival function is exactly exp(-x / 2), so the
    p-value needs no statistics library. The test fails when p < 0.001: with a correct
    randomizer that happens for 0.1 % of seeds (the false-alarm rate); the seed is fixed, so the
    result is reproducible. The visits go through ``store.start_visits``, the code path of
    the kiosk's "start" (which uses ``secrets.SystemRandom`` instead of a seeded generator).
    """
    arms = [dict(arm, weight=2 if arm["id"] == "control" else 1) for arm in BASE["arms"]]
    trial = run_trial(app, trial_yaml(randomization={"method": "simple"}, arms=arms))
    specs = [store.VisitSpec(("loc-a", "loc-b")[i % 2], "en") for i in range(10_000)]
    with get_engine(app).begin() as conn:
        rng = random.Random(20261129)
        for start in range(0, len(specs), 2_000):
            store.start_visits(conn, trial, specs[start : start + 2_000], rng=rng)
    with get_engine(app).connect() as conn:
        observed = Counter(conn.execute(select(assignments.c.arm)).scalars())
    assert sum(observed.values()) == 10_000
    statistic = _chi_square(observed, trial.weights)
    p_value = math.exp(-statistic / 2)
    assert p_value >= 0.001, (observed, statistic, p_value)
    with get_engine(app).connect() as conn:
        methods = set(conn.execute(select(assignments.c.method)).scalars())
    assert methods == {"simple"}


def test_the_chi_square_helper_agrees_with_scipy() -> None:
    """The hand-written statistic and p-value equal scipy.stats.chisquare (reference)."""
    from scipy.stats import chisquare

    observed = {"control": 5_043, "gain": 2_431, "norm": 2_526}
    weights = {"control": 2, "gain": 1, "norm": 1}
    statistic = _chi_square(observed, weights)
    reference = chisquare([5_043, 2_431, 2_526], [5_000, 2_500, 2_500])
    assert statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert math.exp(-statistic / 2) == pytest.approx(reference.pvalue, rel=1e-9)
