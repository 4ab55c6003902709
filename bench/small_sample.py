"""Exact A/A size of the arm-versus-control test, and the time of the exact unconditional test.

    .venv/bin/python bench/small_sample.py

For two arms of ``n₁`` and ``n₂`` visits with the same rate ``π`` the probability that a rule
rejects at α = 0.05 is the sum of ``b(y₁; n₁, π)·b(y₂; n₂, π)`` over the tables it rejects, so
the size is computed exactly (no simulation). Three rules, each the z-test when every expected
cell is at least 5 and otherwise: the exact unconditional z-test (the report's rule), Fisher's
exact test (the rule it replaced), or the z-test again (no small-sample test); for 50 / 50 also
Boschloo's test as ``scipy.stats.boschloo_exact`` computes it (two-sided: twice the smaller
one-sided p-value), too slow for the larger designs, and the exact test for every table (not
only those with a small expected count); for very unequal arms the exact test without the
Berger–Boos step (``gamma = 0``). The p-values come from the functions
:func:`analysis.estimate.compare_arms` calls. Then the time of one uncached
exact test for tables with a small expected cell. The figures are quoted in docs/statistics.md
("Small samples"). Not part of the test suite (about a minute).
"""

from __future__ import annotations

import time

import numpy as np
from scipy.stats import binom, boschloo_exact

from analysis.significance import _exact_z, exact_z, expected_cells, fisher, z_test

DESIGNS = [(50, 50), (200, 200), (45, 55), (50, 100), (30, 200)]
RATES = [0.01, 0.02, 0.05, 0.10, 0.30]
ALPHA = 0.05


def p_values(n1: int, n2: int, small: str) -> np.ndarray:
    """The rule's p-value for every table ``(y₁, y₂)``."""
    table = np.empty((n1 + 1, n2 + 1))
    for y1 in range(n1 + 1):
        for y2 in range(n2 + 1):
            everywhere = small == "exact-z for every table"
            if small != "z" and (everywhere or min(expected_cells(y1, n1, y2, n2)) < 5):
                table[y1, y2] = SMALL[small](y1, n1, y2, n2)
            else:
                table[y1, y2] = z_test(y1, n1, y2, n2)[1]
    return table


def boschloo(y1: int, n1: int, y2: int, n2: int) -> float:
    return float(boschloo_exact([[y1, y2], [n1 - y1, n2 - y2]]).pvalue)


def exact_z_everywhere(y1: int, n1: int, y2: int, n2: int) -> float:
    return exact_z(y1, n1, y2, n2)


def exact_z_without_berger_boos(y1: int, n1: int, y2: int, n2: int) -> float:
    return exact_z(y1, n1, y2, n2, gamma=0.0)


SMALL = {
    "exact-z": exact_z,
    "fisher": fisher,
    "boschloo": boschloo,
    "exact-z, gamma 0": exact_z_without_berger_boos,
    "exact-z for every table": exact_z_everywhere,
}


def size(p: np.ndarray, n1: int, n2: int, rate: float) -> float:
    b1 = binom.pmf(np.arange(n1 + 1), n1, rate)
    b2 = binom.pmf(np.arange(n2 + 1), n2, rate)
    return float(b1 @ (p < ALPHA).astype(float) @ b2)


def sizes() -> None:
    print("| n₁ / n₂ | rule | " + " | ".join(f"π = {r:g}" for r in RATES) + " |")
    print("|---|---|" + "---|" * len(RATES))
    for n1, n2 in DESIGNS:
        rules = ("exact-z", "fisher", "z")
        rules += ("boschloo", "exact-z for every table") if n1 + n2 <= 100 else ()
        rules += ("exact-z, gamma 0",) if n2 > 2 * n1 else ()
        for rule in rules:
            p = p_values(n1, n2, rule)
            shown = " | ".join(f"{size(p, n1, n2, r):.4f}" for r in RATES)
            print(f"| {n1} / {n2} | {rule} | {shown} |", flush=True)


def timings() -> None:
    rng = np.random.default_rng(1)
    for label, (low, high, ratio) in {
        "equal arms, 5-100 each": (5, 101, 1),
        "equal arms, 100-2,000 each": (100, 2001, 1),
        "equal arms, 2,000-20,000 each": (2000, 20001, 1),
        "1 : 10, 10-200 in the small arm": (10, 200, 10),
    }.items():
        times = []
        while len(times) < 40:
            n1 = int(rng.integers(low, high))
            n2 = ratio * n1
            rate = min(1.0, 8 / (n1 + n2) * rng.uniform(0.5, 2.5))
            y1, y2 = int(rng.binomial(n1, rate)), int(rng.binomial(n2, rate))
            if y1 + y2 == 0 or min(expected_cells(y1, n1, y2, n2)) >= 5:
                continue
            _exact_z.cache_clear()
            start = time.perf_counter()
            exact_z(y1, n1, y2, n2)
            times.append(1000 * (time.perf_counter() - start))
        print(f"{label}: median {np.median(times):.1f} ms, max {max(times):.1f} ms")
    times = []
    for y1, y2 in rng.binomial(1000, 0.3, size=(10, 2)):
        _exact_z.cache_clear()
        start = time.perf_counter()
        exact_z(int(y1), 1000, int(y2), 1000)
        times.append(1000 * (time.perf_counter() - start))
    print(f"any table, 1,000 per arm at 30%: median {np.median(times):.1f} ms")
    start = time.perf_counter()
    boschloo(3, 500, 8, 500)
    print(f"scipy.stats.boschloo_exact, 3/500 against 8/500: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    sizes()
    timings()
