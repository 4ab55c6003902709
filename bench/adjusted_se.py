"""Simulation: rejection rates of the adjusted estimate, Lin/HC2 against CR1 by location.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/adjusted_se.py [--trials 2000] [--seed 7]

Two arms, about 300 visits per trial, block randomization of visits within location (1 : 1, an
odd visit to a random arm), location rates spread evenly from 5% to 20%. For each layout of
locations it prints the share of trials with p < 0.05, under no effect (A/A: the false-positive
rate; the binomial 99% band for 2,000 trials is 0.038–0.063) and with +8 points in every
location (power), for Lin's interacted regression with HC2 errors and for the estimator it
replaced (location fixed effects, CR1 clustered by location, t with G − 1 df). Both come from
:func:`analysis.adjust.adjusted_effects`. The figures are quoted in docs/statistics.md
("Adjusted estimates follow the design"). Not part of the test suite (a minute of CPU).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy.stats import binom

from analysis.adjust import adjusted_effects

LAYOUTS = {
    "3 locations, 10 : 5 : 85": (30, 15, 255),
    "3 locations, equal": (100, 100, 100),
    "4 locations, equal": (75,) * 4,
    "6 locations, equal": (50,) * 6,
    "8 locations, equal": (38,) * 8,
}


def draw(rng: np.random.Generator, sizes: tuple[int, ...], lift: float) -> pd.DataFrame:
    """One trial's arm × location cells."""
    rows = []
    for i, size in enumerate(sizes):
        base = 0.05 + 0.15 * i / max(len(sizes) - 1, 1)
        control = size // 2 + (int(rng.integers(2)) if size % 2 else 0)
        treated = size - control
        rows.append(("control", f"L{i}", control, rng.binomial(control, base)))
        rows.append(("gain", f"L{i}", treated, rng.binomial(treated, base + lift)))
    return pd.DataFrame(rows, columns=["arm", "location", "n", "successes"])


def rejects(cells: pd.DataFrame, old: bool) -> bool:
    options = (
        {
            "covariates": ("location",),
            "interacted": False,
            "cluster": "location",
            "cluster_se": "CR1",
        }
        if old
        else {"strata": ("location",), "covariates": ()}
    )
    (estimate,) = adjusted_effects(cells, "y", "control", **options)  # type: ignore[arg-type]
    return estimate.p_value < 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    low = binom.ppf(0.005, args.trials, 0.05) / args.trials
    high = binom.isf(0.005, args.trials, 0.05) / args.trials
    print(f"{args.trials} trials per cell; A/A band {low:.3f}-{high:.3f}")
    print(f"{'layout':28s} {'A/A Lin':>8s} {'A/A CR1':>8s} {'power Lin':>10s} {'power CR1':>10s}")
    for name, sizes in LAYOUTS.items():
        rates = []
        for lift in (0.0, 0.08):
            rng = np.random.default_rng(args.seed)
            trials = [draw(rng, sizes, lift) for _ in range(args.trials)]
            rates += [np.mean([rejects(cells, old) for cells in trials]) for old in (False, True)]
        print(f"{name:28s} {rates[0]:8.4f} {rates[1]:8.4f} {rates[2]:10.4f} {rates[3]:10.4f}")


if __name__ == "__main__":
    main()
