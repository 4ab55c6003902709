"""Calibration by simulation: do the report's tests, intervals and stopping rules keep their word?

A method is *calibrated* when, on data whose truth is known, it errs as often as it says it
does: a 5 % test rejects a true null hypothesis in 5 % of trials, a 95 % interval covers the
true effect in 95 % of trials, a sequential plan with two-sided α = 0.05 stops for a
non-existent effect in 5 % of trials however many looks it takes. This module simulates trials
cell by cell of a grid and counts how often each of the report's methods errs (Morris, White &
Crowther 2019 describe the approach: data-generating mechanism, estimands, methods, performance
measures with their Monte Carlo error).

**Grid.** ``n`` analysed visits per arm ∈ {50, 200, 1000, 10000} × control rate ∈ {0.02, 0.10,
0.30} × {2, 5} arms (one control): 24 cells (:func:`grid`).

**Data.** As cell counts, drawn with numpy, never through the database. Visits are randomized
in blocks *within* location (the kiosk's design), so every arm gets the same share of each
location: three locations of sizes 10 : 5 : 85 (the unequal case in which the cluster-robust
estimate failed) with control rates ``1.5r``, ``0.5r`` and ``0.97r`` (so the overall control
rate is ``r``; location is prognostic, as it is in the Tea Rooms). Successes per arm × location
are binomial. Two scenarios:

- *A/A*: every arm has the control's rates; every null hypothesis is true.
- *effect*: the last arm adds ``δ`` to each location's rate, where ``δ`` is the minimum
  detectable effect that :mod:`experiments.design` (what ``nudgelab check`` prints) computes for
  80 % power at ``α/m`` (``m`` comparisons with the control); the other arms stay null.

Every trial is also looked at 10 times, after each tenth of its visits (the looks are nested:
each adds new binomial visits to the last).

**Methods** are the report's own functions, called once per simulated trial
(:func:`report_unadjusted`, :func:`report_adjusted`, :class:`PlannedLooks`): the comparison of
:func:`analysis.outcomes.compare` (which calls :func:`analysis.estimate.compare_arms` with the
options :func:`analysis.pipeline.resolve` gives a block design within location), the adjusted
estimate of :func:`analysis.outcomes.adjusted` (:mod:`analysis.adjust`, the estimator
:func:`analysis.estimator_choice.choose_adjustment` picks), and the group-sequential test and
repeated confidence intervals of :mod:`analysis.interim` and :mod:`analysis.sequential`. Other
methods can be passed in (:class:`Methods`), which is how the tests show the harness catching
a wrong one.

**Performance measures** (:class:`Metric`), each a proportion of ``R`` simulated trials:

- false-positive rate: ``p < α`` for a null comparison (pooled over the ``m`` comparisons of a
  trial); family-wise error: some null comparison declared significant after the correction;
- coverage: the interval contains the true value (difference, rate, risk or odds ratio of the
  arm's expected rates), for every interval the report shows; intervals that promise to cover
  together (the family-level "simultaneous" differences, the repeated intervals of all looks)
  count as covering only when all of them in the trial do;
- power: the effect arm declared significant, against the analytic power of
  :mod:`experiments.design` (fixed design, and the sequential plan over 10 looks);
- stopping error: an A/A trial stops for efficacy at one of its 10 looks: under the
  pre-registered plan (Lan-DeMets O'Brien-Fleming-type boundaries, group-sequential Holm) and,
  as a contrast, under naive peeking (the report's 5 % decision at every look).

**Band and verdict** (:func:`band`). For ``R`` replications and nominal level ``π₀`` the band
is the set of observed proportions ``x/R`` whose exact (Clopper-Pearson 1934) 99 % interval
contains ``π₀``; equivalently ``P(X ≤ x) ≥ 0.005`` and ``P(X ≥ x) ≥ 0.005`` for
``X ~ Binomial(R, π₀)``. A calibrated method falls outside it with probability at most 1 %.
The verdict is *within*, *above* or *below*; whether a side is a failure depends on the
measure: a false-positive rate above the band is anti-conservative and one below it (a test
that does not reach its level) wastes power, so both are flagged; the family-wise and the
stopping error only have to stay at or below ``α``; a coverage below the band is a failure, one
above it only conservative; power is reported, not judged. A
proportion pooled over the ``m`` comparisons of a trial is judged against the band of ``R``
trials, which is wider than its own (the comparisons share the control, so they are
positively correlated but carry at least one trial's information): conservative.

**Many cells, some false alarms.** The full grid holds some hundreds of verdicts; at 1 % each,
a few "outside" verdicts are expected from Monte Carlo error alone even if every method is
exact. :func:`family_band_level` gives the Bonferroni level ``1 − 0.01/K`` for ``K`` verdicts;
a verdict outside that wider band is not chance at the 1 % level for the whole table.

References
----------
- Clopper CJ, Pearson ES (1934) The use of confidence or fiducial limits illustrated in the
  case of the binomial. Biometrika 26:404–413.
- Morris TP, White IR, Crowther MJ (2019) Using simulation studies to evaluate statistical
  methods. Stat Med 38:2074–2102.
- Armitage P, McPherson CK, Rowe BC (1969) Repeated significance tests on accumulating data.
  J R Stat Soc A 132:235–244 (the error of naive peeking).
- Lan KKG, DeMets DL (1983) Discrete sequential boundaries for clinical trials. Biometrika
  70:659–663.
- Holm S (1979) A simple sequentially rejective multiple test procedure. Scand J Stat 6:65–70.
"""

from __future__ import annotations

import math
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Literal, Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.stats import binom

from analysis.choices import Choices
from analysis.corrections import adjust_p_values
from analysis.counts import KEY_COLUMNS, Counts, OutcomeSpec, count_columns, outcome_column
from analysis.estimate import ArmCounts, Comparison, compare_arms
from analysis.estimator_choice import choose_adjustment
from analysis.interim import (
    family_level,
    group_sequential_test,
    repeated_difference_interval,
    sequential_design,
)
from analysis.outcomes import adjusted, compare
from analysis.pipeline import resolve
from analysis.results import ArmTotal, Options
from analysis.sequential import Look
from analysis.significance import z_test
from experiments.design import comparison_alpha, minimum_detectable_effect, power_two_proportions
from experiments.model import AnalysisPlan, Hypothesis, Randomization

__all__ = [
    "ArmTest",
    "Budget",
    "Calibration",
    "Cell",
    "CellResult",
    "ExactSize",
    "Interval",
    "Methods",
    "Metric",
    "NaivePeeking",
    "PlannedLooks",
    "Result",
    "Sample",
    "SequentialRun",
    "StoppingRule",
    "Strata",
    "band",
    "calibrate",
    "exact_rejection",
    "exact_sizes",
    "family_band_level",
    "grid",
    "render_markdown",
    "report_adjusted",
    "report_unadjusted",
    "simulate_cell",
]

