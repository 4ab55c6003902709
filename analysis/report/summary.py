"""The report's first screen: what the trial found on its primary outcome, in plain words.

Everything here is generated from the values of a :class:`~analysis.results.Report`; there is no
hand-written text per trial. :func:`summarize` builds a frozen :class:`Summary` (the JSON
carries it as data), :func:`summary_blocks` renders it for the HTML and Markdown writers.

The summary names each arm by its title (the heading of its material in the report's language,
:data:`REPORT_LANGUAGE`, or else in the trial's first language) with its id in small print
(:func:`arm_label`), as every table and figure of the report does. For each arm compared with
the control it gives the rate, the difference in percentage points with an interval, and the
decision *after* the pre-registered correction for multiple comparisons (or, at an interim look
of a group-sequential plan, the plan's decision with its repeated confidence interval). It then
says what the result does not mean: nothing about individual visitors, no effect on anyone's
case, and "no significant difference" is not "no difference" (the interval says how large a
difference the data still allow; Altman & Bland 1995, BMJ 311:485).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from analysis.report.blocks import Block, Bullets, Heading, Paragraph, missing, number, p_value
from analysis.results import OutcomeResult, Report
from analysis.transparency import REPORT_LANGUAGE

if TYPE_CHECKING:
    from analysis.estimate import ArmEstimate, Comparison

CORRECTION_NAMES = {
    "holm": "Holm",
    "bonferroni": "Bonferroni",
    "bh": "Benjamini–Hochberg",
    "none": "no",
}

#: Decisions of a comparison, as :attr:`Finding.decision` states them.
DIFFERS = "differs from the control"
NOT_SIGNIFICANT = "no significant difference"
CONTINUE = "continue: no boundary crossed yet"
STOP_FOR_EFFICACY = "stop for efficacy: boundary crossed"
NOT_ESTIMABLE = "not estimable"


# -- arm names ---------------------------------------------------------------------------------


def arm_titles(report: Report) -> dict[str, str]:
    """Each arm's title: its material's heading in :data:`REPORT_LANGUAGE`, else the first one."""
    titles = {}
    for arm in report.transparency.arms:
        by_language = {language: title for language, title, _ in arm.materials}
        title = by_language.get(REPORT_LANGUAGE) or next(iter(by_language.values()), arm.id)
        titles[arm.id] = " ".join(title.split())
    return titles


def arm_label(report: Report, arm: str) -> str:
    """``Title `id```: the writers show the id (a code span) in small print after the title."""
    title = arm_titles(report).get(arm)
    return f"`{arm}`" if not title or title == arm else f"{title} `{arm}`"


# -- the values --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One arm against the control on the primary outcome, as the summary states it.

    ``interval`` is the one that goes with ``decision``: the simultaneous (family-level)
    interval when the comparison carries one, the repeated confidence interval at an interim
    look of a sequential plan, otherwise the per-comparison interval; ``interval_label`` says
    which. ``significant`` is the decision after the correction (or the sequential plan).
    """

    arm: str
    title: str
    n: int
    rate: float | None
    diff: float | None
    interval_low: float | None
    interval_high: float | None
    interval_label: str
    p_adjusted: float | None
    significant: bool | None
    decision: str
    sentence: str


@dataclass(frozen=True)
class Summary:
    """The plain-language summary of the primary outcome (see the module docstring)."""

    outcome: str
    description: str
    control: str
    control_title: str
    control_n: int
    control_rate: float | None
    correction: str
    comparisons: int
    alpha: float
    #: ``final``, ``final (sequential plan)``, ``interim (planned look)``, ``unplanned look``
    #: or ``not estimable``.
    stage: str
    headline: str
    findings: tuple[Finding, ...]
    caveats: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (non-finite numbers become ``None``)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["findings"] = [
            {name: _finite(getattr(f, name)) for name in f.__dataclass_fields__}
            for f in self.findings
        ]
        data["caveats"] = list(self.caveats)
        data["control_rate"] = _finite(self.control_rate)
        return data


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


