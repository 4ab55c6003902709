"""Benchmark: the cost of one random assignment, per method, beside a SHA-1 of a short string.

    .venv/bin/python bench/assignment.py [--calls 100000] [--repeat 7]

Each figure is the best of ``--repeat`` timeit runs of ``--calls`` calls (the best run is the
one least disturbed by other processes), in microseconds per call and as a multiple of a SHA-1
of a short string measured in the same run. ``block`` is timed as the kiosk calls it: the
consecutive positions of one stratum, so a block is derived at its first visit and read from
the cache for the others; ``block, every call a new block`` is the worst case, where nothing is
cached, and ``block, legacy derivation`` re-seeds ``random.Random`` per call as the first
version did. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import random
import timeit
from collections.abc import Callable

from experiments.assignment import (
    LEGACY_BLOCK_DERIVATION,
    assign_block,
    assign_hash,
    assign_simple,
    block_sequence,
)

#: Five arms of weight 1 in blocks of 10, as in the Tea Room example trial.
WEIGHTS = {"control": 1, "gain": 1, "norm": 1, "loss": 1, "info": 1}
BLOCK_SIZE = 10
SECRET = "0123456789abcdef0123456789abcdef"
STRATUM = "location=gezinslocatie-katwijk"


def cases() -> dict[str, Callable[[], object]]:
    sequential = itertools.count()
    fresh = itertools.count(10**9, BLOCK_SIZE)  # far from the sequential indices
    legacy = itertools.count()
    rng = random.Random(1)
    return {
        "sha1 of a short string": lambda: hashlib.sha1(b"secret|location=a|12345").digest(),
        "simple": lambda: assign_simple(WEIGHTS, rng),
        "hash": lambda: assign_hash(WEIGHTS, "3f0c1f9e-8f8e-4c1e-9a51-7d1c2b0f4e11", SECRET),
        "block": lambda: assign_block(WEIGHTS, BLOCK_SIZE, SECRET, STRATUM, next(sequential)),
        "block, every call a new block": lambda: assign_block(
            WEIGHTS, BLOCK_SIZE, SECRET, STRATUM, next(fresh)
        ),
        "block, legacy derivation": lambda: block_sequence(
            WEIGHTS, BLOCK_SIZE, SECRET, STRATUM, next(legacy), LEGACY_BLOCK_DERIVATION
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    timings = {
        name: min(timeit.repeat(call, number=args.calls, repeat=args.repeat)) / args.calls * 1e6
        for name, call in cases().items()
    }
    sha1 = timings["sha1 of a short string"]
    print(f"best of {args.repeat} x {args.calls} calls; blocks of {BLOCK_SIZE}, 5 arms")
    for name, micros in timings.items():
        print(f"{name:<32} {micros:7.2f} us  {micros / sha1:6.1f} x sha1")


if __name__ == "__main__":
    main()
