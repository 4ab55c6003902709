"""The report object and its renderings: complete by construction, self-contained HTML."""

from __future__ import annotations

import base64
import dataclasses
import json
import re

import pytest
from sqlalchemy import delete, select

from analysis import analyze
from analysis.report.model import IncompleteReport, Report
from analysis.transparency import NO_INDIVIDUAL_DECISIONS
from experiments.check import check_text
from experiments.eventlog import assignments, events, visits
from tests.analysis.sim_helpers import simulated
from tests.factories import trial_yaml

ASSET = re.compile(r"""(?:src|href|action|poster)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Report:  # type: ignore[no-untyped-def]
    """900 visits; no visit of arm norm survives; nobody opens country info; bonferroni."""
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'r.db'}"
    engine, trial = simulated(url, 900)
    with engine.begin() as conn:
        lost = select(assignments.c.visit_id).where(assignments.c.arm == "norm")
        conn.execute(delete(events).where(events.c.visit_id.in_(lost)))
        conn.execute(delete(events).where(events.c.type == "country_info_opened"))
        ids = conn.execute(lost).scalars().all()
        conn.execute(delete(assignments).where(assignments.c.visit_id.in_(ids)))
        conn.execute(delete(visits).where(visits.c.id.in_(ids)))
    result = analyze(trial, engine, correction="bonferroni")
    engine.dispose()
    return result


@pytest.fixture(scope="module")
def html(report: Report) -> str:
    return report.to_html()


def test_every_arm_and_outcome_is_reported_even_without_data(report: Report, html: str) -> None:
    assert report.arm_ids == ["control", "gain", "norm"]
    assert report.flow.arm("norm").randomized == 0
    assert [o.id for o in report.outcomes] == ["requested_contact", "opened_country_info"]
    for outcome in report.outcomes:
        assert [t.arm for t in outcome.totals] == ["control", "gain", "norm"]
    null = report.outcomes[1]
    assert sum(t.successes for t in null.totals) == 0  # a null result, still reported
    for rendering in (html, report.to_markdown(), report.to_json()):
        for arm in report.arm_ids:
            assert arm in rendering
        assert "opened_country_info" in rendering


def test_transparency_is_in_every_rendering(report: Report, html: str) -> None:
    t = report.transparency
    markdown, data = report.to_markdown(), json.loads(report.to_json())
    for text in (html, markdown):
        assert "Transparency" in text
        assert NO_INDIVIDUAL_DECISIONS in text.replace("\n", " ")
        assert t.data_hash in text
        assert f"nudgelab {t.software_version}" in text
        assert t.deletion_date.isoformat() in text
        for arm in t.arms:
            assert f"Arm {arm.id} ({arm.element}, strength {arm.strength})" in text
    assert data["transparency"]["data_hash"] == t.data_hash
    assert data["transparency"]["preregistration"]["correction"] == "holm"
    assert {arm["id"] for arm in data["transparency"]["arms"]} == {"control", "gain", "norm"}
    languages = [d[0] for d in data["transparency"]["disclosures"]]
    assert languages == ["en", "ar"]


def test_deviation_from_the_preregistered_correction_is_listed(report: Report, html: str) -> None:
    deviation = next(d for d in report.transparency.deviations if d.what == "correction")
    assert (deviation.kind, deviation.planned, deviation.actual) == (
        "analysis choice",
        "holm",
        "bonferroni",
    )
    assert "| analysis choice | correction | holm | bonferroni |" in report.to_markdown()
    assert "<td>bonferroni</td>" in html.replace(' class="short"', "")


def test_html_is_self_contained_with_both_figures(html: str) -> None:
    assert not ASSET.search(html)
    assert "<link" not in html and "<script" not in html and "@import" not in html
    assert "url(" not in html
    for key in ("flow", "forest"):
        match = re.search(
            rf'<figure id="figure-{key}"><img src="data:image/png;base64,([^"]+)"', html
        )
        assert match, key
        assert base64.b64decode(match.group(1)).startswith(b"\x89PNG\r\n\x1a\n")


def test_order_of_the_sections(html: str) -> None:
    anchors = [
        "flow",
        "figure-flow",
        "outcome-requested_contact",
        "outcome-opened_country_info",
        "figure-forest",
        "checks",
        "power",
        "transparency",
    ]
    positions = [html.index(f'id="{anchor}"') for anchor in anchors]
    assert positions == sorted(positions)


def test_a_report_cannot_be_built_without_its_parts(report: Report) -> None:
    with pytest.raises(IncompleteReport, match="transparency"):
        dataclasses.replace(report, transparency=None)
    fewer_arms = dataclasses.replace(report.transparency, arms=report.transparency.arms[:2])
    with pytest.raises(IncompleteReport, match="every arm"):
        dataclasses.replace(report, transparency=fewer_arms)
    with pytest.raises(
        IncompleteReport, match="missing from the report: \\['requested_contact'\\]"
    ):
        dataclasses.replace(report, outcomes=report.outcomes[1:])
    with pytest.raises(IncompleteReport, match="primary outcome must come first"):
        dataclasses.replace(report, outcomes=report.outcomes[::-1])
    without_norm = dataclasses.replace(report.outcomes[0], totals=report.outcomes[0].totals[:2])
    with pytest.raises(IncompleteReport, match="every arm"):
        dataclasses.replace(report, outcomes=(without_norm, *report.outcomes[1:]))


def test_writers_refuse_a_rendering_without_transparency(report: Report, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import analysis.report.json as json_writer
    import analysis.report.sections as sections

    monkeypatch.setattr(sections, "transparency_blocks", lambda report: [])
    with pytest.raises(IncompleteReport, match="always written by nudgelab"):
        report.to_markdown()
    with pytest.raises(IncompleteReport):
        report.to_html()
    original = json_writer.report_dict
    monkeypatch.setattr(
        json_writer,
        "report_dict",
        lambda r: {k: v for k, v in original(r).items() if k != "transparency"},
    )
    with pytest.raises(IncompleteReport):
        report.to_json()


def test_a_trial_file_cannot_switch_the_transparency_section_off() -> None:
    source = trial_yaml() + "report:\n  transparency: false\n  arms: [control]\n"
    result = check_text(source, "t.yaml")
    assert not result.ok
    assert any(p.path[:1] == ("report",) for p in result.errors)


def test_json_has_every_number_and_no_nan(report: Report) -> None:
    text = report.to_json()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["flow"]["total"]["randomized"] == report.flow.total.randomized
    primary = data["outcomes"][0]
    assert primary["primary"] and primary["id"] == "requested_contact"
    arms = primary["comparison"]["arms"] if primary["comparison"] else primary["totals"]
    assert {a["arm"] for a in arms} == {"control", "gain", "norm"}
    assert data["checks"]["sample_ratio"]["observed"]["norm"] == 0


def test_terminal_summary_is_compact(report: Report) -> None:
    summary = report.summary()
    assert summary.splitlines()[0].startswith("test-trial: 600 randomized")
    assert len(summary.splitlines()) < 25
