"""The report's first screen: the plain-language summary, arms by title, marks in the forest plot.

The numbers are the comparison's own; what is tested here is that the words say what the values
are, and that the decision stated is the corrected one, computed independently with statsmodels.
"""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportions_ztest

from analysis import analyze
from analysis.estimate import ArmCounts, compare_arms
from analysis.report import render_html, render_json, render_markdown, render_summary
from analysis.report.blocks import Table
from analysis.report.figures import forest_figure, wrapped_title
from analysis.report.sections import document
from analysis.report.summary import (
    CONTINUE,
    DIFFERS,
    NOT_SIGNIFICANT,
    STOP_FOR_EFFICACY,
    arm_label,
    arm_titles,
    summarize,
)
from analysis.results import Report
from tests.analysis.sim_helpers import simulated

#: control, gain and norm: 1,000 analysed visits each; gain +4 pp, norm +1 pp.
CELLS = [("control", 1000, 50), ("gain", 1000, 90), ("norm", 1000, 60)]


@pytest.fixture(scope="module")
def simulated_report(tmp_path_factory) -> Report:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path_factory.mktemp('summary') / 's.db'}"
    engine, trial = simulated(url, 600)
    report = analyze(trial, engine, record_look=False)
    engine.dispose()
    return report


@pytest.fixture(scope="module")
def report(simulated_report: Report) -> Report:
    """The simulated report with a primary comparison by hand (Holm, alpha 0.05)."""
    comparison = compare_arms([ArmCounts(*cell) for cell in CELLS], "control", correction="holm")
    primary = dataclasses.replace(simulated_report.primary, comparison=comparison, adjusted=())
    return dataclasses.replace(simulated_report, outcomes=(primary, *simulated_report.outcomes[1:]))


def _holm_decisions() -> dict[str, bool]:
    """Holm at 0.05 over the pooled z-tests, by statsmodels (independent of analysis.*)."""
    control = CELLS[0]
    p = [proportions_ztest([s, control[2]], [n, control[1]])[1] for _, n, s in CELLS[1:]]
    reject = multipletests(p, alpha=0.05, method="holm")[0]
    return {arm: bool(r) for (arm, _, _), r in zip(CELLS[1:], reject, strict=True)}


def test_arms_are_named_by_title_with_the_id(report: Report) -> None:
    assert arm_titles(report) == {
        "control": "Return support en",
        "gain": "A new start en",
        "norm": "Others here en",
    }
    assert arm_label(report, "gain") == "A new start en `gain`"


def test_the_summary_states_the_corrected_decision_and_the_interval(report: Report) -> None:
    summary = summarize(report)
    expected = _holm_decisions()
    assert expected == {"gain": True, "norm": False}  # the case the summary must tell apart
    found = {f.arm: f for f in summary.findings}
    assert {arm: f.significant for arm, f in found.items()} == expected
    assert (found["gain"].decision, found["norm"].decision) == (DIFFERS, NOT_SIGNIFICANT)
    gain = report.primary.comparison.arm("gain")  # type: ignore[union-attr]
    assert (found["gain"].diff, found["gain"].p_adjusted) == (gain.diff, gain.p_adjusted)
    sentence = found["gain"].sentence
    assert sentence.startswith("A new start en `gain`: 9.00% of 1,000 visits, 4.00 percentage")
    assert "points higher than the control" in sentence
    low, high = found["gain"].interval_low, found["gain"].interval_high
    assert f"{low * 100:+.2f} to {high * 100:+.2f} points" in sentence  # type: ignore[operator]
    assert "It differs from the control after the Holm correction (adjusted p = " in sentence
    assert "No significant difference from the control after the Holm correction" in (
        found["norm"].sentence
    )
    assert summary.headline == (
        "On the primary outcome, requested_contact, 1 of 2 arms differs from the control after "
        "the Holm correction for 2 comparisons: A new start en `gain` (+4.00 points)."
    )
    assert (summary.control, summary.control_n, summary.control_rate) == ("control", 1000, 0.05)


def test_the_summary_says_what_the_result_does_not_mean(report: Report) -> None:
    caveats = " ".join(summarize(report).caveats)
    assert "not facts about any individual visitor" in caveats
    assert "no effect on anyone's case" in caveats
    norm = next(f for f in summarize(report).findings if f.arm == "norm")
    assert '"No significant difference" is not "no difference"' in caveats
    assert (
        f"Others here en `norm`, anything from {norm.interval_low * 100:+.2f} to "  # type: ignore[operator]
        f"{norm.interval_high * 100:+.2f} points"  # type: ignore[operator]
    ).replace("-", "−") in caveats
    assert "Secondary outcomes (opened_country_info)" in caveats