ALPHA = 0.05
CORRECTION = "holm"
N_PER_ARM: tuple[int, ...] = (50, 200, 1000, 10_000)
RATES: tuple[float, ...] = (0.02, 0.10, 0.30)
ARM_COUNTS: tuple[int, ...] = (2, 5)
LOOKS = 10
POWER = 0.8
BAND_LEVEL = 0.99
OUTCOME = OutcomeSpec("primary", "primary")

Parameter = Literal["difference", "rate", "risk ratio", "odds ratio"]
Acceptance = Literal["within", "not above", "not below", "reported"]
Verdict = Literal["within", "above", "below"]
IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


# -- the grid and the data ------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Cell:
    """One cell of the grid: analysed visits per arm, the control's rate, arms (with control)."""

    n_per_arm: int
    rate: float
    arms: int

    @property
    def label(self) -> str:
        """``n=200, rate=0.10, 5 arms``."""
        return f"n={self.n_per_arm}, rate={self.rate:.2f}, {self.arms} arms"


def grid(quick: bool = False) -> tuple[Cell, ...]:
    """The full grid (24 cells), or the quick one (3 cells the test suite can afford)."""
    if quick:
        return (Cell(50, 0.10, 2), Cell(200, 0.30, 2), Cell(200, 0.10, 5))
    return tuple(Cell(n, r, k) for k in ARM_COUNTS for n in N_PER_ARM for r in RATES)


@dataclass(frozen=True)
class Strata:
    """Locations: their share of every arm's visits and their control rate relative to ``r``.

    The defaults are three locations of sizes 10 : 5 : 85 with rates ``1.5r``, ``0.5r`` and
    ``0.97r`` (weighted mean ``r``).
    """

    names: tuple[str, ...] = ("north", "east", "south")
    shares: tuple[float, ...] = (0.10, 0.05, 0.85)
    rate_ratios: tuple[float, ...] = (1.5, 0.5, 0.825 / 0.85)

    def sizes(self, n: int) -> IntArray:
        """Split ``n`` visits by the shares, rounding by largest remainder (block design)."""
        exact = np.asarray(self.shares, dtype=float) * n / sum(self.shares)
        sizes = np.floor(exact).astype(np.int64)
        order = np.argsort(-(exact - sizes), kind="stable")
        sizes[order[: n - int(sizes.sum())]] += 1
        return sizes

    def rates(self, rate: float) -> FloatArray:
        """Each location's control rate for an overall rate ``rate``."""
        return rate * np.asarray(self.rate_ratios, dtype=float)


@dataclass(frozen=True)
class Truth:
    """Expected rates per arm × location (``p``) and visits (``n``) of one scenario."""

    arms: tuple[str, ...]
    n: IntArray
    p: FloatArray

    def rate(self, arm: int) -> float:
        """The arm's expected overall rate (its visits' mixture of location rates)."""
        return float(self.n[arm] @ self.p[arm] / self.n[arm].sum())

    def value(self, parameter: Parameter, arm: int) -> float:
        """The true value an interval of ``parameter`` for ``arm`` (vs arm 0) should cover."""
        p1, p0 = self.rate(arm), self.rate(0)
        if parameter == "rate":
            return p1
        if parameter == "difference":
            return p1 - p0
        if parameter == "risk ratio":
            return p1 / p0
        return (p1 / (1 - p1)) / (p0 / (1 - p0))


def arm_names(arms: int) -> tuple[str, ...]:
    """``control``, ``arm1``, … ``arm{k−1}``."""
    return ("control", *(f"arm{j}" for j in range(1, arms)))


def effect_size(cell: Cell, alpha: float = ALPHA, power: float = POWER) -> tuple[float, float]:
    """``(δ, analytic power)``: the MDE that ``check`` prints and the power it promises there."""
    level = comparison_alpha(alpha, cell.arms - 1)
    n = cell.n_per_arm
    delta = minimum_detectable_effect(cell.rate, n, n, level, power)
    return delta, power_two_proportions(cell.rate, cell.rate + delta, n, n, level)


def truth(cell: Cell, strata: Strata, delta: float = 0.0) -> Truth:
    """Expected rates of a scenario: all arms null, or the last arm ``+δ`` in every location."""
    sizes = strata.sizes(cell.n_per_arm)
    p = np.tile(strata.rates(cell.rate), (cell.arms, 1))
    p[-1] += delta
    if np.any(p <= 0.0) or np.any(p >= 1.0):
        raise ValueError(f"{cell.label}: a location's rate leaves (0, 1): {p.tolist()}")
    return Truth(arm_names(cell.arms), np.tile(sizes, (cell.arms, 1)), p)


def draw(
    rng: np.random.Generator, scenario: Truth, replications: int, looks: int = 1
) -> tuple[IntArray, IntArray]:
    """Cumulative successes at each look, shape ``(R, looks, arms, locations)``, and the visits.

    Look ``k`` of ``K`` has ``⌊n·k/K⌋`` visits per arm × location (all ``n`` at the last); the
    successes of the new visits are drawn independently, so looks are nested as in a real trial.
    """
    steps = np.arange(1, looks + 1)[:, None, None]
    visits = (scenario.n[None] * steps) // looks
    increments = np.diff(visits, axis=0, prepend=0)
    new = rng.binomial(increments[None], scenario.p[None, None], size=(replications, *visits.shape))
    return new.cumsum(axis=1), visits


# -- what one analysis returns ---------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One simulated data set handed to a method: visits and successes per arm × location."""

    arms: tuple[str, ...]
    locations: tuple[str, ...]
    n: IntArray
    successes: IntArray
    alpha: float = ALPHA
    correction: str = CORRECTION

    @property
    def control(self) -> str:
        """The first arm."""
        return self.arms[0]


@dataclass(frozen=True)
class ArmTest:
    """One comparison with the control: its p-value and the report's decision on it."""

    arm: str
    p_value: float
    rejected: bool


@dataclass(frozen=True)
class Interval:
    """One reported interval: its name, the parameter it estimates, for which arm.

    ``joint`` intervals promise to cover *together* (simultaneous, repeated): their coverage is
    the share of trials in which every interval of that name covers its true value.
    """

    name: str
    parameter: Parameter
    arm: str
    low: float
    high: float
    joint: bool = False