# -- building it ---------------------------------------------------------------------------


def _pp(value: float) -> str:
    """An absolute difference in percentage points, in words."""
    return f"{abs(value) * 100:.2f} percentage points"


def _pct(value: float | None) -> str:
    return "–" if missing(value) else f"{value * 100:.2f}%"  # type: ignore[operator]


def _signed(value: float) -> str:
    return f"{value * 100:+.2f}".replace("-", "−")


def _interim(report: Report) -> Any:
    """The report's sequential analysis, when the pipeline computed one."""
    return report.interim


def _sequential_status(report: Report, arm: str) -> Any:
    """The arm's group-sequential status when the plan has interim looks (else ``None``)."""
    interim = _interim(report)
    if interim is None or not interim.planned:
        return None
    return next((c for c in interim.comparisons if c.arm == arm), None)


def _family_interval(estimate: ArmEstimate) -> tuple[float | None, float | None, float | None]:
    """The family-level interval of a comparison and its level, when the estimator made one."""
    return (
        estimate.diff_simultaneous_ci_low,
        estimate.diff_simultaneous_ci_high,
        estimate.simultaneous_level,
    )


def family_size(comparison: Comparison) -> int:
    """The number of comparisons the correction ran over (arms other than the control)."""
    return comparison.family_size or len(comparison.arms) - 1


def _family_label(comparison: Comparison, level: float | None) -> str:
    """What a family-level interval is: Bonferroni-simultaneous or FCR-adjusted (BY 2005)."""
    confidence = f"{level:.2%}" if isinstance(level, float) else "family-level"
    m = family_size(comparison)
    if comparison.simultaneous == "benjamini-yekutieli":
        return f"FCR-adjusted {confidence} interval of Benjamini–Yekutieli for the selected arms"
    return f"simultaneous {confidence} interval, Bonferroni-adjusted for {m} comparisons"


def _interval(report: Report, outcome: OutcomeResult, estimate: Any) -> tuple[Any, Any, str]:
    """The interval that goes with the decision, and what it is.

    A sequential plan: the repeated confidence interval. Otherwise the family-level interval of
    the correction when the comparison has one, else the per-comparison interval, labelled as
    not adjusted when there are several comparisons.
    """
    comparison = outcome.comparison
    assert comparison is not None
    status = _sequential_status(report, estimate.arm)
    if status is not None:
        level = 1 - _interim(report).family_level
        return status.rci_low, status.rci_high, f"repeated {level:.1%} confidence interval"
    low, high, level = _family_interval(estimate)
    if not missing(low) and not missing(high):
        return low, high, _family_label(comparison, level)
    unadjusted = f"{1 - comparison.alpha:.0%} interval"
    m = family_size(comparison)
    if comparison.correction == "none" or m <= 1:
        return estimate.diff_ci_low, estimate.diff_ci_high, unadjusted
    return (
        estimate.diff_ci_low,
        estimate.diff_ci_high,
        f"{unadjusted} not adjusted for the {m} comparisons",
    )


def _decision(report: Report, comparison: Comparison, estimate: Any) -> tuple[bool, str, str]:
    """(significant, decision, the sentence that states it) for one arm."""
    status = _sequential_status(report, estimate.arm)
    if status is not None and _interim(report).final:
        return _final_sequential(status)
    if status is not None:
        test = (
            f"p = {p_value(status.p)} against the boundary p ≤ {p_value(status.p_boundary)} "
            "of this interim look"
        )
        if status.decision == "stop for efficacy":
            return (
                True,
                STOP_FOR_EFFICACY,
                (
                    f"It crosses its pre-registered boundary ({test}): the plan says stop for "
                    "efficacy."
                ),
            )
        return (
            False,
            CONTINUE,
            (f"It does not cross its pre-registered boundary ({test}): the plan says continue."),
        )
    correction = CORRECTION_NAMES.get(comparison.correction, comparison.correction)
    if comparison.correction == "none":
        after = f"(p = {p_value(estimate.p_value)}, no correction for multiple comparisons)"
    else:
        after = f"after the {correction} correction (adjusted p = {p_value(estimate.p_adjusted)})"
    if estimate.significant:
        return True, DIFFERS, f"It differs from the control {after}."
    return False, NOT_SIGNIFICANT, f"No significant difference from the control {after}."


