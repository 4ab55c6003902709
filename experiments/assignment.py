"""Random assignment of a visit to an arm: pure functions, no I/O.

Three methods, as declared in ``randomization.method``:

- ``simple``: an independent weighted draw per visit (as the BIT organ-donation trial did);
- ``block``: permuted blocks per stratum; block ``b`` of a stratum is a seeded shuffle of the
  arms (each repeated ``weight * block_size / sum(weights)`` times), so every complete block is
  balanced and the list can be re-derived for an audit from the trial's secret;
- ``hash``: deterministic from the visit id and a per-trial salt.

Every function returns the arm together with the inputs that produced it, which the event log
stores next to the assignment.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any


@dataclass(frozen=True)
class Assignment:
    """An arm and the method and inputs that chose it."""

    arm: str
    method: str
    inputs: dict[str, Any] = field(default_factory=dict)


def pick_weighted(weights: Mapping[str, int], u: float) -> str:
    """Map a uniform draw ``u`` in [0, 1) to an arm, proportionally to the weights."""
    if not 0.0 <= u < 1.0:
        raise ValueError(f"u must lie in [0, 1), got {u!r}")
    arms = list(weights)
    cumulative = list(accumulate(weights[arm] for arm in arms))
    return arms[bisect_right(cumulative, u * cumulative[-1])]


def assign_simple(weights: Mapping[str, int], rng: random.Random) -> Assignment:
    """Independent weighted draw; ``rng`` is ``secrets.SystemRandom()`` on a kiosk."""
    u = rng.random()
    return Assignment(pick_weighted(weights, u), "simple", {"u": u})


def _unit_interval(*parts: str) -> float:
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_hash(weights: Mapping[str, int], visit_id: str, salt: str) -> Assignment:
    """Deterministic assignment from ``sha256(salt | visit_id)``; stable across processes."""
    u = _unit_interval(salt, visit_id)
    salt_id = hashlib.sha256(salt.encode()).hexdigest()[:8]
    return Assignment(pick_weighted(weights, u), "hash", {"u": u, "salt_id": salt_id})


def block_units(weights: Mapping[str, int], block_size: int) -> list[str]:
    """The arms of one block before shuffling, each repeated in proportion to its weight."""
    total = sum(weights.values())
    if block_size % total:
        raise ValueError(f"block size {block_size} is not a multiple of the weight total {total}")
    reps = block_size // total
    return [arm for arm, weight in weights.items() for _ in range(weight * reps)]


def block_sequence(weights: Mapping[str, int], block_size: int, seed: str) -> list[str]:
    """One permuted block, shuffled with a generator seeded from ``seed``."""
    units = block_units(weights, block_size)
    random.Random(hashlib.sha256(seed.encode()).digest()).shuffle(units)
    return units


def stratum_key(strata: Sequence[str], values: Mapping[str, str]) -> str:
    """Canonical stratum label, e.g. ``location=azc-budel`` (``all`` when unstratified)."""
    if not strata:
        return "all"
    return "|".join(f"{name}={values[name]}" for name in strata)


def assign_block(
    weights: Mapping[str, int], block_size: int, secret: str, stratum: str, index: int
) -> Assignment:
    """The arm at position ``index`` of a stratum's allocation sequence.

    ``index`` counts the visits of the stratum from 0; the database hands out indices
    atomically (see :mod:`experiments.store.visits`), which makes the blocks correct under
    concurrent requests.
    """
    block, position = divmod(index, block_size)
    sequence = block_sequence(weights, block_size, f"{secret}|{stratum}|{block}")
    inputs = {"stratum": stratum, "block": block, "position": position, "block_size": block_size}
    return Assignment(sequence[position], "block", inputs)