@dataclass(frozen=True)
class Result:
    """A method's tests and intervals for one sample.

    ``corrected`` says whether ``rejected`` already applies a family correction (then its
    family-wise error is measured); ``methods`` names what was used (for the page).
    """

    tests: tuple[ArmTest, ...]
    intervals: tuple[Interval, ...]
    corrected: bool
    methods: tuple[str, ...] = ()


Method = Callable[[Sample], Result]
EMPTY = Result((), (), False)


@lru_cache(maxsize=64)
def _plan(alpha: float, correction: str, planned: int, baseline: float) -> AnalysisPlan:
    hypothesis = Hypothesis(id="calibration", statement="Each arm differs from the control.")
    return AnalysisPlan(
        alpha=alpha,
        correction=correction,
        hypotheses=[hypothesis],
        planned_sample_size=planned,
        baseline_rate=baseline,
    )


def counts_of(sample: Sample) -> Counts:
    """The sample as the report's :class:`~analysis.counts.Counts` (one cell per arm × location)."""
    arms, locations = np.meshgrid(
        np.arange(len(sample.arms)), np.arange(len(sample.locations)), indexing="ij"
    )
    n, x = sample.n.ravel(), sample.successes.ravel()
    cells = pd.DataFrame(
        {
            "arm": np.asarray(sample.arms, dtype=object)[arms.ravel()],
            "location": np.asarray(sample.locations, dtype=object)[locations.ravel()],
            "language": "nl",
            "week": "2026-01-05",
            "hour": 10,
            "weekday": 0,
        },
        columns=list(KEY_COLUMNS),
    )
    zeros = np.zeros_like(n)
    columns = dict(zip(count_columns([OUTCOME]), (n, zeros, n, zeros, x, zeros), strict=True))
    for name, values in columns.items():
        cells[name] = values
    cells[outcome_column(OUTCOME.id)] = x
    return Counts("calibration", (OUTCOME,), cells, "calibration", "")


#: The simulated design: visits randomized one by one, in blocks within location.
RANDOMIZATION = Randomization(method="block", block_size=10, strata=["location"])


@lru_cache(maxsize=64)
def _options(alpha: float, correction: str, planned: int, baseline: float) -> Options:
    """The options the report would run with (plan's alpha and correction, default choices)."""
    plan = _plan(alpha, correction, planned, baseline)
    design = choose_adjustment(RANDOMIZATION)
    return resolve(Choices(), plan, cluster=None, source="calibration", design=design)


def report_options(sample: Sample) -> Options:
    """The report's :func:`analysis.pipeline.resolve` for a block design within location.

    As :func:`analysis.pipeline.build_report` does: the plan's alpha and correction, the default
    choices, and the adjusted estimator that :func:`analysis.estimator_choice.choose_adjustment`
    picks for :data:`RANDOMIZATION`.
    """
    total = int(sample.n.sum())
    return _options(sample.alpha, sample.correction, max(total, 1), 0.5)


def comparison_intervals(comparison: Comparison) -> tuple[Interval, ...]:
    """Every interval of a :class:`~analysis.estimate.Comparison`, found by its fields.

    A field pair ``<name>_ci_low`` / ``<name>_ci_high`` of an arm's estimate is an interval;
    ``rate…`` estimates the arm's rate, ``diff…`` the difference from the control,
    ``relative_risk…`` and ``odds_ratio…`` the ratios. New intervals of the comparison are
    picked up without a change here.
    """
    intervals = []
    for estimate in comparison.arms:
        values = {f.name: getattr(estimate, f.name) for f in fields(estimate)}
        for name, low in values.items():
            if not name.endswith("_ci_low"):
                continue
            prefix = name.removesuffix("_ci_low")
            high = values.get(f"{prefix}_ci_high")
            parameter = _parameter(prefix)
            if parameter is None or low is None or high is None:
                continue
            intervals.append(
                Interval(
                    _interval_name(prefix, comparison),
                    parameter,
                    estimate.arm,
                    float(low),
                    float(high),
                    joint="simultaneous" in prefix,
                )
            )
    return tuple(intervals)


def _parameter(prefix: str) -> Parameter | None:
    for start, parameter in (
        ("diff", "difference"),
        ("rate", "rate"),
        ("relative_risk", "risk ratio"),
        ("odds_ratio", "odds ratio"),
    ):
        if prefix.startswith(start):
            return parameter  # type: ignore[return-value]
    return None


def _interval_name(prefix: str, comparison: Comparison) -> str:
    known = {
        "rate": f"rate ({comparison.rate_interval})",
        "diff": f"difference ({comparison.interval})",
        "relative_risk": "risk ratio (log)",
        "odds_ratio": "odds ratio (log)",
        "diff_simultaneous": f"simultaneous difference ({getattr(comparison, 'simultaneous', '')})",
    }
    return known.get(prefix, prefix.replace("_", " "))


def report_unadjusted(sample: Sample) -> Result:
    """The report's unadjusted comparison: :func:`analysis.outcomes.compare` on arm totals."""
    totals = [
        ArmTotal(arm, int(n.sum()), int(x.sum()))
        for arm, n, x in zip(sample.arms, sample.n, sample.successes, strict=True)
    ]
    comparison, _error = compare(totals, sample.control, report_options(sample))
    if comparison is None:
        return EMPTY
    tests = tuple(
        ArmTest(e.arm, float(e.p_value), bool(e.significant))
        for e in comparison.arms
        if not e.is_control and e.p_value is not None
    )
    used = sorted({f"test: {e.test}" for e in comparison.arms if e.test is not None})
    used.append(f"correction: {comparison.correction}")
    return Result(tests, comparison_intervals(comparison), True, tuple(used))


def report_adjusted(sample: Sample) -> Result:
    """The report's adjusted estimate: :func:`analysis.outcomes.adjusted` on the cells.

    ``rejected`` applies the trial's correction to the adjusted p-values
    (:func:`analysis.corrections.adjust_p_values`), the decision a reader would take with the
    unadjusted table's; with one comparison it is ``p < α``.
    """
    options = report_options(sample)
    estimates, _notes = adjusted(counts_of(sample), OUTCOME, sample.control, options, sample.arms)
    finite = [e for e in estimates if math.isfinite(e.p_value)]
    corrected = adjust_p_values([e.p_value for e in finite], sample.correction)  # type: ignore[arg-type]
    tests = tuple(
        ArmTest(e.arm, float(e.p_value), p is not None and p < sample.alpha)
        for e, p in zip(finite, corrected, strict=True)
    )
    intervals = tuple(
        Interval("adjusted difference", "difference", e.arm, float(e.ci_low), float(e.ci_high))
        for e in estimates
        if math.isfinite(e.ci_low) and math.isfinite(e.ci_high)
    )
    used = tuple(sorted({f"adjusted: {e.estimator or e.model} ({e.se_type})" for e in estimates}))
    return Result(tests, intervals, True, used)


