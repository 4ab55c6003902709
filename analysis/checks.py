"""Data-quality checks: sample-ratio mismatch, covariate balance, opt-outs, orphans, versions.

Nothing is dropped silently: every visit or event the estimates do not use is counted here and
the report lists it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import Connection

from analysis.counts import Counts, load_counts, unexposed_column
from experiments.model import Trial

#: Below this p-value a sample-ratio mismatch is flagged loudly (as in Fabijan et al. 2019).
SRM_THRESHOLD = 0.001
DAYPARTS: tuple[tuple[str, int, int], ...] = (
    ("night 00-06", 0, 6),
    ("morning 06-12", 6, 12),
    ("afternoon 12-18", 12, 18),
    ("evening 18-24", 18, 24),
)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class SampleRatio:
    """Chi-square goodness of fit of randomized visits per arm against the allocation weights."""

    observed: dict[str, int]
    expected: dict[str, float]
    chi2: float
    df: int
    p_value: float
    threshold: float
    mismatch: bool


def sample_ratio(
    observed: Mapping[str, int], weights: Mapping[str, int], threshold: float = SRM_THRESHOLD
) -> SampleRatio:
    """Test observed arm sizes against ``weights`` (``scipy.stats.chisquare``)."""
    arms = list(weights)
    counts = np.array([observed.get(arm, 0) for arm in arms], dtype=float)
    total = counts.sum()
    share = np.array([weights[arm] for arm in arms], dtype=float)
    expected = total * share / share.sum()
    if total == 0:
        chi2, p = float("nan"), float("nan")
    else:
        result = stats.chisquare(counts, expected)
        chi2, p = float(result.statistic), float(result.pvalue)
    return SampleRatio(
        {arm: int(c) for arm, c in zip(arms, counts, strict=True)},
        {arm: float(e) for arm, e in zip(arms, expected, strict=True)},
        chi2,
        len(arms) - 1,
        p,
        threshold,
        bool(p < threshold),
    )


@dataclass(frozen=True)
class BalanceTable:
    """Randomized visits per arm and level of one covariate, with a chi-square test."""

    covariate: str
    levels: tuple[str, ...]
    arms: tuple[str, ...]
    #: ``counts[i][j]``: visits of arm ``arms[i]`` at level ``levels[j]``.
    counts: tuple[tuple[int, ...], ...]
    chi2: float | None
    df: int | None
    p_value: float | None
    note: str = ""


def _covariate(cells: pd.DataFrame, covariate: str) -> pd.Series:
    if covariate == "daypart":
        hours = pd.to_numeric(cells["hour"], errors="coerce")
        labels = pd.Series("*", index=cells.index)
        for label, low, high in DAYPARTS:
            labels[(hours >= low) & (hours < high)] = label
        return labels
    if covariate == "weekday":
        days = pd.to_numeric(cells["weekday"], errors="coerce")
        return days.map(lambda d: WEEKDAYS[int(d)] if pd.notna(d) else "*")
    return cells[covariate]


def balance_table(counts: Counts, arms: Sequence[str], covariate: str) -> BalanceTable:
    """Cross-tabulate arms by ``covariate`` (location, language, daypart, weekday or week)."""
    cells = counts.cells
    frame = pd.DataFrame({"arm": cells["arm"], "level": _covariate(cells, covariate)})
    frame["n"] = cells["n"]
    table = frame.pivot_table(index="arm", columns="level", values="n", aggfunc="sum")
    table = table.reindex(index=list(arms)).fillna(0).astype(int)
    order = sorted(table.columns, key=_level_order(covariate))
    table = table[order]
    matrix = table.to_numpy()
    keep = matrix.sum(axis=0) > 0
    tested = matrix[:, keep][matrix.sum(axis=1) > 0]
    chi2 = df = p = None
    note = ""
    if "*" in table.columns:
        note = "not tested: some strata were merged (export file), so levels are not comparable"
    elif tested.shape[0] < 2 or tested.shape[1] < 2:
        note = "not tested: fewer than two arms or levels with visits"
    else:
        result = stats.chi2_contingency(tested, correction=False)
        chi2, df, p = float(result.statistic), int(result.dof), float(result.pvalue)
        small = int((result.expected_freq < 5).sum())
        if small:
            note = f"{small} expected counts below 5: the chi-square p-value is approximate"
    return BalanceTable(
        covariate,
        tuple(str(level) for level in table.columns),
        tuple(arms),
        tuple(tuple(int(v) for v in row) for row in matrix),
        chi2,
        df,
        p,
        note,
    )


def _level_order(covariate: str):  # type: ignore[no-untyped-def]
    if covariate == "daypart":
        names = [name for name, _, _ in DAYPARTS]
        return lambda level: (names.index(level) if level in names else len(names), level)
    if covariate == "weekday":
        return lambda level: (WEEKDAYS.index(level) if level in WEEKDAYS else 7, level)
    return lambda level: (level == "*", level)


@dataclass(frozen=True)
class OptOuts:
    """Opt-outs per arm and a chi-square test of equal opt-out rates (differential attrition)."""

    per_arm: dict[str, tuple[int, int]]  # arm -> (randomized, opted out)
    chi2: float | None
    p_value: float | None


def opt_outs(counts: Counts, arms: Sequence[str]) -> OptOuts:
    """Opt-outs per arm and a chi-square test of equal opt-out rates."""
    by_arm = counts.by("arm").reindex(list(arms)).fillna(0)
    per_arm = {arm: (int(by_arm.at[arm, "n"]), int(by_arm.at[arm, "opted_out"])) for arm in arms}
    table = np.array([[out, n - out] for n, out in per_arm.values()])
    table = table[table.sum(axis=1) > 0]
    chi2 = p = None
    if len(table) >= 2 and (table.sum(axis=0) > 0).all():
        result = stats.chi2_contingency(table, correction=False)
        chi2, p = float(result.statistic), float(result.pvalue)
    return OptOuts(per_arm, chi2, p)


@dataclass(frozen=True)
class VersionShare:
    """Exposures in one language (or arm) and how many carried the current version hash."""

    group: str
    current_version: str
    exposures: int
    current: int

    @property
    def share(self) -> float | None:
        """Share of exposures with the current version (``None`` without exposures)."""
        return self.current / self.exposures if self.exposures else None


@dataclass(frozen=True)
class Quality:
    """Counts of records the estimates do not use, and version hashes of what was shown."""

    visits_without_assignment: int = 0
    events_without_assignment: dict[str, int] = field(default_factory=dict)
    outcomes_without_exposure: dict[str, int] = field(default_factory=dict)
    opted_out_with_outcome: int = 0
    disclosure: tuple[VersionShare, ...] = ()
    material: tuple[VersionShare, ...] = ()
    visits_by_version: dict[str, int] = field(default_factory=dict)

    @property
    def disclosure_share(self) -> float | None:
        """Share of all exposures that carried the current disclosure hash."""
        total = sum(item.exposures for item in self.disclosure)
        return sum(item.current for item in self.disclosure) / total if total else None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready values, the overall disclosure share included."""
        data = asdict(self)
        data["disclosure_share"] = self.disclosure_share
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Quality:
        """Rebuild from :meth:`to_dict` output (as stored in an export file)."""
        values = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        for key in ("disclosure", "material"):
            values[key] = tuple(VersionShare(**item) for item in values.get(key, ()))  # type: ignore[attr-defined]
        return cls(**values)  # type: ignore[arg-type]