def test_no_significant_arm_says_so_and_an_unadjusted_interval_is_named(report: Report) -> None:
    """p = 0.039 and 0.91: unadjusted, gain's interval excludes 0, but no correction rejects."""
    cells = [("control", 800, 40), ("gain", 800, 60), ("norm", 800, 41)]
    comparison = compare_arms([ArmCounts(*c) for c in cells], "control", correction="holm")
    assert comparison.arm("gain").diff_ci_low > 0 and not comparison.arm("gain").significant
    primary = dataclasses.replace(report.primary, comparison=comparison)
    summary = summarize(dataclasses.replace(report, outcomes=(primary, *report.outcomes[1:])))
    assert "no arm differs significantly from the control after the Holm correction" in (
        summary.headline
    )
    holm = next(f for f in summary.findings if f.arm == "gain")
    assert holm.interval_low < 0 < holm.interval_high  # type: ignore[operator]  # agrees
    bh = _summary_of(report, cells, "bh")["gain"]  # BH selects nothing: no family interval
    assert not bh.significant and bh.interval_label == (
        "95% interval not adjusted for the 2 comparisons"
    )
    assert bh.interval_low > 0  # type: ignore[operator]
    assert "the corrected decision is the one that counts" in bh.sentence


def test_a_sample_ratio_mismatch_comes_first(report: Report) -> None:
    srm = dataclasses.replace(report.checks.sample_ratio, mismatch=True)
    checks = dataclasses.replace(report.checks, sample_ratio=srm)
    caveats = summarize(dataclasses.replace(report, checks=checks)).caveats
    assert caveats[0].startswith("The arms' sizes do not match the allocation")


def test_an_unestimable_primary_outcome_is_said_plainly(report: Report) -> None:
    primary = dataclasses.replace(report.primary, comparison=None, warnings=("no visits",))
    summary = summarize(dataclasses.replace(report, outcomes=(primary, *report.outcomes[1:])))
    assert (
        summary.headline
        == "The primary outcome, requested_contact, could not be estimated: no visits."
    )
    assert summary.findings == ()


def test_the_summary_is_the_first_section_of_every_rendering(report: Report) -> None:
    markdown = render_markdown(report)
    assert markdown.index("## Summary in plain words") < markdown.index("## Participant flow")
    assert "### What this does not mean" in markdown
    page = render_html(report, {"flow": b"f", "forest": b"f"})
    assert page.index('id="summary"') < page.index('id="flow"')
    assert '<a href="#summary">Summary</a>' in page
    assert "A new start en <code>gain</code>" in page
    data = json.loads(render_json(report))
    summary = data["summary"]
    assert list(data)[:5] == ["format", "trial_id", "title", "generated_at", "summary"]
    assert summary["headline"] == summarize(report).headline
    assert summary["arm_titles"]["gain"] == "A new start en"
    gain = next(f for f in summary["findings"] if f["arm"] == "gain")
    assert gain["significant"] is True and gain["title"] == "A new start en"
    assert gain["interval_label"] and gain["decision"] == DIFFERS
    assert (
        render_summary(report)
        .splitlines()[1]
        .startswith("summary: On the primary outcome, requested_contact, 1 of 2 arms differs")
    )
    assert "A new start en [gain]" in render_summary(report)


def test_tables_name_arms_by_title_with_the_id(report: Report) -> None:
    tables = [b for b in document(report) if isinstance(b, Table)]
    flow = next(t for t in tables if t.columns[0] == "Arm" and "Exposed" in t.columns)
    assert [row[0] for row in flow.rows[:3]] == [
        "Return support en `control`",
        "A new start en `gain`",
        "Others here en `norm`",
    ]
    results = next(t for t in tables if t.caption.startswith("requested_contact: each arm"))
    assert results.rows[0][0] == "Return support en `control` (control)"
    assert results.rows[1][0] == "A new start en `gain`"


