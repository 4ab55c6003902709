"""Assignment methods: invariants as property tests, uniformity of the blocks, and stability
across processes."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chi2

from experiments.assignment import (
    BLOCK_DERIVATION,
    LEGACY_BLOCK_DERIVATION,
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


@given(
    weights=weights_strategy,
    reps=st.integers(1, 4),
    secret=st.text(max_size=80),  # longer than BLAKE2b's 64-byte key, too
    block=st.integers(0, 10**9),
    derivation=st.sampled_from([BLOCK_DERIVATION, LEGACY_BLOCK_DERIVATION]),
)
def test_every_block_is_a_balanced_permutation(
    weights: dict[str, int], reps: int, secret: str, block: int, derivation: str
) -> None:
    size = sum(weights.values()) * reps
    sequence = block_sequence(weights, size, secret, "location=a", block, derivation)
    assert Counter(sequence) == {arm: weight * reps for arm, weight in weights.items()}
    assert sequence == block_sequence(weights, size, secret, "location=a", block, derivation)


def test_every_arrangement_of_a_block_is_equally_likely() -> None:
    """9,000 blocks of control, gain, norm twice each: each of the 90 distinct arrangements
    should appear about 100 times. Pearson's chi-square goodness of fit (89 degrees of
    freedom; the blocks are independent draws) fails the test when p < 0.001, which for a
    uniform generator happens for 0.1 % of secrets (the false-alarm rate); the secret is fixed,
    so the result is reproducible."""
    weights = {"control": 1, "gain": 1, "norm": 1}
    blocks = 9_000
    counts = Counter(
        tuple(block_sequence(weights, 6, "uniformity", "location=a", block))
        for block in range(blocks)
    )
    cells = 90  # 6! / (2! 2! 2!)
    assert len(counts) == cells
    expected = blocks / cells
    statistic = sum((count - expected) ** 2 / expected for count in counts.values())
    p_value = chi2.sf(statistic, cells - 1)
    assert p_value >= 0.001, (statistic, p_value)


def test_each_position_draws_the_arms_in_proportion_to_their_weights() -> None:
    """6,000 blocks of 12 with weights 1:2:3: at each position, the arm follows the shares
    1/6, 2/6, 3/6 across blocks (a multinomial, as blocks are independent). Each of the 12
    positions gets Pearson's chi-square test (2 degrees of freedom, so p = exp(-x / 2)) at
    0.001 / 12 (Bonferroni): for a uniform generator the test fails for at most 0.1 % of
    secrets; the secret is fixed, so the result is reproducible."""
    weights = {"a": 1, "b": 2, "c": 3}
    blocks, size = 6_000, 12
    columns: list[Counter[str]] = [Counter() for _ in range(size)]
    for block in range(blocks):
        for position, arm in enumerate(block_sequence(weights, size, "positions", "all", block)):
            columns[position][arm] += 1
    for position, observed in enumerate(columns):
        statistic = sum(
            (observed[arm] - blocks * weight / 6) ** 2 / (blocks * weight / 6)
            for arm, weight in weights.items()
        )
        assert chi2.sf(statistic, 2) >= 0.001 / size, (position, observed, statistic)


def test_assign_block_records_a_derivation_an_audit_can_repeat() -> None:
    weights = {"control": 1, "gain": 1, "norm": 2}
    for index in range(40):
        assignment = assign_block(weights, 8, "secret", "location=a", index)
        inputs = assignment.inputs
        assert inputs == {
            "stratum": "location=a",
            "block": index // 8,
            "position": index % 8,
            "block_size": 8,
            "derivation": BLOCK_DERIVATION,
        }
        again = block_sequence(
            weights, 8, "secret", inputs["stratum"], inputs["block"], inputs["derivation"]
        )
        assert again[inputs["position"]] == assignment.arm


def test_the_legacy_derivation_still_gives_the_blocks_assigned_with_it() -> None:
    """Assignments stored without ``derivation`` were made by the first version of
    ``assign_block``; these are its arms for these inputs."""
    weights = {"control": 1, "gain": 1, "norm": 2}
    arms = [
        arm
        for block in (0, 1)
        for arm in block_sequence(
            weights, 8, "secret", "location=a", block, LEGACY_BLOCK_DERIVATION
        )
    ]
    assert arms == [
        "control", "norm", "gain", "norm", "gain", "norm", "norm", "control",
        "norm", "norm", "gain", "norm", "control", "norm", "gain", "control",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown block derivation"):
        block_sequence(weights, 8, "secret", "location=a", 0, "dice")


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


def test_hash_and_block_assignment_are_stable_across_processes() -> None:
    weights = {"control": 1, "gain": 1, "loss": 2}
    ids = [f"visit-{i}" for i in range(50)]
    here = [assign_hash(weights, visit, "salt").arm for visit in ids]
    here += [assign_block(weights, 8, "salt", "location=a", i).arm for i in range(50)]
    code = (
        "from experiments.assignment import assign_block, assign_hash;"
        f"print(','.join([assign_hash({weights!r}, f'visit-{{i}}', 'salt').arm for i in range(50)]"
        f" + [assign_block({weights!r}, 8, 'salt', 'location=a', i).arm for i in range(50)]))"
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
