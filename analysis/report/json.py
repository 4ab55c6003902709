"""JSON writer: every number of the report, proportions as proportions (0.031, not 3.1).

Counts in tables by location, language or time that lie between 1 and the small-cell threshold
are replaced by ``null`` (with ``"suppressed": true``), as in the other renderings.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from analysis.report.blocks import is_small
from analysis.report.model import plain
from analysis.report.transparency_section import check_rendering

if TYPE_CHECKING:
    from analysis.report.model import Report, SubgroupResult

FORMAT = "nudgelab-report/1"
_RATE_KEYS = ("n", "successes", "rate", "rate_ci_low", "rate_ci_high")


def _subgroup(group: SubgroupResult, threshold: int) -> dict[str, Any]:
    data = plain(group)
    data["label"] = group.label
    for total in data.get("totals", []):
        if any(is_small(total[key], threshold) for key in ("n", "successes")):
            total.update(n=None, successes=None, suppressed=True)
    comparison = data.get("comparison") or {}
    for arm in comparison.get("arms", []):
        n, successes = arm.get("n"), arm.get("successes")
        failures = None if n is None or successes is None else n - successes
        if any(is_small(v, threshold) for v in (n, successes, failures)):
            arm.update({key: None for key in _RATE_KEYS}, suppressed=True)
    return data


def report_dict(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data, small stratified counts suppressed."""
    k = report.options.small_cell_threshold
    checks = plain(report.checks)
    for table in checks["balance"]:
        table["counts"] = [[None if is_small(v, k) else v for v in row] for row in table["counts"]]
        table["suppressed_below"] = k
    outcomes = []
    for outcome in report.outcomes:
        data = plain(outcome)
        data["subgroups"] = [_subgroup(group, k) for group in outcome.subgroups]
        outcomes.append(data)
    return {
        "format": FORMAT,
        "trial_id": report.trial_id,
        "title": report.title,
        "generated_at": report.generated_at.isoformat(),
        "options": plain(report.options),
        "flow": plain(report.flow),
        "outcomes": outcomes,
        "checks": checks,
        "power": plain(report.power),
        "transparency": plain(report.transparency),
        "warnings": list(report.warnings),
    }


def render_json(report: Report) -> str:
    """The report as indented JSON (checked for completeness)."""
    text = json.dumps(report_dict(report), indent=2, ensure_ascii=False, allow_nan=False)
    check_rendering(text, report, "JSON")
    return text + "\n"