def _final_sequential(status: Any) -> tuple[bool, str, str]:
    """The decision of the last look of a group-sequential plan (the trial has ended)."""
    if status.crossed_at is not None:
        look = status.crossed_at
        verdict = f"It crossed its pre-registered sequential boundary at look {look}"
        return True, DIFFERS, verdict + ": it differs from the control."
    last = f"last look: p = {p_value(status.p)} against p ≤ {p_value(status.p_boundary)}"
    verdict = f"It did not cross its pre-registered sequential boundary at any look ({last})"
    return False, NOT_SIGNIFICANT, verdict + ": no significant difference from the control."


def _not_estimable_finding(estimate: Any, title: str, label: str) -> Finding:
    return Finding(
        arm=estimate.arm,
        title=title,
        n=estimate.n,
        rate=None,
        diff=None,
        interval_low=None,
        interval_high=None,
        interval_label="",
        p_adjusted=None,
        significant=None,
        decision=NOT_ESTIMABLE,
        sentence=f"{label}: no analysed visits to compare, so no estimate.",
    )


def _disagreement(comparison: Comparison, what: str, excludes_zero: bool, significant: bool) -> str:
    """Why the interval shown and the corrected decision may seem to disagree, when they do."""
    if excludes_zero and not significant and "not adjusted" in what:
        return (
            " The unadjusted interval excludes zero, but it does not account for the other "
            "comparisons; the corrected decision is the one that counts."
        )
    if (
        not excludes_zero
        and significant
        and comparison.correction == "holm"
        and "Bonferroni" in what
    ):
        return (
            " Holm's procedure rejects more than Bonferroni's, so its simultaneous interval can "
            "still include zero for an arm Holm finds significant (Strassburger & Bretz 2008)."
        )
    return ""


def _difference(diff: float) -> str:
    """``2.93 percentage points higher than`` the control, in words."""
    if diff == 0:
        return "the same rate as"
    return f"{_pp(diff)} {'higher' if diff > 0 else 'lower'} than"


def _finding(
    report: Report, outcome: OutcomeResult, estimate: Any, titles: dict[str, str]
) -> Finding:
    comparison = outcome.comparison
    assert comparison is not None
    label = arm_label(report, estimate.arm)
    title = titles.get(estimate.arm, estimate.arm)
    if estimate.n == 0 or missing(estimate.diff):
        return _not_estimable_finding(estimate, title, label)
    low, high, what = _interval(report, outcome, estimate)
    significant, decision, verdict = _decision(report, comparison, estimate)
    if missing(low) or missing(high):
        interval = f"{what}: not computable"
    else:
        interval = f"{_signed(low)} to {_signed(high)} points, {what}"
        verdict += _disagreement(comparison, what, low > 0 or high < 0, significant)
    sentence = (
        f"{label}: {_pct(estimate.rate)} of {number(estimate.n)} visits, "
        f"{_difference(estimate.diff)} the control ({interval}). {verdict}"
    )
    return Finding(
        arm=estimate.arm,
        title=title,
        n=estimate.n,
        rate=estimate.rate,
        diff=estimate.diff,
        interval_low=low,
        interval_high=high,
        interval_label=what,
        p_adjusted=estimate.p_adjusted,
        significant=significant,
        decision=decision,
        sentence=sentence,
    )


