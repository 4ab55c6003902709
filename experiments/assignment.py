"""Random assignment of a visit to an arm: pure functions, no I/O.

Three methods, as declared in ``randomization.method``:

- ``simple``: an independent weighted draw per visit (as the BIT organ-donation trial did);
- ``block``: permuted blocks per stratum; block ``b`` of a stratum is a uniformly random
  permutation of the arms (each repeated ``weight * block_size / sum(weights)`` times), so
  every complete block is balanced; it is a pure function of the trial's secret, the stratum
  and ``b`` (see :func:`block_sequence`), so an audit can re-derive it from the stored inputs;
- ``hash``: deterministic from the visit id and a per-trial salt.

Every function returns the arm together with the inputs that produced it, which the event log
stores next to the assignment.
"""

from __future__ import annotations

import hashlib
import random
import struct
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
from typing import Any

#: How :func:`assign_block` derives a block, recorded in each assignment's inputs: a
#: Fisher-Yates shuffle whose draws come from BLAKE2b keyed with the trial's secret.
BLOCK_DERIVATION = "blake2b-fisher-yates"

#: Blocks assigned before the derivation was recorded (inputs without ``derivation``): a
#: ``random.Random`` seeded with SHA-256 of ``secret|stratum|block`` shuffled them.
LEGACY_BLOCK_DERIVATION = "sha256-seeded-random-shuffle"


@dataclass(frozen=True, slots=True)
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


def _keyed_words(secret: str, stratum: str, block: int, counter: int) -> list[int]:
    """The 16 big-endian 32-bit words of ``BLAKE2b(stratum|block|counter)`` keyed with the
    secret (UTF-8; one longer than BLAKE2b's 64-byte key is hashed with BLAKE2b first)."""
    key = secret.encode()
    if len(key) > hashlib.blake2b.MAX_KEY_SIZE:
        key = hashlib.blake2b(key).digest()
    digest = hashlib.blake2b(f"{stratum}|{block}|{counter}".encode(), key=key).digest()
    return list(struct.unpack(">16I", digest))


def _keyed_shuffle(units: list[str], secret: str, stratum: str, block: int) -> None:
    """Fisher-Yates in place: position ``last`` (from the end) swaps with a position drawn
    uniformly from ``0..last``, by rejection from 32-bit keyed words (no modulo bias); the words
    are used from the end of each digest, counter 0, 1, ..."""
    words: list[int] = []
    counter = 0
    for last in range(len(units) - 1, 0, -1):
        bound = last + 1
        limit = 2**32 - 2**32 % bound  # the largest multiple of bound up to 2**32
        while True:
            if not words:
                words = _keyed_words(secret, stratum, block, counter)
                counter += 1
            word = words.pop()
            if word < limit:
                break
        chosen = word % bound
        units[last], units[chosen] = units[chosen], units[last]


def block_sequence(
    weights: Mapping[str, int],
    block_size: int,
    secret: str,
    stratum: str,
    block: int,
    derivation: str = BLOCK_DERIVATION,
) -> list[str]:
    """Block ``block`` of a stratum's allocation sequence, derived as ``derivation`` says.

    Keyed with ``secret``, BLAKE2b's words are indistinguishable from uniform ones, so each
    arrangement of the block is equally likely, and without the secret the next arm cannot be
    predicted. :data:`LEGACY_BLOCK_DERIVATION` re-derives blocks assigned before the derivation
    was recorded.
    """
    units = block_units(weights, block_size)
    if derivation == BLOCK_DERIVATION:
        _keyed_shuffle(units, secret, stratum, block)
    elif derivation == LEGACY_BLOCK_DERIVATION:
        seed = hashlib.sha256(f"{secret}|{stratum}|{block}".encode()).digest()
        random.Random(seed).shuffle(units)
    else:
        raise ValueError(f"unknown block derivation {derivation!r}")
    return units


@lru_cache(maxsize=64)
def _units(weights: tuple[tuple[str, int], ...], block_size: int) -> tuple[str, ...]:
    return tuple(block_units(dict(weights), block_size))


@lru_cache(maxsize=4096)
def _cached_block(
    weights: tuple[tuple[str, int], ...], block_size: int, secret: str, stratum: str, block: int
) -> tuple[str, ...]:
    """:func:`block_sequence` (current derivation), kept for the next visits of the block."""
    units = list(_units(weights, block_size))
    _keyed_shuffle(units, secret, stratum, block)
    return tuple(units)


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
    concurrent requests. A block is derived once per process and kept (consecutive visits of a
    stratum fall into the same block).
    """
    block, position = divmod(index, block_size)
    sequence = _cached_block(tuple(weights.items()), block_size, secret, stratum, block)
    inputs = {
        "stratum": stratum,
        "block": block,
        "position": position,
        "block_size": block_size,
        "derivation": BLOCK_DERIVATION,
    }
    return Assignment(sequence[position], "block", inputs)