def test_the_forest_plot_marks_significance_after_correction(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    drawn: list[tuple[float, str]] = []
    ticks: list[str] = []
    legends: list[str] = []
    errorbar, set_yticks, legend = Axes.errorbar, Axes.set_yticks, Figure.legend

    def record_errorbar(self, x, y, *args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("fmt") == "o":
            drawn.append((round(float(x), 6), kwargs.get("mfc")))
        return errorbar(self, x, y, *args, **kwargs)

    def record_ticks(self, positions, labels=None, **kwargs):  # type: ignore[no-untyped-def]
        ticks.extend(labels or [])
        return set_yticks(self, positions, labels, **kwargs)

    def record_legend(self, handles, labels, **kwargs):  # type: ignore[no-untyped-def]
        legends.extend(labels)
        return legend(self, handles, labels, **kwargs)

    monkeypatch.setattr(Axes, "errorbar", record_errorbar)
    monkeypatch.setattr(Axes, "set_yticks", record_ticks)
    monkeypatch.setattr(Figure, "legend", record_legend)
    assert forest_figure(report).startswith(b"\x89PNG")
    comparison = report.primary.comparison
    marks = dict(drawn)
    for arm, significant in _holm_decisions().items():
        diff = round(comparison.arm(arm).diff * 100, 6)  # type: ignore[union-attr]
        assert marks[diff] == ("#1f4e99" if significant else "white"), arm
    assert "A new start en" in ticks and "Others here en" in ticks
    assert legends[:2] == [
        "significant after the Holm correction",
        "not significant after the Holm correction",
    ]


def test_long_titles_wrap_in_figures() -> None:
    title = "What returning with support can offer you and your family, in the long run"
    wrapped = wrapped_title(title)
    lines = wrapped.split("\n")
    assert len(lines) == 2 and all(len(line) <= 34 for line in lines)
    assert lines[-1].endswith("…")
    assert wrapped_title("Short") == "Short"


# -- a planned interim look: the plan's decision, not the fixed-design one ------------------------


@dataclasses.dataclass(frozen=True)
class _Status:
    arm: str
    decision: str
    p: float
    p_boundary: float
    rci_low: float
    rci_high: float
    crossed_at: int | None


@dataclasses.dataclass(frozen=True)
class _Interim:
    planned: bool
    final: bool
    family_level: float
    comparisons: tuple[_Status, ...]
    looks: tuple[int, ...] = (1, 2)


def _with_interim(report: Report, interim: _Interim) -> Report:
    looked = dataclasses.replace(report)
    object.__setattr__(looked, "interim", interim)
    return looked


def test_at_a_planned_interim_look_the_summary_gives_the_plans_decision(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary reads the sequential values (duck-typed as analysis.interim makes them)."""
    interim = _Interim(
        planned=True,
        final=False,
        family_level=0.025,
        comparisons=(
            _Status("gain", "stop for efficacy", 0.0004, 0.0008, 0.01, 0.07, 2),
            _Status("norm", "continue", 0.3, 0.0008, -0.02, 0.04, None),
        ),
    )
    summary = summarize(_with_interim(report, interim))
    found = {f.arm: f for f in summary.findings}
    assert (found["gain"].decision, found["norm"].decision) == (STOP_FOR_EFFICACY, CONTINUE)
    assert found["gain"].interval_label == "repeated 97.5% confidence interval"
    assert (found["gain"].interval_low, found["gain"].interval_high) == (0.01, 0.07)
    assert "the plan says stop for efficacy" in found["gain"].sentence
    assert "the plan says continue" in found["norm"].sentence
    assert summary.stage == "interim (planned look)"
    assert "1 of 2 arms crosses its pre-registered boundary" in summary.headline
    assert any("overstate the true effect" in c for c in summary.caveats)
    assert re.search(
        r"This is an interim look \([\d,]+ of [\d,]+ planned visits\)", " ".join(summary.caveats)
    )


def test_after_a_sequential_trial_ends_the_summary_gives_the_plans_final_decision(
    report: Report,
) -> None:
    stopped_early = _Status("gain", "stop for efficacy", 0.0004, 0.0008, 0.01, 0.07, 1)
    not_crossed = _Status("norm", "stop: not significant", 0.3, 0.05, -0.02, 0.04, None)
    interim = _Interim(True, True, 0.025, (stopped_early, not_crossed), looks=(1, 2, 3))
    summary = summarize(_with_interim(report, interim))
    found = {f.arm: f for f in summary.findings}
    assert summary.stage == "final (sequential plan)"
    assert (found["gain"].decision, found["norm"].decision) == (DIFFERS, NOT_SIGNIFICANT)
    assert "crossed its pre-registered sequential boundary at look 1" in found["gain"].sentence
    assert "did not cross its pre-registered sequential boundary at any look" in (
        found["norm"].sentence
    )
    assert "under the pre-registered sequential plan" in summary.headline
    assert any("overstate the true effect" in c for c in summary.caveats)  # stopped at look 1
    at_the_end = dataclasses.replace(stopped_early, crossed_at=3)
    interim = dataclasses.replace(interim, comparisons=(at_the_end, not_crossed))
    caveats = summarize(_with_interim(report, interim)).caveats
    assert not any("overstate the true effect" in c for c in caveats)  # crossed at the last look


def test_an_interim_report_of_a_simulated_trial_gives_the_sequential_decision(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Through the real pipeline: a running trial with a pre-registered plan of four looks."""
    from tests.factories import make_trial, trial_dict, trial_yaml

    plan = {**trial_dict()["analysis"], "interim": {"fractions": [0.25, 0.5, 0.75, 1.0]}}
    trial = make_trial(analysis=plan)
    engine, _ = simulated(
        f"sqlite:///{tmp_path / 'i.db'}",
        2000,
        trial=trial,
        source=trial_yaml(analysis=plan),
        rates="control=0.05,gain=0.16,norm=0.05",
    )
    report = analyze(trial, engine, record_look=False)
    engine.dispose()
    interim = report.interim
    assert interim is not None and interim.planned and not interim.final
    statuses = {c.arm: c for c in interim.comparisons}
    summary = summarize(report)
    found = {f.arm: f for f in summary.findings}
    assert summary.stage == "interim (planned look)"
    for arm, status in statuses.items():
        crossed = status.decision == "stop for efficacy"
        assert found[arm].decision == (STOP_FOR_EFFICACY if crossed else CONTINUE)
        assert (found[arm].interval_low, found[arm].interval_high) == (
            status.rci_low,
            status.rci_high,
        )
    assert found["gain"].decision == STOP_FOR_EFFICACY  # +11 pp on ~650 visits per arm
    assert "crosses its pre-registered boundary at this interim look" in summary.headline
    assert "the plan says stop for efficacy" in render_markdown(report)


# -- the interval given with the decision: the correction's family-level one ---------------------


def _summary_of(report: Report, cells: list[tuple[str, int, int]], correction: str) -> dict:  # type: ignore[type-arg]
    comparison = compare_arms([ArmCounts(*c) for c in cells], "control", correction=correction)
    primary = dataclasses.replace(report.primary, comparison=comparison)
    summary = summarize(dataclasses.replace(report, outcomes=(primary, *report.outcomes[1:])))
    return {f.arm: f for f in summary.findings}


def test_with_holm_the_summary_gives_the_bonferroni_simultaneous_interval(report: Report) -> None:
    """The interval is Newcombe's at 1 − alpha/m (statsmodels' newcomb at alpha 0.025)."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    found = _summary_of(report, CELLS, "holm")
    for arm, n, successes in CELLS[1:]:
        low, high = confint_proportions_2indep(
            successes, n, CELLS[0][2], CELLS[0][1], method="newcomb", alpha=0.05 / 2
        )
        assert found[arm].interval_low == pytest.approx(low, abs=1e-12)
        assert found[arm].interval_high == pytest.approx(high, abs=1e-12)
        assert found[arm].interval_label == (
            "simultaneous 97.50% interval, Bonferroni-adjusted for 2 comparisons"
        )
        assert "97.50% interval, Bonferroni-adjusted for 2 comparisons)" in found[arm].sentence


def test_a_holm_rejection_with_a_bonferroni_interval_touching_zero_is_explained(
    report: Report,
) -> None:
    cells = [("control", 1000, 50), ("gain", 1000, 100), ("norm", 1000, 72)]
    norm = _summary_of(report, cells, "holm")["norm"]
    assert norm.significant and norm.interval_low < 0 < norm.interval_high  # type: ignore[operator]
    assert "Holm's procedure rejects more than Bonferroni's" in norm.sentence
    gain = _summary_of(report, cells, "holm")["gain"]
    assert "Holm's procedure" not in gain.sentence  # its interval excludes zero


def test_with_bh_the_selected_arms_get_the_fcr_adjusted_interval(report: Report) -> None:
    cells = [("control", 1000, 50), ("gain", 1000, 100), ("norm", 1000, 60)]
    found = _summary_of(report, cells, "bh")
    comparison = compare_arms([ArmCounts(*c) for c in cells], "control", correction="bh")
    gain = comparison.arm("gain")
    assert found["gain"].interval_label == (
        "FCR-adjusted 97.50% interval of Benjamini–Yekutieli for the selected arms"
    )  # one of two selected: level 1 − 1 × 0.05 / 2
    assert (found["gain"].interval_low, found["gain"].interval_high) == (
        gain.diff_simultaneous_ci_low,
        gain.diff_simultaneous_ci_high,
    )
    norm = comparison.arm("norm")
    assert found["norm"].interval_label == "95% interval not adjusted for the 2 comparisons"
    assert (found["norm"].interval_low, found["norm"].interval_high) == (
        norm.diff_ci_low,
        norm.diff_ci_high,
    )
