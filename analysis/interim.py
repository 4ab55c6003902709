"""Looks at a running trial: the pre-registered group-sequential plan, or an unplanned look.

A trial whose plan has ``analysis.interim`` is analysed as a group-sequential design
(:mod:`analysis.sequential`): each look spends part of the type I error, and each comparison
of a treatment arm with the control stops for efficacy at the first look where its
z-statistic crosses the boundary. A trial without such a plan may still be looked at, but each
look is counted and the report warns that stopping on it inflates the false-positive rate.

**Information fractions from the looks actually taken.** The information fraction of a look is
``t_k = n_k / N``: analysed visits at the look over the planned sample size ``N``; it is capped
at 1, and the final analysis (the trial stopped, or ``n_k ≥ N``) is always taken at ``t = 1``,
so that it spends whatever error is left. Every earlier look recorded in the event log while the
trial ran counts: its visits, and the counts per arm it saw, are reconstructed from the visit
start times in the cell table (to the hour: visits started in the hour of a look count as seen
by it; outcome events and opt-outs recorded after the look are not undone). When the cells do
not carry the time (an export with merged times), the visits of an earlier look are interpolated
linearly in time between the trial's start and this analysis, and its z-statistics are unknown.
Looks less than :data:`MIN_SPACING` apart in information count as one look (the later one): the
statistics of such looks are almost perfectly correlated, and the integration of
:mod:`analysis.sequential` needs distinct fractions. Because boundaries come from the spending
function at the fractions actually reached, looks taken earlier, later or more often than
planned keep the overall error at ``α`` (Lan & DeMets 1983).

**Several comparisons: a group-sequential Holm procedure.** The ``m`` comparisons with the
control are tested with the graphical approach of Maurer & Bretz (2013) for the Holm graph
(equal weights, equal propagation), the group-sequential Holm procedure of Ye, Li, Liu & Yao
(2013; variants compared by Tamhane, Xi & Gou 2021). While ``A`` comparisons are still open,
each is tested with the group-sequential design of level ``α/|A|`` (the boundaries
``c_k(α/|A|)`` of the same spending function at the same fractions); a comparison that crosses
is rejected for good (stop for efficacy), and the others are re-tested at the same look with
``α/(|A| − 1)``, until no further one crosses. This controls the family-wise error rate at
``α`` over all looks and comparisons in the strong sense. Maurer & Bretz also allow a
comparison to be rejected by an *earlier* look's z against the raised boundary; this module
uses only the current look's z, which is valid and slightly conservative. Bonferroni tests
every comparison with ``α/m`` at every look (no recycling). Benjamini-Hochberg has no
established group-sequential form here: the Holm procedure is used, which controls the
family-wise error and therefore the false discovery rate. ``none`` tests each comparison at
``α`` (no family control).

**Repeated confidence intervals** (Jennison & Turnbull 1989): at look ``k`` the interval of
the difference ``d`` of the arm's and the control's rates at the look's nominal level, i.e. the
two-sided ``1 − 2(1 − Φ(c_k(α_F)))`` interval, with the boundary ``c_k(α_F)`` at the family level
``α_F = α/m`` (``α`` for ``none``). Jennison & Turnbull write it ``d ± c_k·se``; here the
interval at that level is Newcombe's hybrid score interval (:func:`analysis.intervals.newcombe`),
the report's difference interval, because the Wald form ``d ± c_k·se`` with the unpooled ``se``
covers too little when an arm has only a few successes (0.90 instead of 0.95 over 10 looks at 50
visits per arm and a 2 % rate, docs/calibration.md). Over all looks and all comparisons the
intervals cover the true differences simultaneously with probability of about ``1 − α`` or more
(Bonferroni over the comparisons), whenever the trial stops. The decision is the pooled z-test's;
an interval that excludes 0 nearly always belongs to a rejected comparison, but the two can
disagree at the boundary's edge.

**After stopping early.** A difference estimated at a look where a boundary was crossed is
biased away from zero: trials stop when the estimate happens to be large (Whitehead 1986;
Jennison & Turnbull 2000, ch. 8). The report says so; it does not correct the estimate.

References
----------
- Lan KKG, DeMets DL (1983) Discrete sequential boundaries for clinical trials.
  Biometrika 70:659–663.
- Jennison C, Turnbull BW (1989) Interim analyses: the repeated confidence interval approach.
  J R Stat Soc B 51:305–361.
- Jennison C, Turnbull BW (2000) Group Sequential Methods with Applications to Clinical Trials.
  Chapman & Hall/CRC (ch. 8: inference after a group sequential test; ch. 15: multiple
  endpoints and arms).
- Maurer W, Bretz F (2013) Multiple testing in group sequential trials using graphical
  approaches. Stat Biopharm Res 5:311–320.
- Ye Y, Li A, Liu L, Yao B (2013) A group sequential Holm procedure with multiple primary
  endpoints. Stat Med 32:1112–1124.
- Tamhane AC, Xi D, Gou J (2021) Group sequential Holm and Hochberg procedures.
  Stat Med 40:5333–5350.
- Whitehead J (1986) On the bias of maximum likelihood estimation following a sequential test.
  Biometrika 73:573–581.
- Armitage P, McPherson CK, Rowe BC (1969) Repeated significance tests on accumulating data.
  J R Stat Soc A 132:235–244 (the error of naive repeated testing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import pandas as pd
from scipy.special import ndtr, ndtri

from analysis.counts import MERGED, Counts, outcome_column
from analysis.estimate import ArmCounts, Comparison
from analysis.intervals import newcombe
from analysis.sequential import (
    Decision,
    Look,
    SequentialDesign,
    boundaries,
    crossing_probabilities,
)
from analysis.significance import z_test
from experiments.model import AnalysisPlan

__all__ = [
    "MIN_SPACING",
    "ComparisonStatus",
    "InterimAnalysis",
    "InterimLook",
    "LookCounts",
    "Tested",
    "Timeline",
    "family_level",
    "group_sequential_test",
    "interim_analysis",
    "look_counts",
    "naive_error",
    "repeated_difference_interval",
    "sequential_design",
]

#: Looks closer than this in information fraction are counted as one look (the later one).
MIN_SPACING = 0.01
#: A look this close in information to a planned one is taken to be that planned look.
PLANNED_LOOK_TOLERANCE = 0.05
#: Corrections whose family is tested by the group-sequential Holm procedure.
_HOLM_LIKE = frozenset({"holm", "bh"})


# -- values ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timeline:
    """When the trial ran and when its results were looked at (aware datetimes, UTC).

    ``status`` is the lifecycle state (``running``, ``stopped``, ``closed``, ``loaded``);
    ``looks`` are the earlier looks recorded in the event log, oldest first, not this one;
    ``now`` is the time of this analysis.
    """

    status: str | None
    started_at: datetime | None
    stopped_at: datetime | None
    looks: tuple[datetime, ...]
    now: datetime

    @property
    def running(self) -> bool:
        """Whether the trial is still collecting visits."""
        return self.status == "running"

    @property
    def ended(self) -> bool:
        """Whether the trial has stopped (this analysis is the final one)."""
        return self.status in ("stopped", "closed")

    def looks_while_running(self) -> tuple[datetime, ...]:
        """Earlier looks taken before the trial stopped (all of them while it runs).

        Looks before the start saw no visits and drop out when their fractions are computed.
        """
        end = self.stopped_at
        return tuple(moment for moment in self.looks if end is None or moment < end)


@dataclass(frozen=True)
class LookCounts:
    """What one look saw: analysed visits and, when known, the counts per arm.

    ``counts`` is ``None`` when an earlier look's counts cannot be reconstructed (its visits are
    then interpolated in time and ``basis`` says so).
    """

    at: datetime | None
    visits: float
    counts: tuple[ArmCounts, ...] | None
    basis: str


@dataclass(frozen=True)
class InterimLook:
    """One look of the sequence analysed: when, how much information, the boundary.

    ``z_boundary``/``p_boundary`` are those of one comparison at the first Holm step (level
    ``family_level``, i.e. ``α/m``); ``alpha_cumulative`` is the family's error ``α(t_k)`` spent
    by this look.
    """

    look: int
    at: datetime | None
    visits: int
    fraction: float
    basis: str
    z_boundary: float
    p_boundary: float
    alpha_cumulative: float


@dataclass(frozen=True)
class Tested:
    """The outcome of the group-sequential test of one comparison over the looks so far.

    ``crossed_at`` is the look (from 1) where it crossed its boundary, ``None`` if it has not;
    ``level`` and ``z_boundary`` are the two-sided level and |z| boundary of its deciding test
    (the crossing look, or the last look).
    """

    index: int
    crossed_at: int | None
    level: float
    z_boundary: float


@dataclass(frozen=True)
class ComparisonStatus:
    """One comparison with the control at this look: decision, boundary, repeated interval.

    ``z`` is the pooled two-proportion z-statistic (the report's z-test) and ``p`` its nominal
    two-sided p-value; ``level``, ``z_boundary`` and ``p_boundary`` are those the decision used.
    ``rci_low``/``rci_high`` are the repeated confidence interval of the difference at the
    family level, with confidence ``rci_confidence`` (``1 − α/m``). ``z_history`` holds the z of
    every look (``None`` where unknown).
    """

    arm: str
    difference: float | None
    z: float | None
    p: float | None
    level: float | None
    z_boundary: float | None
    p_boundary: float | None
    decision: str
    crossed_at: int | None
    rci_low: float | None
    rci_high: float | None
    rci_confidence: float | None
    z_history: tuple[float | None, ...]


@dataclass(frozen=True)
class InterimAnalysis:
    """The sequential side of a report: the looks taken, and each comparison's decision.

    ``planned`` says whether the pre-registered plan had interim looks; without one only
    ``looks``, ``naive_error`` and the warnings are filled. ``final`` is true for the analysis at
    full information (the trial stopped, or the planned sample size was reached).
    ``naive_error`` is the probability, for one comparison without an effect, of at least one
    nominal ``p < α`` over looks at these fractions (the error of naive peeking).
    """

    planned: bool
    final: bool
    status: str | None
    outcome: str
    alpha: float
    correction: str
    procedure: str
    spending: str | None
    planned_fractions: tuple[float, ...]
    planned_sample_size: int
    comparisons_in_family: int
    family_level: float
    looks: tuple[InterimLook, ...]
    comparisons: tuple[ComparisonStatus, ...]
    naive_error: float | None
    notes: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def current(self) -> InterimLook | None:
        """This analysis' look (the last one)."""
        return self.looks[-1] if self.looks else None


# -- the design and the test -----------------------------------------------------------------


@lru_cache(maxsize=512)
def _design(fractions: tuple[float, ...], level: float, spending: str) -> SequentialDesign:
    return boundaries(fractions, level, spending, power=None)  # type: ignore[arg-type]


def sequential_design(fractions: Sequence[float], level: float, spending: str) -> SequentialDesign:
    """:func:`analysis.sequential.boundaries` without the inflation factor, cached."""
    return _design(tuple(float(t) for t in fractions), float(level), spending)


def family_level(alpha: float, correction: str, comparisons: int) -> float:
    """The level of each comparison's first test and of the repeated intervals: ``α/m``.

    ``α`` itself for ``none`` (no family control) or a single comparison.
    """
    if correction == "none":
        return alpha
    return alpha / max(comparisons, 1)


def _level(alpha: float, correction: str, comparisons: int, still_open: int) -> float:
    if correction == "none":
        return alpha
    if correction in _HOLM_LIKE:
        return alpha / max(still_open, 1)
    return alpha / max(comparisons, 1)  # bonferroni


def group_sequential_test(
    z: Sequence[Sequence[float | None]],
    fractions: Sequence[float],
    alpha: float,
    spending: str,
    correction: str = "holm",
) -> tuple[Tested, ...]:
    """Test ``m`` comparisons over ``K`` looks with the group-sequential Holm procedure.

    ``z[k][i]`` is the z-statistic of comparison ``i`` at look ``k`` (``None``: not testable
    there); ``fractions`` are the looks' information fractions. At each look, the comparisons
    still open are tested against ``c_k(α/|A|)``; each crossing rejects that comparison for good
    and raises the level of the others, which are re-tested at the same look (Maurer & Bretz
    2013). ``bonferroni`` keeps ``α/m`` throughout, ``none`` uses ``α``; ``bh`` is tested as
    ``holm``. The family size ``m`` counts the comparisons with a z at the last look.
    """
    if len(z) != len(fractions):
        raise ValueError(f"{len(z)} looks of z-values but {len(fractions)} fractions")
    if not z:
        return ()
    width = len(z[-1])
    if any(len(row) != width for row in z):
        raise ValueError("every look needs one z-value (or None) per comparison")
    family = [i for i in range(width) if z[-1][i] is not None]
    m = len(family)
    crossed: dict[int, tuple[int, float, float]] = {}
    last: dict[int, tuple[float, float]] = {}
    for k in range(len(fractions)):
        while True:
            still_open = [i for i in family if i not in crossed]
            if not still_open:
                break
            level = _level(alpha, correction, m, len(still_open))
            c = sequential_design(fractions, level, spending).looks[k].z_boundary
            new = [i for i in still_open if z[k][i] is not None and abs(z[k][i]) >= c]  # type: ignore[arg-type]
            for i in still_open:
                last[i] = (level, c)
            for i in new:
                crossed[i] = (k + 1, level, c)
            if not new or correction not in _HOLM_LIKE:
                break
    result = []
    for i in range(width):
        if i in crossed:
            look, level, c = crossed[i]
            result.append(Tested(i, look, level, c))
        elif i in last:
            level, c = last[i]
            result.append(Tested(i, None, level, c))
        else:
            result.append(Tested(i, None, math.nan, math.nan))
    return tuple(result)


def naive_error(fractions: Sequence[float], alpha: float = 0.05) -> float:
    """P(at least one nominal two-sided ``p < α``) over looks at ``fractions``, under H0.

    Exact (by the recursive integration of :mod:`analysis.sequential`) for one comparison whose
    z-statistics have the canonical joint distribution ``corr(Z_j, Z_k) = √(t_j/t_k)``; only the
    ratios of the fractions matter. One look gives ``α``; ten equally spaced looks at 0.05 give
    0.193 (Armitage, McPherson & Rowe 1969).
    """
    if not fractions:
        return math.nan
    top = max(fractions)
    relative = [t / top for t in fractions]
    c = float(ndtri(1.0 - alpha / 2.0))
    return float(sum(crossing_probabilities(relative, [c] * len(relative))))


# -- the looks -------------------------------------------------------------------------------


def _cell_starts(cells: pd.DataFrame) -> pd.Series | None:
    """Start of the hour of each cell's visits (UTC), or ``None`` if the time was merged."""
    keys = [cells[key].astype(str) for key in ("week", "weekday", "hour")]
    if any((key == MERGED).any() for key in keys):
        return None
    week = pd.to_datetime(keys[0], format="%Y-%m-%d", utc=True)
    offset = pd.to_timedelta(keys[1].astype(int), unit="D") + pd.to_timedelta(
        keys[2].astype(int), unit="h"
    )
    return week + offset


def _arm_counts(cells: pd.DataFrame, column: str, arms: Sequence[str]) -> tuple[ArmCounts, ...]:
    table = cells.groupby(cells["arm"].astype(str))[["n", "opted_out", column]].sum()
    result = []
    for arm in arms:
        if arm in table.index:
            row = table.loc[arm]
            result.append(ArmCounts(arm, int(row["n"] - row["opted_out"]), int(row[column])))
        else:
            result.append(ArmCounts(arm, 0, 0))
    return tuple(result)


def look_counts(
    counts: Counts,
    outcome_id: str,
    arms: Sequence[str],
    timeline: Timeline,
    current: Sequence[ArmCounts],
) -> tuple[LookCounts, ...]:
    """What each look while running saw, oldest first; this analysis (``current``) is last.

    Earlier looks are reconstructed from the visit start hours of the cells (see the module
    docstring), or interpolated in time when the cells carry no time.
    """
    this = LookCounts(
        timeline.now, float(sum(c.n for c in current)), tuple(current), "this analysis"
    )
    earlier = timeline.looks_while_running()
    if not earlier:
        return (this,)
    cells = counts.cells
    starts = _cell_starts(cells) if len(cells) else None
    if starts is None:
        return (*(_interpolated(moment, timeline, this.visits) for moment in earlier), this)
    column = outcome_column(outcome_id)
    looks = []
    for moment in earlier:
        seen = cells[(starts < _aware(moment)).to_numpy()]
        arm_counts = _arm_counts(seen, column, arms)
        looks.append(
            LookCounts(
                moment,
                float(sum(c.n for c in arm_counts)),
                arm_counts,
                "reconstructed from visit start times (to the hour)",
            )
        )
    return (*looks, this)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _interpolated(moment: datetime, timeline: Timeline, visits_now: float) -> LookCounts:
    start = timeline.started_at
    if start is None or timeline.now <= start:
        share = 0.0
    else:
        share = (_aware(moment) - _aware(start)) / (_aware(timeline.now) - _aware(start))
    share = min(max(share, 0.0), 1.0)
    return LookCounts(
        moment,
        visits_now * share,
        None,
        "interpolated in time (the cells carry no visit times)",
    )


def _sequence(
    looks: Sequence[LookCounts], planned: int, final: bool
) -> list[tuple[LookCounts, float]]:
    """The looks with their fractions ``min(n/N, 1)``, merged to increasing, well spaced ones.

    Spacing is judged on the visits, before the final analysis is put at fraction 1: a final
    analysis of (nearly) the same data as the look before it replaces that look.
    """
    kept: list[tuple[LookCounts, float]] = []
    for look in looks:
        fraction = min(look.visits / planned, 1.0)
        if fraction <= 0.0:
            continue
        while kept and fraction - kept[-1][1] < MIN_SPACING:
            kept.pop()
        kept.append((look, fraction))
    if final and kept:
        kept[-1] = (kept[-1][0], 1.0)
    return kept


# -- the analysis ----------------------------------------------------------------------------


def _z(counts: Sequence[ArmCounts] | None, control: str) -> list[float | None]:
    """Pooled z of each non-control arm against the control (``None`` if an arm is empty)."""
    if counts is None:
        return []
    by_arm = {c.arm: c for c in counts}
    k = by_arm.get(control)
    result: list[float | None] = []
    for c in counts:
        if c.arm == control:
            continue
        if k is None or k.n == 0 or c.n == 0:
            result.append(None)
        else:
            result.append(z_test(c.successes, c.n, k.successes, k.n)[0])
    return result


def _procedure(correction: str, spending: str, m: int) -> str:
    kind = "O'Brien-Fleming" if spending == "obrien-fleming" else "Pocock"
    design = f"Lan-DeMets {kind}-type alpha spending, two-sided (alpha/2 per side)"
    if m <= 1 or correction == "none":
        family = (
            "each comparison at the full alpha (no correction for several comparisons)"
            if m > 1
            else "one comparison"
        )
        return f"{design}; {family}."
    if correction == "bonferroni":
        return f"{design}; Bonferroni: each of the {m} comparisons at alpha/{m} at every look."
    holm = (
        f"{design}; group-sequential Holm procedure over the {m} comparisons (Maurer & Bretz "
        "2013; Ye et al. 2013): while A comparisons are open each is tested with the boundaries "
        "of level alpha/A, and a comparison that crosses passes its share to the others, which "
        "are re-tested at the same look."
    )
    if correction == "bh":
        holm += (
            " Benjamini-Hochberg has no group-sequential form here; Holm controls the "
            "family-wise error and hence the false discovery rate."
        )
    return holm


def interim_analysis(
    plan: AnalysisPlan,
    comparison: Comparison | None,
    outcome_id: str,
    counts: Counts,
    timeline: Timeline,
    *,
    alpha: float,
    correction: str,
) -> InterimAnalysis | None:
    """The sequential analysis of this look at the primary outcome, or ``None`` if none applies.

    ``plan`` is the pre-registered analysis plan (its ``interim`` looks and spending, its
    planned sample size); ``comparison`` the primary outcome's unadjusted comparison at this
    look; ``alpha`` and ``correction`` those the report uses. Returns ``None`` for a trial that
    never ran, and for a final analysis without an interim plan and without earlier looks.
    """
    if not (timeline.running or timeline.ended):
        return None
    earlier = timeline.looks_while_running()
    if plan.interim is None and timeline.ended and not earlier:
        return None
    if comparison is None:
        return _not_estimable(plan, outcome_id, timeline, alpha, correction)
    current = [ArmCounts(e.arm, e.n, e.successes) for e in comparison.arms]
    arms = [c.arm for c in current]
    looks = look_counts(counts, outcome_id, arms, timeline, current)
    final = timeline.ended or looks[-1].visits >= plan.planned_sample_size
    sequence = _sequence(looks, plan.planned_sample_size, final)
    if plan.interim is None:
        return _unplanned(plan, outcome_id, timeline, sequence, alpha, correction, comparison)
    if not sequence:  # no analysed visit yet: nothing to decide
        return _not_estimable(plan, outcome_id, timeline, alpha, correction)
    return _planned(plan, outcome_id, timeline, sequence, alpha, correction, comparison, final)


def _not_estimable(
    plan: AnalysisPlan, outcome_id: str, timeline: Timeline, alpha: float, correction: str
) -> InterimAnalysis:
    warning = (
        f"{outcome_id}: no comparison could be estimated at this look (no analysed visits in "
        "the control or in every arm), so no interim decision is made"
    )
    return InterimAnalysis(
        planned=plan.interim is not None, final=timeline.ended, status=timeline.status,
        outcome=outcome_id, alpha=alpha, correction=correction, procedure="",
        spending=plan.interim.spending if plan.interim else None,
        planned_fractions=plan.interim_fractions, planned_sample_size=plan.planned_sample_size,
        comparisons_in_family=0, family_level=alpha, looks=(), comparisons=(),
        naive_error=None, notes=(), warnings=(warning,),
    )  # fmt: skip


def _unplanned(
    plan: AnalysisPlan,
    outcome_id: str,
    timeline: Timeline,
    sequence: Sequence[tuple[LookCounts, float]],
    alpha: float,
    correction: str,
    comparison: Comparison,
) -> InterimAnalysis:
    """No interim plan: count the looks, compute what naive peeking costs, and warn."""
    fractions = [fraction for _, fraction in sequence]
    error = naive_error(fractions, alpha) if fractions else None
    looks = tuple(
        InterimLook(i + 1, look.at, round(look.visits), fraction, look.basis,
                    math.nan, math.nan, math.nan)
        for i, (look, fraction) in enumerate(sequence)
    )  # fmt: skip
    count = len(timeline.looks_while_running()) + (1 if timeline.running else 0)
    peeking = (
        f"stopping at the first look with p < {alpha:g} over the {len(fractions)} looks taken at "
        f"these information fractions gives a false-positive rate of {error:.3f} per comparison "
        f"instead of {alpha:g}"
        if error is not None and len(fractions) > 1
        else f"each further look raises the false-positive rate of stopping at the first p < "
        f"{alpha:g} (10 looks: 0.19 instead of 0.05)"
    )
    if timeline.running:
        warning = (
            f"Unplanned look at a running trial: the plan has no interim looks "
            f"(analysis.interim), and this is look {count} while the trial runs. The p-values "
            f"and intervals are fixed-design values that assume a single look at the end; "
            f"{peeking}. Do not stop or change the trial because of this look."
        )
    else:
        warning = (
            f"{count} look{'s' if count != 1 else ''} at the results were taken while the trial "
            f"ran, without pre-registered interim looks; if any of them influenced when the "
            f"trial stopped, the p-values are too small and the intervals too narrow "
            f"({peeking})."
        )
    m = sum(1 for e in comparison.arms if not e.is_control and e.p_value is not None)
    return InterimAnalysis(
        planned=False, final=timeline.ended, status=timeline.status, outcome=outcome_id,
        alpha=alpha, correction=correction, procedure="no interim plan: fixed-design analysis",
        spending=None, planned_fractions=(), planned_sample_size=plan.planned_sample_size,
        comparisons_in_family=m, family_level=family_level(alpha, correction, m), looks=looks,
        comparisons=(), naive_error=error, notes=(), warnings=(warning,),
    )  # fmt: skip


def _planned(
    plan: AnalysisPlan,
    outcome_id: str,
    timeline: Timeline,
    sequence: Sequence[tuple[LookCounts, float]],
    alpha: float,
    correction: str,
    comparison: Comparison,
    final: bool,
) -> InterimAnalysis:
    """The pre-registered plan: boundaries at the actual fractions, decisions and intervals."""
    assert plan.interim is not None
    spending = plan.interim.spending
    control = comparison.control
    fractions = [fraction for _, fraction in sequence]
    z = [_z(look.counts, control) or [None] * (len(comparison.arms) - 1) for look, _ in sequence]
    others = [e for e in comparison.arms if not e.is_control]
    m = sum(1 for value in z[-1] if value is not None)
    first = family_level(alpha, correction, m)
    design = sequential_design(fractions, first, spending)
    spent = sequential_design(fractions, alpha, spending)
    looks = tuple(
        InterimLook(
            i + 1, look.at, round(look.visits), fraction, look.basis,
            design.looks[i].z_boundary, design.looks[i].p_boundary,
            spent.looks[i].alpha_cumulative,
        )
        for i, (look, fraction) in enumerate(sequence)
    )  # fmt: skip
    tested = group_sequential_test(z, fractions, alpha, spending, correction)
    statuses = tuple(
        _status(e.arm, comparison, t, [row[i] for row in z], design, final)
        for i, (e, t) in enumerate(zip(others, tested, strict=True))
    )
    notes, warnings = _planned_messages(plan, timeline, looks, statuses, final)
    return InterimAnalysis(
        planned=True, final=final, status=timeline.status, outcome=outcome_id, alpha=alpha,
        correction=correction, procedure=_procedure(correction, spending, m), spending=spending,
        planned_fractions=plan.interim_fractions, planned_sample_size=plan.planned_sample_size,
        comparisons_in_family=m, family_level=first, looks=looks, comparisons=statuses,
        naive_error=naive_error(fractions, alpha), notes=notes, warnings=warnings,
    )  # fmt: skip


def _status(
    arm: str,
    comparison: Comparison,
    tested: Tested,
    history: list[float | None],
    design: SequentialDesign,
    final: bool,
) -> ComparisonStatus:
    """One comparison's decision at this look, with its repeated confidence interval."""
    e = comparison.arm(arm)
    k = comparison.arm(comparison.control)
    z = history[-1]
    if z is None:
        return ComparisonStatus(
            e.arm, e.diff, None, None, None, None, None, "not testable (no analysed visits)",
            None, None, None, None, tuple(history),
        )  # fmt: skip
    if tested.crossed_at is not None:
        decision = Decision.STOP_FOR_EFFICACY.value
    elif final:
        decision = Decision.STOP_NOT_SIGNIFICANT.value
    else:
        decision = Decision.CONTINUE.value
    low, high = repeated_difference_interval(e.successes, e.n, k.successes, k.n, design.looks[-1])
    p_boundary = float(2.0 * ndtr(-tested.z_boundary)) if math.isfinite(tested.z_boundary) else 0.0
    return ComparisonStatus(
        e.arm, e.diff, z, float(2.0 * ndtr(-abs(z))), tested.level, tested.z_boundary,
        p_boundary, decision, tested.crossed_at, low, high, 1.0 - design.alpha, tuple(history),
    )  # fmt: skip


def repeated_difference_interval(
    x1: int, n1: int, x0: int, n0: int, look: Look
) -> tuple[float, float]:
    """The repeated confidence interval of ``x1/n1 − x0/n0`` at ``look``: Newcombe's hybrid score
    interval at the look's nominal two-sided level ``p_boundary`` (the whole range ``[−1, 1]``
    where the boundary is infinite: no error may be spent there)."""
    if n1 <= 0 or n0 <= 0:
        raise ValueError("a repeated interval needs visits in both arms")
    if not look.p_boundary > 0.0:
        return -1.0, 1.0
    return newcombe(x1, n1, x0, n0, look.p_boundary)


def _planned_messages(
    plan: AnalysisPlan,
    timeline: Timeline,
    looks: Sequence[InterimLook],
    statuses: Sequence[ComparisonStatus],
    final: bool,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Notes for the section and warnings for the report's Warnings box."""
    notes: list[str] = []
    warnings: list[str] = []
    now = looks[-1]
    planned = plan.interim_fractions
    if len(looks) > len(planned):
        notes.append(
            f"{len(looks)} looks were taken, {len(planned)} planned: every look spends alpha at "
            "its actual information fraction, so the extra looks cost power, not validity."
        )
    crossed = [s for s in statuses if s.crossed_at is not None]
    earlier = [s for s in crossed if s.crossed_at != now.look]
    for s in earlier:
        notes.append(
            f"{s.arm} crossed its efficacy boundary at look {s.crossed_at}; under the plan that "
            "comparison stopped there and later looks do not change its decision."
        )
    if crossed:
        warnings.append(
            "Efficacy boundary crossed for "
            + ", ".join(f"{s.arm} (look {s.crossed_at})" for s in crossed)
            + ": the difference estimated when a trial (or an arm) stops early is biased away "
            "from zero, so the reported difference overstates the effect; the repeated "
            "confidence interval stays valid."
        )
    if not final:
        upcoming = [t for t in planned if t > now.fraction + PLANNED_LOOK_TOLERANCE]
        following = (
            f" The next planned look is at {upcoming[0]:.0%} of the planned "
            f"{plan.planned_sample_size:,} visits."
            if upcoming
            else ""
        )
        warnings.append(
            f"Interim analysis (look {now.look}, information fraction {now.fraction:.2f}) under "
            f"the pre-registered sequential plan: decide by the boundaries in 'Interim analysis', "
            f"not by the p-values and intervals of the results tables, which are fixed-design "
            f"values.{following}"
        )
    elif len(looks) > 1:
        warnings.append(
            f"Final analysis after {len(looks) - 1} interim look{'s' if len(looks) > 2 else ''}: "
            "the decision is the sequential one in 'Interim analysis'; the p-values and intervals "
            "of the results tables ignore the earlier looks."
        )
    if timeline.ended and now.visits < plan.planned_sample_size * (1 - MIN_SPACING):
        notes.append(
            f"The trial stopped with {now.visits:,} analysed visits of "
            f"{plan.planned_sample_size:,} planned; the final analysis is taken at information "
            "fraction 1, spending the alpha that is left."
        )
    if any(look.basis.startswith("interpolated") for look in looks):
        notes.append(
            "The visits of some earlier looks are interpolated in time (the data carry no visit "
            "times), and their z-statistics are unknown: only this look's can cross."
        )
    return tuple(notes), tuple(warnings)