def _stage(report: Report) -> str:
    """``interim (planned look)``, ``unplanned look``, ``final (sequential plan)`` or ``final``."""
    interim = _interim(report)
    planned = interim is not None and interim.planned
    if planned and not interim.final:
        return "interim (planned look)"
    if planned:
        return "final (sequential plan)"
    if report.transparency.trial_status == "running":
        return "unplanned look"
    return "final"


def _headline(report: Report, outcome: OutcomeResult, findings: list[Finding]) -> str:
    comparison = outcome.comparison
    assert comparison is not None
    total, m = len(findings), family_size(comparison)
    correction = CORRECTION_NAMES.get(comparison.correction, comparison.correction)
    family = (
        "without a correction for multiple comparisons"
        if comparison.correction == "none"
        else f"after the {correction} correction for {m} comparison{'s' * (m != 1)}"
    )
    if _stage(report) == "final (sequential plan)":
        family = f"under the pre-registered sequential plan ({family})"
    what = f"On the primary outcome, {outcome.id},"
    if _stage(report) == "interim (planned look)":
        stop = [f for f in findings if f.decision == STOP_FOR_EFFICACY]
        if not stop:
            return (
                f"{what} no arm crosses its pre-registered boundary at this interim look: the "
                "sequential plan says continue the trial."
            )
        names = ", ".join(arm_label(report, f.arm) for f in stop)
        cross, these = ("crosses its", "this arm") if len(stop) == 1 else ("cross their", "these")
        return (
            f"{what} {len(stop)} of {total} arms {cross} pre-registered boundary at this "
            f"interim look ({names}): the plan says stop for efficacy for {these}."
        )
    differ = [f for f in findings if f.significant]
    if not differ:
        return f"{what} no arm differs significantly from the control {family}."
    names = ", ".join(
        f"{arm_label(report, f.arm)} ({_signed(f.diff or 0.0)} points)" for f in differ
    )
    verb = "differs" if len(differ) == 1 else "differ"
    return f"{what} {len(differ)} of {total} arms {verb} from the control {family}: {names}."


def _caveats(report: Report, outcome: OutcomeResult, findings: list[Finding]) -> list[str]:
    """What the result does not mean, and what to read before using it."""
    caveats = []
    if report.checks.sample_ratio.mismatch:
        caveats.append(
            "The arms' sizes do not match the allocation (sample ratio mismatch): randomization "
            "or logging may be broken, so none of these differences can be trusted until the "
            "cause is found."
        )
    stage = _stage(report)
    analysed, planned = report.flow.total.analysed, report.power.planned_sample_size
    if stage == "interim (planned look)":
        caveats.append(
            f"This is an interim look ({number(analysed)} of {number(planned)} planned visits): "
            f"the boundaries are stricter than {report.options.alpha:g} because the plan looks "
            "more than once, and "
            "the intervals are repeated confidence intervals, valid whenever the trial stops."
        )
    elif stage == "unplanned look":
        caveats.append(
            f"The trial is still running ({number(analysed)} of {number(planned)} planned "
            "visits) and its plan has no interim looks: these numbers will change, and stopping "
            "now because a difference looks significant would make a false positive more "
            "likely than the stated level."
        )
    interim = _interim(report)
    looks = len(interim.looks) if interim is not None else 0
    early = interim is not None and any(
        c.crossed_at is not None and (not interim.final or c.crossed_at < looks)
        for c in interim.comparisons
    )
    if early:
        caveats.append(
            "A difference estimated when a boundary was crossed tends to overstate the true "
            "effect (stopping early favours large estimates)."
        )
    caveats.append(
        "These are differences between groups of visits, not facts about any individual "
        "visitor: they do not say whether, or how, a particular person was influenced."
    )
    caveats.append(
        "They have no effect on anyone's case: kiosk data never go to a body that decides "
        "individual cases."
    )
    caveats.append(
        f"The outcome, {outcome.id}, is an action recorded at the kiosk; a difference in it is "
        "not a difference in what people later decide."
    )
    unclear = [f for f in findings if f.significant is False and not missing(f.interval_low)]
    if unclear:
        spanning = [f for f in unclear if f.interval_low <= 0 <= f.interval_high]  # type: ignore[operator]
        widest = max(spanning or unclear, key=lambda f: f.interval_high - f.interval_low)  # type: ignore[operator]
        caveats.append(
            '"No significant difference" is not "no difference": each interval above shows '
            "the differences the data still allow (for "
            f"{arm_label(report, widest.arm)}, anything from "
            f"{_signed(widest.interval_low)} to {_signed(widest.interval_high)} points)."  # type: ignore[arg-type]
        )
    secondary = [o.id for o in report.outcomes if not o.primary]
    if secondary:
        caveats.append(
            f"Secondary outcomes ({', '.join(secondary)}) are under Results; each is corrected "
            "across its own arms only, so they support but do not replace the primary outcome."
        )
    return caveats