# -- stopping rules --------------------------------------------------------------------------


@dataclass(frozen=True)
class SequentialRun:
    """What a stopping rule made of one trial's looks.

    ``crossed`` maps each comparison that stopped for efficacy to its look (from 1);
    ``intervals`` holds the rule's intervals at every look (e.g. repeated confidence intervals),
    ``missing`` the intervals it could not compute.
    """

    crossed: dict[str, int]
    intervals: tuple[Interval, ...] = ()
    missing: int = 0

    @property
    def stopped_at(self) -> int | None:
        """The first look at which some comparison stopped for efficacy."""
        return min(self.crossed.values()) if self.crossed else None


class StoppingRule(Protocol):
    """Decides, over the looks at one trial, which comparisons stop for efficacy and when."""

    name: str
    #: A rule the report does not use, run to show what it would cost (not in the summary).
    contrast: bool

    def run(self, looks: Sequence[Sample], fractions: tuple[float, ...]) -> SequentialRun:
        """The decisions over ``looks`` (cumulative samples) at information ``fractions``."""
        ...


@dataclass(frozen=True)
class PlannedLooks:
    """The pre-registered sequential plan, as the report's interim analysis runs it.

    At each look the pooled z-statistic of each comparison (:func:`analysis.significance.z_test`,
    what :mod:`analysis.interim` uses) goes to :func:`analysis.interim.group_sequential_test`:
    Lan-DeMets boundaries at the actual information fractions, the group-sequential Holm
    procedure over the comparisons. The repeated confidence intervals are those of the report:
    :func:`analysis.interim.repeated_difference_interval` (Newcombe's interval at the look's
    nominal level, boundaries of :func:`analysis.interim.sequential_design` at the family level
    of :func:`analysis.interim.family_level`).
    """

    spending: str = "obrien-fleming"
    name: str = "sequential plan"
    contrast: bool = False

    def run(self, looks: Sequence[Sample], fractions: tuple[float, ...]) -> SequentialRun:
        first = looks[-1]
        others = first.arms[1:]
        totals = [(s.n.sum(axis=1), s.successes.sum(axis=1)) for s in looks]
        z = [[_z(n, x, j) for j in range(1, len(first.arms))] for n, x in totals]
        tested = group_sequential_test(z, fractions, first.alpha, self.spending, first.correction)
        crossed = {others[t.index]: t.crossed_at for t in tested if t.crossed_at is not None}
        m = sum(value is not None for value in z[-1])
        design = sequential_design(
            fractions, family_level(first.alpha, first.correction, m), self.spending
        )
        intervals, missing = [], 0
        for (n, x), look in zip(totals, design.looks, strict=True):
            for j, arm in enumerate(others, start=1):
                interval = _repeated_interval(n, x, j, look)
                if interval is None:
                    missing += 1
                else:
                    intervals.append(Interval(REPEATED, "difference", arm, *interval, joint=True))
        return SequentialRun(crossed, tuple(intervals), missing)


REPEATED = "repeated difference, all looks"


def _z(n: IntArray, x: IntArray, j: int) -> float | None:
    if n[j] == 0 or n[0] == 0:
        return None
    return z_test(int(x[j]), int(n[j]), int(x[0]), int(n[0]))[0]


def _repeated_interval(n: IntArray, x: IntArray, j: int, look: Look) -> tuple[float, float] | None:
    if n[j] == 0 or n[0] == 0:
        return None
    return repeated_difference_interval(int(x[j]), int(n[j]), int(x[0]), int(n[0]), look)


@dataclass(frozen=True)
class NaivePeeking:
    """Stop at the first look where the report marks a comparison significant (no plan)."""

    name: str = "naive peeking"
    contrast: bool = True
    method: Method = field(default=report_unadjusted)

    def run(self, looks: Sequence[Sample], fractions: tuple[float, ...]) -> SequentialRun:
        for k, sample in enumerate(looks, start=1):
            rejected = {t.arm: k for t in self.method(sample).tests if t.rejected}
            if rejected:
                return SequentialRun(rejected)
        return SequentialRun({})


# -- measures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """The 99 % band of proportions around ``nominal`` for ``replications`` trials."""

    nominal: float
    replications: int
    low: float
    high: float
    level: float = BAND_LEVEL


def band(nominal: float, replications: int, level: float = BAND_LEVEL) -> Band:
    """Proportions ``x/R`` whose exact (Clopper-Pearson) ``level`` interval contains ``nominal``.

    ``x`` is in the band iff ``P(X ≤ x) ≥ (1 − level)/2`` and ``P(X ≥ x) ≥ (1 − level)/2`` for
    ``X ~ Binomial(R, nominal)`` (the test inverted by the Clopper-Pearson interval), so a
    calibrated method falls outside with probability at most ``1 − level``.
    """
    if replications < 1 or not 0.0 <= nominal <= 1.0 or not 0.0 < level < 1.0:
        raise ValueError(f"no band for nominal {nominal}, {replications} replications, {level}")
    tail = (1.0 - level) / 2.0
    x = np.arange(replications + 1)
    inside = (binom.cdf(x, replications, nominal) >= tail) & (
        binom.sf(x - 1, replications, nominal) >= tail
    )
    counts = x[inside]
    return Band(
        nominal, replications, counts.min() / replications, counts.max() / replications, level
    )


def family_band_level(verdicts: int, level: float = BAND_LEVEL) -> float:
    """Bonferroni: the per-verdict level that keeps the chance of any false alarm ``1 − level``."""
    return 1.0 - (1.0 - level) / max(verdicts, 1)


@dataclass(frozen=True)
class Metric:
    """One performance measure of one method in one cell, with its band and verdict.

    ``value`` is ``hits / trials``, where ``trials`` counts the comparisons or intervals judged
    (``m`` per replication when pooled); ``band`` is that of ``replications`` trials.
    ``missing`` counts intervals or tests the method did not produce.
    """

    cell: Cell
    scenario: str
    measure: str
    method: str
    hits: float
    trials: int
    replications: int
    nominal: float
    acceptance: Acceptance
    missing: int = 0
    #: A method the report does not use, shown for comparison (left out of the summary).
    contrast: bool = False

    @property
    def value(self) -> float:
        """The observed proportion (NaN when nothing was judged)."""
        return self.hits / self.trials if self.trials else math.nan

    def band(self, level: float = BAND_LEVEL) -> Band:
        """The binomial band around the nominal value for this metric's replications."""
        return band(self.nominal, self.replications, level)

    def verdict(self, level: float = BAND_LEVEL) -> Verdict:
        """``within``, ``above`` or ``below`` the band (``within`` when nothing was judged)."""
        limits = self.band(level)
        if not self.trials or limits.low <= self.value <= limits.high:
            return "within"
        return "above" if self.value > limits.high else "below"

    def passed(self, level: float = BAND_LEVEL) -> bool:
        """Whether the verdict is acceptable for this measure (see the module docstring)."""
        verdict = self.verdict(level)
        return {
            "within": verdict == "within",
            "not above": verdict != "above",
            "not below": verdict != "below",
            "reported": True,
        }[self.acceptance]