def read_quality(conn: Connection, trial: Trial, counts: Counts) -> Quality:
    """The data-quality figures: orphans, versions shown, and what the cell counts flag.

    Counts read from the database carry the tally of the same pass over the event log; for
    other counts (built from a cell table) the event log is read once now.
    """
    log = counts.tally
    if log is None:
        log = load_counts(conn, counts.trial_id, counts.outcomes).tally
        assert log is not None
    disclosure: dict[str, list[int]] = {}
    material: dict[str, list[int]] = {}
    for (arm, language, disclosure_version, material_version), number in log.exposures.items():
        lang = language or "?"
        current_d = trial.disclosure_version(lang) if lang in trial.disclosure else ""
        bucket = disclosure.setdefault(lang, [0, 0])
        bucket[0] += number
        bucket[1] += number if disclosure_version == current_d else 0
        current_m = _material_version(trial, arm, lang)
        bucket = material.setdefault(arm, [0, 0])
        bucket[0] += number
        bucket[1] += number if material_version == current_m else 0
    by_arm = counts.by("arm")
    return Quality(
        visits_without_assignment=log.visits_without_assignment,
        events_without_assignment=dict(log.events_without_assignment),
        outcomes_without_exposure={
            o.id: int(by_arm[unexposed_column(o.id)].sum()) for o in counts.outcomes
        },
        opted_out_with_outcome=int(by_arm["opted_out_with_outcome"].sum()),
        disclosure=tuple(
            VersionShare(
                lang,
                trial.disclosure_version(lang) if lang in trial.disclosure else "",
                total,
                current,
            )
            for lang, (total, current) in sorted(disclosure.items())
        ),
        material=tuple(
            VersionShare(arm, "current material of the arm in each language", total, current)
            for arm, (total, current) in sorted(material.items())
        ),
        visits_by_version=dict(log.visits_by_version),
    )