def summarize(report: Report) -> Summary:
    """The plain-language summary of the report's primary outcome."""
    outcome = report.primary
    comparison = outcome.comparison
    titles = arm_titles(report)
    if comparison is None:
        return _not_estimable(report, outcome, titles)
    control = comparison.arm(comparison.control)
    findings = [
        _finding(report, outcome, estimate, titles)
        for estimate in comparison.arms
        if not estimate.is_control
    ]
    return Summary(
        outcome.id,
        outcome.description,
        comparison.control,
        titles.get(comparison.control, comparison.control),
        control.n,
        control.rate,
        comparison.correction,
        family_size(comparison),
        comparison.alpha,
        _stage(report),
        _headline(report, outcome, findings),
        tuple(findings),
        tuple(_caveats(report, outcome, findings)),
    )


def _not_estimable(report: Report, outcome: OutcomeResult, titles: dict[str, str]) -> Summary:
    control = next(arm.id for arm in report.transparency.arms if arm.control)
    totals = {t.arm: t for t in outcome.totals}
    reason = "; ".join(outcome.warnings) or "no analysed visits"
    return Summary(
        outcome=outcome.id,
        description=outcome.description,
        control=control,
        control_title=titles.get(control, control),
        control_n=totals[control].n if control in totals else 0,
        control_rate=None,
        correction=report.options.correction,
        comparisons=max(len(report.arm_ids) - 1, 0),
        alpha=report.options.alpha,
        stage="not estimable",
        headline=f"The primary outcome, {outcome.id}, could not be estimated: {reason}.",
        findings=(),
        caveats=tuple(_caveats(report, outcome, [])),
    )


# -- rendering -------------------------------------------------------------------------------


def summary_blocks(report: Report) -> list[Block]:
    """The summary as blocks: headline, the control, one line per arm, what it does not mean."""
    summary = summarize(report)
    warnings = " Read the warnings below before using these results." * _has_warnings(report)
    blocks: list[Block] = [
        Heading(2, "Summary in plain words", "summary"),
        Paragraph(summary.headline + warnings),
    ]
    if summary.findings:
        blocks.append(
            Paragraph(
                f"{summary.outcome}: {summary.description.rstrip('.')}. In the control arm, "
                f"{arm_label(report, summary.control)}, {_pct(summary.control_rate)} of "
                f"{number(summary.control_n)} analysed visits had this outcome. Each arm "
                "against it:"
            )
        )
        blocks.append(Bullets(tuple(f.sentence for f in summary.findings)))
    blocks += [
        Heading(3, "What this does not mean", "summary-caveats"),
        Bullets(summary.caveats),
    ]
    return blocks


def _has_warnings(report: Report) -> bool:
    groups = [report.warnings, report.checks.warnings, report.power.warnings]
    return any(groups) or any(outcome.warnings for outcome in report.outcomes)


def summary_data(report: Report) -> dict[str, Any]:
    """The summary as JSON-ready data, with every arm's title."""
    data = summarize(report).to_dict()
    data["arm_titles"] = arm_titles(report)
    return data