@dataclass
class _Tally:
    """Counts of one measure while a cell runs (``replications``: those that added a trial)."""

    hits: float = 0.0
    trials: int = 0
    missing: int = 0
    replications: int = 0
    last: int = -1


@dataclass
class _Cellwork:
    """The tallies of one cell, keyed by (scenario, measure, method)."""

    tallies: dict[tuple[str, str, str], _Tally] = field(default_factory=dict)
    methods: set[str] = field(default_factory=set)
    replication: int = 0

    def add(self, key: tuple[str, str, str], hit: bool | None) -> None:
        tally = self.tallies.setdefault(key, _Tally())
        if hit is None:
            tally.missing += 1
            return
        tally.hits += bool(hit)
        tally.trials += 1
        if tally.last != self.replication:
            tally.last = self.replication
            tally.replications += 1


# -- running a cell --------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """Replications per cell.

    ``replications`` A/A and effect trials get the unadjusted analysis; the first ``adjusted``
    of them also the adjusted estimate (it is the slowest method); the first ``sequential`` of
    them are also analysed at each of the 10 looks.
    """

    replications: int = 2000
    adjusted: int = 1000
    sequential: int = 1000

    def __post_init__(self) -> None:
        if self.replications <= 0:
            raise ValueError("replications must be positive")
        if not 0 <= self.adjusted <= self.replications:
            raise ValueError("adjusted replications must lie between 0 and replications")
        if not 0 <= self.sequential <= self.replications:
            raise ValueError("sequential replications must lie between 0 and replications")


QUICK = Budget(replications=300, adjusted=100, sequential=200)


@dataclass(frozen=True)
class Methods:
    """The methods judged: the report's, unless a test passes others."""

    unadjusted: Method = report_unadjusted
    adjusted: Method | None = report_adjusted
    stopping: tuple[StoppingRule, ...] = (PlannedLooks(), NaivePeeking())


@dataclass(frozen=True)
class CellResult:
    """The measures of one cell and what it took."""

    cell: Cell
    metrics: tuple[Metric, ...]
    delta: float
    analytic_power: float
    methods: tuple[str, ...]
    seconds: float


def _judge(
    work: _Cellwork,
    scenario: str,
    family: str,
    result: Result,
    sample: Sample,
    world: Truth,
    effect_arm: str | None,
) -> None:
    """Tally one result: errors on null comparisons, power, coverage of every interval."""
    work.methods.update(result.methods)
    index = {arm: i for i, arm in enumerate(world.arms)}
    tested = {t.arm: t for t in result.tests}
    nulls = [arm for arm in world.arms[1:] if arm != effect_arm]
    for arm in nulls:
        test = tested.get(arm)
        work.add(
            (scenario, "false-positive rate", family),
            None if test is None else test.p_value < sample.alpha,
        )
    if result.corrected and len(world.arms) > 2:
        complete = all(a in tested for a in nulls)
        work.add(
            (scenario, "family-wise error", family),
            any(tested[a].rejected for a in nulls) if complete else None,
        )
    if effect_arm is not None:
        test = tested.get(effect_arm)
        work.add((scenario, "power", family), None if test is None else test.rejected)
    seen = set()
    joint: dict[str, bool] = {}
    for interval in result.intervals:
        value = world.value(interval.parameter, index[interval.arm])
        covers = interval.low <= value <= interval.high
        seen.add((interval.name, interval.arm))
        if interval.joint:
            joint[interval.name] = joint.get(interval.name, True) and covers
        else:
            work.add((scenario, "coverage", interval.name), covers)
    for name, covers in joint.items():
        work.add((scenario, "coverage", name), covers)
    if family == "adjusted":
        for arm in world.arms[1:]:
            if ("adjusted difference", arm) not in seen:
                work.add((scenario, "coverage", "adjusted difference"), None)


def _sample(world: Truth, locations: tuple[str, ...], n: IntArray, x: IntArray) -> Sample:
    return Sample(world.arms, locations, n, x)


def _judge_looks(
    work: _Cellwork,
    scenario: str,
    rule: StoppingRule,
    run: SequentialRun,
    world: Truth,
    effect_arm: str | None,
) -> None:
    """Tally one trial's looks: a stop for a null comparison is an error; intervals cover."""
    nulls = [arm for arm in world.arms[1:] if arm != effect_arm]
    measure = "stopping error" if effect_arm is None else "family-wise error"
    if effect_arm is None or len(nulls) > 0:
        work.add((scenario, measure, rule.name), any(arm in run.crossed for arm in nulls))
    if effect_arm is not None:
        work.add((scenario, "power", rule.name), effect_arm in run.crossed)
    index = {arm: i for i, arm in enumerate(world.arms)}
    names = dict.fromkeys(interval.name for interval in run.intervals)
    for name in names:
        work.add(
            (scenario, "coverage", name),
            all(
                i.low <= world.value(i.parameter, index[i.arm]) <= i.high
                for i in run.intervals
                if i.name == name
            ),
        )
    if run.missing and not names:
        work.add((scenario, "coverage", REPEATED), None)


def _scenario(
    work: _Cellwork,
    scenario: str,
    world: Truth,
    methods: Methods,
    budget: Budget,
    rng: np.random.Generator,
    locations: tuple[str, ...],
    effect_arm: str | None,
) -> None:
    """Draw ``budget.replications`` trials of one scenario and tally every method on them."""
    successes, visits = draw(rng, world, budget.replications, LOOKS)
    total = float(visits[-1].sum())
    fractions = tuple(float(v.sum()) / total for v in visits)
    rules = [rule for rule in methods.stopping if effect_arm is None or not rule.contrast]
    for r in range(budget.replications):
        work.replication = r
        final = _sample(world, locations, visits[-1], successes[r, -1])
        _judge(work, scenario, "unadjusted", methods.unadjusted(final), final, world, effect_arm)
        if methods.adjusted is not None and r < budget.adjusted:
            result = methods.adjusted(final)
            _judge(work, scenario, "adjusted", result, final, world, effect_arm)
        if r < budget.sequential and rules:
            looks = [_sample(world, locations, visits[k], successes[r, k]) for k in range(LOOKS)]
            for rule in rules:
                _judge_looks(work, scenario, rule, rule.run(looks, fractions), world, effect_arm)