def _material_version(trial: Trial, arm: str, language: str) -> str:
    try:
        return trial.material_version(arm, language)
    except KeyError:
        return ""


@dataclass(frozen=True)
class Checks:
    """All data-quality checks of one analysis."""

    sample_ratio: SampleRatio
    balance: tuple[BalanceTable, ...]
    opt_outs: OptOuts
    quality: Quality
    warnings: tuple[str, ...]


BALANCE_COVARIATES = ("location", "language", "daypart", "weekday", "week")


def run_checks(
    counts: Counts, arms: Sequence[str], weights: Mapping[str, int], quality: Quality
) -> Checks:
    """Every check on the counts, with the warnings the report must show."""
    by_arm = counts.by("arm")
    observed = {arm: int(by_arm["n"].get(arm, 0)) for arm in arms}
    srm = sample_ratio(observed, {arm: weights.get(arm, 1) for arm in arms})
    tables = tuple(balance_table(counts, arms, covariate) for covariate in BALANCE_COVARIATES)
    warnings: list[str] = []
    if srm.mismatch:
        warnings.append(
            f"SAMPLE RATIO MISMATCH: arm sizes differ from the allocation weights "
            f"(chi-square {srm.chi2:.1f}, df {srm.df}, p = {srm.p_value:.2g} < {srm.threshold}). "
            "Randomization or logging may be broken; do not trust the effect estimates until "
            "the cause is found."
        )
    for table in tables:
        if table.p_value is not None and table.p_value < SRM_THRESHOLD:
            warnings.append(
                f"imbalance: arms differ by {table.covariate} (p = {table.p_value:.2g})"
            )
    if quality.visits_without_assignment:
        warnings.append(
            f"{quality.visits_without_assignment} visits have no assignment and are not analysed"
        )
    for kind, number in quality.events_without_assignment.items():
        warnings.append(f"{number} {kind} events belong to visits without an assignment")
    for outcome, number in quality.outcomes_without_exposure.items():
        if number:
            warnings.append(f"{number} analysed visits have outcome {outcome} but no exposure")
    if quality.opted_out_with_outcome:
        warnings.append(
            f"{quality.opted_out_with_outcome} opted-out visits still have outcome events "
            "(the event log should have deleted them)"
        )
    share = quality.disclosure_share
    if share is not None and share < 1:
        warnings.append(f"only {share:.1%} of exposures carried the current disclosure")
    withdrawn = opt_outs(counts, arms)
    if withdrawn.p_value is not None and withdrawn.p_value < SRM_THRESHOLD:
        rates = ", ".join(
            f"{arm} {out / n:.1%}" for arm, (n, out) in withdrawn.per_arm.items() if n
        )
        warnings.append(
            f"differential opt-out: opt-out rates differ between arms ({rates}; chi-square "
            f"{withdrawn.chi2:.1f}, p = {withdrawn.p_value:.2g} < {SRM_THRESHOLD}). Opt-outs "
            "are excluded from the outcome analysis, so the analysed visits of the arms may no "
            "longer be comparable (attrition bias); read the effects with care"
        )
    return Checks(srm, tables, withdrawn, quality, tuple(warnings))
