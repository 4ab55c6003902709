"""The report object and its renderings: complete by construction, self-contained HTML."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from importlib.metadata import version

import pytest
from sqlalchemy import delete, select

import analysis.report.html as html_writer
import analysis.report.json as json_writer
import analysis.report.sections as sections
from analysis import analyze
from analysis.estimate import ArmCounts, compare_arms
from analysis.report import render_html, render_json, render_markdown, render_summary
from analysis.report.blocks import Paragraph, Table, interval, p_value, points
from analysis.report.figures import flow_figure
from analysis.report.sections import SUPPRESSED, document, flow, subgroup_caption
from analysis.results import ArmTotal, IncompleteReport, Report, SubgroupResult
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
    return render_html(report)


def test_every_arm_and_outcome_is_reported_even_without_data(report: Report, html: str) -> None:
    assert report.arm_ids == ["control", "gain", "norm"]
    assert report.flow.arm("norm").randomized == 0
    assert [o.id for o in report.outcomes] == ["requested_contact", "opened_country_info"]
    for outcome in report.outcomes:
        assert [t.arm for t in outcome.totals] == ["control", "gain", "norm"]
    null = report.outcomes[1]
    assert sum(t.successes for t in null.totals) == 0  # a null result, still reported
    for rendering in (html, render_markdown(report), render_json(report)):
        for arm in report.arm_ids:
            assert arm in rendering
        assert "opened_country_info" in rendering


def test_transparency_is_in_every_rendering(report: Report, html: str) -> None:
    t = report.transparency
    markdown, data = render_markdown(report), json.loads(render_json(report))
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
    assert "| analysis choice | correction | holm | bonferroni |" in render_markdown(report)
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
    monkeypatch.setattr(sections, "transparency_blocks", lambda report: [])
    with pytest.raises(IncompleteReport, match="always written by nudgelab"):
        render_markdown(report)
    with pytest.raises(IncompleteReport):
        render_html(report)
    original = json_writer.report_dict
    monkeypatch.setattr(
        json_writer,
        "report_dict",
        lambda r: {k: v for k, v in original(r).items() if k != "transparency"},
    )
    with pytest.raises(IncompleteReport):
        render_json(report)


def test_a_trial_file_cannot_switch_the_transparency_section_off() -> None:
    source = trial_yaml() + "report:\n  transparency: false\n  arms: [control]\n"
    result = check_text(source, "t.yaml")
    assert not result.ok
    assert any(p.path[:1] == ("report",) for p in result.errors)


def test_json_has_every_number_and_no_nan(report: Report) -> None:
    text = render_json(report)
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text)
    assert data["flow"]["total"]["randomized"] == report.flow.total.randomized
    primary = data["outcomes"][0]
    assert primary["primary"] and primary["id"] == "requested_contact"
    arms = primary["comparison"]["arms"] if primary["comparison"] else primary["totals"]
    assert {a["arm"] for a in arms} == {"control", "gain", "norm"}
    assert data["checks"]["sample_ratio"]["observed"]["norm"] == 0


def test_terminal_summary_is_compact(report: Report) -> None:
    summary = render_summary(report)
    assert summary.splitlines()[0].startswith("test-trial: 600 randomized")
    assert len(summary.splitlines()) < 25


def test_the_report_names_the_installed_nudgelab_version(report: Report) -> None:
    assert report.transparency.software_version == version("nudgelab")


def test_the_report_repr_is_one_line(report: Report) -> None:
    text = repr(report)
    assert text.startswith("<Report test-trial: 600 randomized, outcomes requested_contact, ")
    assert "\n" not in text and len(text) < 200


def test_html_embeds_figures_drawn_before_without_drawing_them_again(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    def draw_again(report: Report) -> dict[str, bytes]:
        raise AssertionError("figures drawn twice")

    monkeypatch.setattr(html_writer, "render_figures", draw_again)
    page = render_html(report, {"flow": b"flow-png", "forest": b"forest-png"})
    for png in (b"flow-png", b"forest-png"):
        assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in page


# -- subgroup tables: what the numbers are, and no small cell given back (S9) -------------------


def _level(level: str, cells: list[tuple[str, int, int]], **options: object) -> SubgroupResult:
    counts = [ArmCounts(arm, n, s) for arm, n, s in cells]
    comparison = compare_arms(counts, "control", **options)  # type: ignore[arg-type]
    totals = tuple(ArmTotal(arm, n, s) for arm, n, s in cells)
    return SubgroupResult("location", level, False, comparison, totals)


@pytest.fixture(scope="module")
def small_cells(report: Report) -> tuple[Report, list[SubgroupResult]]:
    """Three location levels of the primary outcome, by hand (threshold 10, bonferroni)."""
    groups = [
        # all counts >= 10: every row shown; gain has an expected cell < 5 -> the exact test.
        _level("big", [("control", 400, 10), ("gain", 40, 10), ("norm", 300, 30)],
               correction="bonferroni"),
        # gain has 4 successes, norm 5 failures (95 of 100): only those rows are withheld.
        _level("mixed", [("control", 200, 20), ("gain", 150, 4), ("norm", 100, 95)],
               correction="bonferroni"),
        # the control has 7 successes: every comparison of the level is withheld.
        _level("tiny-control", [("control", 120, 7), ("gain", 130, 30), ("norm", 125, 25)],
               correction="bonferroni"),
    ]  # fmt: skip
    primary = dataclasses.replace(report.outcomes[0], subgroups=tuple(groups))
    return dataclasses.replace(report, outcomes=(primary, *report.outcomes[1:])), groups


def arm_id(label: str) -> str:
    """The id of an arm named in a table as ``Title `id```."""
    match = re.search(r"`([^`]+)`", label)
    assert match, label
    return match.group(1)


def _subgroup_table(report: Report) -> Table:
    return next(b for b in document(report) if isinstance(b, Table) and b.columns[0] == "Subgroup")


def test_a_subgroup_row_with_a_small_cell_shows_no_difference_or_p(small_cells) -> None:  # type: ignore[no-untyped-def]
    report, groups = small_cells
    table = _subgroup_table(report)
    assert report.options.small_cell_threshold == 10
    rows = {(row[0], arm_id(row[1])): row for row in table.rows}
    hidden = [
        groups[1].comparison.arm("gain"),
        groups[1].comparison.arm("norm"),
        groups[2].comparison.arm("gain"),
        groups[2].comparison.arm("norm"),
    ]
    assert rows["mixed", "gain"][2:] == ("150", "<10", SUPPRESSED, "–", "–", "–")
    assert rows["mixed", "norm"][2:] == ("100", ">90", SUPPRESSED, "–", "–", "–")
    assert rows["tiny-control", "control"][2:4] == ("120", "<10")
    # the arms' own counts are large, but the control's is not: their effects are withheld too
    assert rows["tiny-control", "gain"][2:] == ("130", "30", SUPPRESSED, "–", "–", "–")
    assert rows["tiny-control", "norm"][4] == SUPPRESSED
    # a level without small cells shows everything, with the test used per row
    shown = groups[0].comparison
    exact_row, z_row = rows["big", "gain"], rows["big", "norm"]
    assert shown.arm("gain").test == "exact-z" and shown.arm("norm").test == "z"
    assert exact_row[4] == (
        f"{points(shown.arm('gain').diff)} "
        f"{interval(shown.arm('gain').diff_ci_low, shown.arm('gain').diff_ci_high)}"
    )
    assert exact_row[5:] == (
        "exact unconditional z",
        p_value(shown.arm("gain").p_value),
        p_value(shown.arm("gain").p_adjusted),
    )
    assert z_row[5] == "z-test"
    # nothing a hidden count could be recomputed from appears in the rendered subgroup table
    markdown, html = render_markdown(report), render_html(report)
    start = markdown.index("#### Subgroups by location")
    section = markdown[start : markdown.index("\n#", start + 1)]
    start = html.index('id="subgroups-requested_contact-location"')
    html_section = html[start : html.index("<h", start + 1)]
    assert points(shown.arm("norm").diff) in section and "suppressed (small cell)" in html_section
    # The rows of the level without small cells are shown in full; a hidden value that happens
    # to print like one of theirs (the p-value 0.0010, say) is no leak, so leave them out.
    section = "\n".join(line for line in section.splitlines() if not line.startswith("| big |"))
    html_section = re.sub(r'<tr><td class="short">big</td>.*?</tr>', "", html_section)
    assert "| big |" not in section and ">big<" not in html_section
    for estimate in hidden:
        for text in (
            points(estimate.diff),
            interval(estimate.diff_ci_low, estimate.diff_ci_high),
            p_value(estimate.p_value),
            p_value(estimate.p_adjusted),
        ):
            assert text not in section and text not in html_section, text


def test_the_json_withholds_the_same_subgroup_effects(small_cells) -> None:  # type: ignore[no-untyped-def]
    report, groups = small_cells
    data = json.loads(render_json(report))
    big, mixed, tiny = data["outcomes"][0]["subgroups"]
    levels = {"big": big, "mixed": mixed, "tiny": tiny}
    arms = {
        level: {a["arm"]: a for a in group["comparison"]["arms"]} for level, group in levels.items()
    }
    effects = ("diff", "diff_ci_low", "diff_ci_high", "relative_risk", "odds_ratio", "test")
    effects += ("p_value", "p_adjusted", "significant")
    for level, arm in (("mixed", "gain"), ("mixed", "norm"), ("tiny", "gain"), ("tiny", "norm")):
        entry = arms[level][arm]
        assert entry["effect_suppressed"] is True
        assert all(entry[key] is None for key in effects), (level, arm)
    # the control of "tiny" and the small arms of "mixed" lose their counts and rates
    assert arms["tiny"]["control"]["successes"] is None and arms["tiny"]["control"]["rate"] is None
    assert arms["mixed"]["gain"]["successes"] is None and arms["mixed"]["norm"]["n"] is None
    assert {t["arm"]: t["successes"] for t in mixed["totals"]} == {
        "control": 20,
        "gain": None,
        "norm": None,
    }
    # large arms against a large control keep every number; a level with a small cell has no
    # omnibus test (its chi-square and expected counts would give the hidden count back)
    gain = groups[0].comparison.arm("gain")
    assert arms["big"]["gain"]["diff"] == pytest.approx(gain.diff)
    assert arms["big"]["gain"]["p_adjusted"] == pytest.approx(gain.p_adjusted)
    assert arms["big"]["gain"]["test"] == "exact-z"
    assert "effect_suppressed" not in arms["big"]["gain"]
    assert big["comparison"]["omnibus_p"] == pytest.approx(groups[0].comparison.omnibus_p)
    for level in (mixed, tiny):
        assert level["comparison"]["omnibus_chi2"] is None
        assert level["comparison"]["omnibus_p"] is None
        assert level["comparison"]["warnings"] == []
        assert level["suppressed_below"] == 10


def test_the_subgroup_caption_says_what_the_numbers_are(small_cells) -> None:  # type: ignore[no-untyped-def]
    report, _ = small_cells
    caption = _subgroup_table(report).caption
    assert "difference" in caption.lower() and "percentage points" in caption
    assert "two-sided 95% Newcombe hybrid score interval" in caption
    assert "z-test" in caption and "its exact unconditional version" in caption
    assert "p: two-sided, from the test named in the row" in caption
    assert (
        '"p adjusted" is Bonferroni-adjusted across the arms compared with the control within '
        "that subgroup level only" in caption
    )
    assert "not across levels, subgroup variables or outcomes" in caption
    assert "not confirmatory evidence" in caption
    assert "shown as <10" in caption and '"suppressed (small cell)"' in caption
    assert "Test" in _subgroup_table(report).columns


def test_the_subgroup_caption_follows_the_options_and_the_label(report: Report) -> None:
    cells = [("control", 300, 30), ("gain", 300, 45), ("norm", 300, 40)]
    group = dataclasses.replace(
        _level("loc-a", cells, correction="holm", alpha=0.1, interval="wald"), confirmatory=True
    )
    caption = subgroup_caption(report, [group])
    assert caption.startswith("Confirmatory (pre-registered) subgroup analysis.")
    assert "two-sided 90% Wald interval" in caption
    assert '"p adjusted" is Holm-adjusted' in caption
    assert "pre-registered as confirmatory" in caption and "not confirmatory" not in caption
    unadjusted = _level("loc-a", cells, correction="none")
    assert '"p adjusted" is not adjusted (correction none)' in subgroup_caption(
        report, [unadjusted]
    )


def test_every_small_cell_of_the_simulated_report_hides_its_effects(report: Report) -> None:
    tables = [b for b in document(report) if isinstance(b, Table) and b.columns[0] == "Subgroup"]
    assert tables
    checked = 0
    for table in tables:
        levels: dict[str, list[tuple[str, ...]]] = {}
        for row in table.rows:
            levels.setdefault(row[0], []).append(row)
        for rows in levels.values():
            control = next((r for r in rows if r[4] == "control"), None)
            if control is None:
                continue  # not estimable: counts only

            def small(row: tuple[str, ...]) -> bool:
                return any(cell.startswith(("<", ">")) for cell in row[2:4])

            for row in rows:
                if row is control:
                    continue
                if small(row) or small(control):
                    assert row[4:] == (SUPPRESSED, "–", "–", "–"), row
                    checked += 1
                elif row[2] == "0":
                    assert row[4:] == ("–", "–", "–", "–"), row  # no visits, no estimate
                else:
                    assert row[4].endswith("]") and row[5] in ("z-test", "exact unconditional z"), (
                        row
                    )
    assert checked  # 900 visits over two locations: some cells are small


# -- participant flow: modified intention to treat (S7) -----------------------------------------


def test_the_flow_says_modified_intention_to_treat(report: Report, html: str) -> None:
    note = next(
        b.text for b in flow(report) if isinstance(b, Paragraph) and "intention to treat" in b.text
    )
    assert note.startswith("Modified intention to treat (opt-outs excluded):")
    assert "whether or not they saw the material" in note
    assert "withdrew consent" in note and "outcome events were deleted" in note
    assert "Modified intention to treat (opt-outs excluded)" in html
    for rendering in (html, render_markdown(report)):
        assert "Intention to treat:" not in rendering


def test_the_flow_figure_labels_the_analysed_visits_modified_itt(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.axes import Axes

    labels: list[str] = []
    original = Axes.text

    def record(self, x, y, text, *args, **kwargs):  # type: ignore[no-untyped-def]
        labels.append(str(text))
        return original(self, x, y, text, *args, **kwargs)

    monkeypatch.setattr(Axes, "text", record)
    flow_figure(report)
    assert "analysed (modified ITT)" in labels
    assert "opted out (consent withdrawn, excluded)" in labels
    assert not any("(intention to treat)" in label for label in labels)