def simulate_cell(
    cell: Cell,
    budget: Budget = Budget(),
    seed: int = 1,
    methods: Methods = Methods(),
    strata: Strata = Strata(),
) -> CellResult:
    """All measures of one cell (A/A, effect, 10 looks), reproducible from ``seed`` and ``cell``."""
    started = time.perf_counter()
    rng = np.random.default_rng([seed, cell.n_per_arm, round(cell.rate * 1e6), cell.arms])
    work = _Cellwork()
    _scenario(work, "A/A", truth(cell, strata), methods, budget, rng, strata.names, None)
    delta, analytic = effect_size(cell)
    if math.isfinite(delta):
        world = truth(cell, strata, delta)
        _scenario(work, "effect", world, methods, budget, rng, strata.names, world.arms[-1])
    contrasts = frozenset(rule.name for rule in methods.stopping if rule.contrast)
    metrics = tuple(_metrics(cell, work, analytic, contrasts))
    return CellResult(
        cell, metrics, delta, analytic, tuple(sorted(work.methods)), time.perf_counter() - started
    )


def _metrics(
    cell: Cell, work: _Cellwork, analytic: float, contrasts: frozenset[str]
) -> Iterator[Metric]:
    nominal: dict[str, tuple[float, Acceptance]] = {
        "false-positive rate": (ALPHA, "within"),
        "family-wise error": (ALPHA, "not above"),
        "coverage": (1.0 - ALPHA, "not below"),
        "power": (analytic, "reported"),
        "stopping error": (ALPHA, "not above"),
    }
    for (scenario, measure, method), tally in sorted(work.tallies.items()):
        level, acceptance = nominal[measure]
        yield Metric(
            cell,
            scenario,
            measure,
            method,
            tally.hits,
            tally.trials,
            max(tally.replications, 1),
            level,
            acceptance,
            tally.missing,
            method in contrasts,
        )


# -- exact A/A rejection of the unadjusted test (no simulation) -------------------------------

#: Largest n per arm whose 2-arm A/A rejection is enumerated (the small-sample test matters there).
EXACT_MAX_N = 200
#: Tables less probable than this are left out of the enumeration (their total is reported).
NEGLIGIBLE_TABLE = 1e-12


@dataclass(frozen=True)
class ExactSize:
    """The exact A/A rejection probability of the report's unadjusted test, 2 arms of ``n``.

    ``size`` sums the binomial probabilities of the tables the report's comparison declares
    significant; ``left_out`` is the probability of the tables too improbable to enumerate, so
    the true size lies in ``[size, size + left_out]``.
    """

    n_per_arm: int
    rate: float
    size: float
    left_out: float


def exact_rejection(n: int, rate: float, alpha: float = ALPHA) -> ExactSize:
    """Enumerate every likely 2×2 table of two arms of ``n`` visits at a common ``rate`` and
    sum the probability of those :func:`analysis.estimate.compare_arms` (the report's defaults:
    z-test, exact unconditional test below an expected count of 5) rejects at ``alpha``."""
    pmf = binom.pmf(np.arange(n + 1), n, rate)
    kept = np.flatnonzero(pmf > math.sqrt(NEGLIGIBLE_TABLE))
    size = covered = 0.0
    for y1 in kept:
        for y0 in kept:
            probability = float(pmf[y1] * pmf[y0])
            covered += probability
            arms = [ArmCounts("control", n, int(y0)), ArmCounts("arm", n, int(y1))]
            comparison = compare_arms(arms, "control", alpha=alpha, correction=CORRECTION)
            size += probability * bool(comparison.arm("arm").significant)
    return ExactSize(n, rate, size, max(0.0, 1.0 - covered))


def exact_sizes(cells: Sequence[Cell]) -> tuple[ExactSize, ...]:
    """:func:`exact_rejection` for the 2-arm cells of ``cells`` with at most EXACT_MAX_N per arm."""
    return tuple(
        exact_rejection(c.n_per_arm, c.rate)
        for c in cells
        if c.arms == 2 and c.n_per_arm <= EXACT_MAX_N
    )


# -- the whole grid --------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """The results of every cell, in grid order, and how they were made."""

    cells: tuple[CellResult, ...]
    budget: Budget
    seed: int
    quick: bool
    seconds: float
    exact: tuple[ExactSize, ...] = ()

    @property
    def metrics(self) -> tuple[Metric, ...]:
        """Every measure of every cell."""
        return tuple(m for c in self.cells for m in c.metrics)

    def judged(self) -> tuple[Metric, ...]:
        """The measures with a verdict that counts (not merely reported, not a contrast)."""
        return tuple(
            m for m in self.metrics if m.acceptance != "reported" and m.trials and not m.contrast
        )

    def contrasts(self) -> tuple[Metric, ...]:
        """The measures of methods shown only for comparison (e.g. naive peeking)."""
        return tuple(m for m in self.metrics if m.contrast and m.trials)

    def failures(self, level: float = BAND_LEVEL) -> tuple[Metric, ...]:
        """Judged measures whose verdict is not acceptable at ``level``."""
        return tuple(m for m in self.judged() if not m.passed(level))


Progress = Callable[[CellResult], None]


def calibrate(
    cells: Sequence[Cell],
    budget: Budget = Budget(),
    *,
    seed: int = 1,
    methods: Methods = Methods(),
    jobs: int = 1,
    progress: Progress | None = None,
    quick: bool = False,
) -> Calibration:
    """Simulate every cell (in ``jobs`` processes) and collect the results in grid order."""
    started = time.perf_counter()
    report = progress or (lambda _result: None)
    results: dict[Cell, CellResult] = {}
    if jobs <= 1:
        for cell in cells:
            results[cell] = simulate_cell(cell, budget, seed, methods)
            report(results[cell])
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(simulate_cell, cell, budget, seed, methods) for cell in cells]
            for future in as_completed(futures):
                result = future.result()
                results[result.cell] = result
                report(result)
    ordered = tuple(results[cell] for cell in cells)
    exact = exact_sizes(cells)
    return Calibration(ordered, budget, seed, quick, time.perf_counter() - started, exact)


# -- the page --------------------------------------------------------------------------------

MARKS = {"within": "", "above": " ↑", "below": " ↓"}
MEASURE_ORDER = ("false-positive rate", "family-wise error", "coverage", "power", "stopping error")


