"""Assignment methods: invariants as property tests, plus stability across processes."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from experiments.assignment import (
    assign_block,
    assign_hash,
    block_sequence,
    block_units,
    pick_weighted,
    stratum_key,
)

weights_strategy = st.dictionaries(
    st.from_regex(r"[a-z]{1,6}", fullmatch=True), st.integers(1, 5), min_size=2, max_size=8
)


@given(weights=weights_strategy, reps=st.integers(1, 4), seed=st.text(max_size=20))
def test_every_block_is_a_balanced_permutation(
    weights: dict[str, int], reps: int, seed: str
) -> None:
    size = sum(weights.values()) * reps
    block = block_sequence(weights, size, seed)
    assert Counter(block) == {arm: weight * reps for arm, weight in weights.items()}


@given(weights=weights_strategy, u=st.floats(0, 1, exclude_max=True))
def test_pick_weighted_returns_a_declared_arm(weights: dict[str, int], u: float) -> None:
    assert pick_weighted(weights, u) in weights


def test_pick_weighted_follows_cumulative_weights() -> None:
    weights = {"a": 1, "b": 3}
    assert [pick_weighted(weights, u) for u in (0.0, 0.2499, 0.25, 0.9999)] == ["a", "a", "b", "b"]
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        pick_weighted(weights, 1.0)


def test_block_size_must_be_a_multiple_of_the_weights() -> None:
    with pytest.raises(ValueError, match="not a multiple"):
        block_units({"a": 1, "b": 2}, 4)


def test_consecutive_indices_fill_blocks_in_order() -> None:
    weights = {"control": 1, "gain": 1, "norm": 2}
    arms = [assign_block(weights, 8, "secret", "location=a", i).arm for i in range(24)]
    for start in range(0, 24, 8):
        assert Counter(arms[start : start + 8]) == {"control": 2, "gain": 2, "norm": 4}
    other = [assign_block(weights, 8, "secret", "location=b", i).arm for i in range(24)]
    assert arms != other  # strata draw their own sequences


def test_hash_assignment_is_stable_across_processes() -> None:
    weights = {"control": 1, "gain": 1, "loss": 2}
    ids = [f"visit-{i}" for i in range(50)]
    here = [assign_hash(weights, visit, "salt").arm for visit in ids]
    code = (
        "from experiments.assignment import assign_hash;"
        f"print(','.join(assign_hash({weights!r}, f'visit-{{i}}', 'salt').arm for i in range(50)))"
    )
    # A fresh interpreter with another hash seed must give the same arms.
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert out.stdout.strip().split(",") == here
    assert set(here) == set(weights)


def test_hash_shares_follow_the_weights() -> None:
    """20,000 hashed ids: each share within 4 standard errors of its weight (p < 1e-4)."""
    weights = {"a": 1, "b": 1, "c": 2}
    rng = random.Random(7)
    counts = Counter(
        assign_hash(weights, f"{rng.getrandbits(64):x}", "s").arm for _ in range(20_000)
    )
    for arm, weight in weights.items():
        share = weight / 4
        se = (share * (1 - share) / 20_000) ** 0.5
        assert abs(counts[arm] / 20_000 - share) < 4 * se


def test_stratum_key() -> None:
    assert stratum_key([], {"location": "a"}) == "all"
    assert stratum_key(["location", "language"], {"location": "a", "language": "ar"}) == (
        "location=a|language=ar"
    )