def render_markdown(calibration: Calibration, command: str = "nudgelab calibrate") -> str:
    """docs/calibration.md: how the trials were simulated, the bands, every table, a summary."""
    parts = [
        _header(calibration, command),
        _bands_section(calibration),
        _summary_section(calibration),
        _table_section(
            calibration,
            "A/A",
            ("false-positive rate", "family-wise error"),
            "False positives (A/A: every null hypothesis true)",
            "Share of null comparisons with p < α (pooled over the comparisons of a "
            "trial), and share of trials with a null comparison declared significant "
            "after the correction (family-wise error; 5 arms only).",
        ),
        _exact_section(calibration),
        _table_section(
            calibration,
            "A/A",
            ("coverage",),
            "Coverage of every interval (A/A)",
            "Share of intervals that contain the true value (difference 0, ratios 1, "
            "each arm's expected rate).",
        ),
        _table_section(
            calibration,
            "effect",
            ("coverage",),
            "Coverage of every interval (one arm with an effect)",
            "As above, in the trials where the last arm has the effect δ of the power table.",
        ),
        _power_section(calibration),
        _table_section(
            calibration,
            "A/A",
            ("stopping error",),
            "Ten looks at an A/A trial",
            "Share of A/A trials that stop for efficacy at one of 10 equally spaced looks (after "
            "each tenth of the visits): under the sequential plan (Lan-DeMets O'Brien-Fleming-type "
            "boundaries at the actual information fractions, group-sequential Holm over the "
            "comparisons, as in the report's interim analysis) and, as a contrast, under naive "
            "peeking (stopping at the first look where the report marks a comparison "
            "significant).",
        ),
        _methods_section(calibration),
    ]
    return "\n\n".join(part.rstrip() for part in parts if part) + "\n"


def _exact_section(calibration: Calibration) -> str:
    if not calibration.exact:
        return ""
    lines = [
        "## Exact false-positive rate of the unadjusted test (2 arms, no simulation)",
        "",
        _wrap(
            "The simulated rates above carry sampling error (±0.005 at 2,000 trials). For two "
            f"arms of up to {EXACT_MAX_N} visits the A/A rejection probability of the report's "
            "unadjusted comparison (z-test, exact unconditional test below an expected count of "
            "5) is computed exactly instead: every likely table goes through the report's "
            "function and its binomial probability is added when the comparison is significant. "
            "Tables below a probability of 1e-12 are left out; their total bounds the error. The "
            "common rate is the cell's control rate (one location)."
        ),
        "",
        "| n per arm | rate | exact false-positive rate | probability left out |",
        "|---:|---:|---|---|",
    ]
    for e in calibration.exact:
        lines.append(f"| {e.n_per_arm:,} | {e.rate:.2f} | {e.size:.4f} | {e.left_out:.1e} |")
    return "\n".join(lines)


def _wrap(text: str, bullet: bool = False) -> str:
    """One paragraph (or ``- `` bullet) wrapped at 100 columns, as the other docs are."""
    indent = "  " if bullet else ""
    return textwrap.fill(
        " ".join(text.split()),
        width=100,
        initial_indent="- " if bullet else "",
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _header(calibration: Calibration, command: str) -> str:
    budget = calibration.budget
    sizes = ", ".join(sorted({f"{c.cell.n_per_arm:,}" for c in calibration.cells}, key=_int))
    rates = ", ".join(sorted({f"{c.cell.rate:.2f}" for c in calibration.cells}))
    arms = " and ".join(sorted({f"{c.cell.arms}" for c in calibration.cells}))
    quick = " (quick version: a subset of the grid)" if calibration.quick else ""
    intro = (
        "Every test, interval and stopping rule of the report is run on simulated trials whose "
        "truth is known, and each error rate is compared with the rate the method promises. The "
        "methods are the report's own functions (`analysis/outcomes.py` calling "
        "`analysis/estimate.py` and `analysis/adjust.py` with the options "
        "`analysis/pipeline.py` and `analysis/estimator_choice.py` give a block design within "
        "location; `analysis/interim.py` and `analysis/sequential.py` for the looks), called once "
        "per simulated trial; the harness is `analysis/calibration.py` (its docstring gives the "
        "details) and the statistics are explained in [statistics.md](statistics.md)."
    )
    bullets = [
        f"**Grid**: {sizes} analysed visits per arm × control rate {rates} × {arms} arms (one "
        f"of them the control); {len(calibration.cells)} cells.",
        f"**Data**: counts per arm × location drawn with numpy (seed {calibration.seed}). "
        "Visits are randomized in blocks within location; three locations of sizes 10 : 5 : 85 "
        "with control rates 1.5r, 0.5r and 0.97r. *A/A*: every arm has the control's rates. "
        "*Effect*: the last arm adds δ, the minimum detectable effect that `nudgelab check` "
        "prints for 80 % power at α/m (α = 0.05, m comparisons with the control); the other "
        "arms stay null.",
        f"**Replications per cell**: {budget.replications:,} A/A and {budget.replications:,} "
        f"effect trials for the unadjusted comparison; the first {budget.adjusted:,} of each "
        f"also for the adjusted estimate; the first {budget.sequential:,} of each also at each "
        f"of {LOOKS} looks.",
        f"**Run time**: {calibration.seconds / 60:.1f} minutes.",
    ]
    return "\n".join(
        [
            "# Calibration of the report's statistics",
            "",
            _wrap(
                f"*Generated by `{command}`{quick}; do not edit by hand: run `make calibration`.*"
            ),
            "",
            _wrap(intro),
            "",
            *(_wrap(b, bullet=True) for b in bullets),
        ]
    )


def _int(text: str) -> int:
    return int(text.replace(",", ""))


BANDS_TEXT = """## How to read the tables

Each value is a proportion of simulated trials (or of the comparisons or intervals in them). It
is **within** its band when its exact (Clopper-Pearson) 99 % interval contains the nominal value,
i.e. `P(X ≤ x) ≥ 0.005` and `P(X ≥ x) ≥ 0.005` for `X ~ Binomial(R, nominal)` with `R`
replications: a method that errs exactly at its nominal rate lands outside with probability at
most 1 %. ↑ marks a value above its band, ↓ one below; **bold** marks a value on the
unacceptable side for its measure:

- false-positive rate: outside the band on either side (above: the test rejects too often;
  below: it does not reach its level and loses power; with a handful of successes in a whole
  trial no valid test can reach it, and the value is still marked);
- family-wise error and stopping error: above the band (the guarantee is *at most* α);
- coverage: below the band (above it an interval is merely conservative);
- power is compared with the analytic power of `nudgelab check` but not judged: the analytic
  figure is a normal approximation at α/m, which Holm's correction can beat.

Proportions pooled over the comparisons or intervals of a trial are judged against the band of
the number of *trials*, which is wider than their own (conservative).

{many}

| measure | nominal | replications | 99 % band |
|---|---|---|---|
"""


def _bands_section(calibration: Calibration) -> str:
    budget = calibration.budget
    standard = {budget.replications, budget.adjusted, budget.sequential}
    seen: dict[tuple[str, float, int], Band] = {}
    for m in calibration.metrics:
        if m.trials and m.replications in standard:
            seen.setdefault((m.measure, round(m.nominal, 6), m.replications), m.band())
    rows = [
        f"| {measure} | {nominal:.3f} | {replications:,} | {b.low:.4f} – {b.high:.4f} |"
        for (measure, nominal, replications), b in sorted(
            seen.items(), key=lambda item: (MEASURE_ORDER.index(item[0][0]), item[0][1:])
        )
    ]
    judged = len(calibration.judged())
    many = _wrap(
        f"**Many verdicts, some false alarms.** The tables hold {judged:,} judged values (naive "
        f"peeking and the power are not judged); at 1 % each, about {0.01 * judged:.1f} could "
        "fall outside their bands by chance even if every method were exact. A value outside the "
        f"Bonferroni band (level 1 − 0.01/{judged:,} = {family_band_level(judged):.6f}) is not "
        "explained by chance at the 1 % level for the whole page; the summary lists both."
    )
    text = BANDS_TEXT.format(many=many)
    fewer = _wrap(
        "A value marked *n/a* comes from fewer trials (some of its intervals or tests were "
        "undefined, e.g. no successes at all in a small trial) and is judged against the band of "
        "the trials it has."
    )
    return text + "\n".join(rows) + "\n\n" + fewer


def _summary_section(calibration: Calibration) -> str:
    judged = calibration.judged()
    level = family_band_level(len(judged))
    failed = calibration.failures()
    strong = set(calibration.failures(level))
    lines = [
        "## Summary",
        "",
        _wrap(
            f"{len(judged) - len(failed):,} of {len(judged):,} judged values are on the "
            f"acceptable side of their 99 % band; {len(failed):,} are not, {len(strong):,} of "
            "them also outside the Bonferroni band."
        ),
    ]
    contrasts = calibration.contrasts()
    if contrasts:
        flagged = sum(not m.passed() for m in contrasts)
        names = ", ".join(sorted({m.method for m in contrasts}))
        lines += [
            "",
            _wrap(
                f"Contrast, not a method of the report ({names}): on the unacceptable side of "
                f"its band in {flagged} of {len(contrasts)} cells."
            ),
        ]
    if failed:
        lines += [
            "",
            "| cell | scenario | measure | method | value | 99 % band | Bonferroni |",
            "|---|---|---|---|---|---|---|",
        ]
        for m in failed:
            b = m.band()
            lines.append(
                f"| {m.cell.label} | {m.scenario} | {m.measure} | {m.method} | "
                f"{_number(m.value)} | {b.low:.4f} – {b.high:.4f} | "
                f"{'outside' if m in strong else 'within'} |"
            )
    return "\n".join(lines)


def _number(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.4f}" if 0.0 < value < 0.01 else f"{value:.3f}"


def _shown(metric: Metric) -> str:
    text = _number(metric.value) + MARKS[metric.verdict()]
    if not metric.passed():
        text = f"**{text}**"
    if metric.missing:
        text += f" ({metric.missing:,} n/a)"
    return text


def _column(metric: Metric) -> str:
    if metric.measure in ("false-positive rate", "family-wise error", "power"):
        return f"{metric.measure}: {metric.method}"
    return metric.method


def _table_section(
    calibration: Calibration,
    scenario: str,
    measures: Sequence[str],
    title: str,
    caption: str,
    lead: tuple[tuple[str, Callable[[CellResult], str]], ...] = (),
) -> str:
    """One row per cell, one column per (measure, method) of ``scenario``; ``lead`` first."""
    chosen = [
        m
        for m in calibration.metrics
        if m.scenario == scenario and m.measure in measures and (m.trials or m.missing)
    ]
    order = sorted(
        chosen,
        key=lambda m: (
            measures.index(m.measure),
            m.contrast,
            m.method.startswith("adjusted"),
            m.method.startswith("sequential"),
            m.method,
        ),
    )
    columns = list(dict.fromkeys(_column(m) for m in order))
    names = [name for name, _ in lead] + columns
    lines = [
        f"## {title}",
        "",
        _wrap(caption),
        "",
        "| n per arm | rate | arms | " + " | ".join(names) + " |",
        "|---:|---:|---:|" + "---|" * len(names),
    ]
    for result in calibration.cells:
        mine = {_column(m): m for m in result.metrics if m in chosen}
        cells = [show(result) for _, show in lead]
        cells += [_shown(mine[c]) if c in mine else "–" for c in columns]
        cell = result.cell
        lines.append(
            f"| {cell.n_per_arm:,} | {cell.rate:.2f} | {cell.arms} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def _delta(result: CellResult) -> str:
    return "–" if math.isnan(result.delta) else f"{result.delta * 100:+.2f}"


def _power_section(calibration: Calibration) -> str:
    caption = (
        "δ is the minimum detectable effect `nudgelab check` prints for 80 % power (two-sided, "
        "α/m per comparison, normal approximation on the arcsine scale; `experiments.design`); "
        "*analytic* is the power it promises there. Power is the share of trials in which the "
        "effect arm is declared significant after the correction (adjusted estimate: its "
        "p-values with the same correction; sequential plan: crossed its boundary at one of 10 "
        "looks, O'Brien-Fleming-type spending, group-sequential Holm). With "
        "5 arms the other 3 arms are null, and the family-wise error is the share of trials "
        "with one of them declared significant."
    )
    return _table_section(
        calibration,
        "effect",
        ("power", "family-wise error"),
        "Power at the minimum detectable effect",
        caption,
        (("δ (pp)", _delta), ("analytic", lambda r: f"{r.analytic_power:.3f}")),
    )


def _methods_section(calibration: Calibration) -> str:
    used = sorted({method for c in calibration.cells for method in c.methods})
    rules = sorted({m.method for m in calibration.metrics if m.measure == "stopping error"})
    return "\n".join(
        [
            "## Methods as run",
            "",
            "What the report's functions said they used, over all cells (a test switches with the "
            "counts):",
            "",
            *[f"- {item}" for item in used],
            *[f"- stopping rule: {rule}" for rule in rules],
        ]
    )
