"""JSON writer: every number of the report, proportions as proportions (0.031, not 3.1).

Counts in tables by location, language or time that lie between 1 and the small-cell threshold
are replaced by ``null`` (with ``"suppressed": true``), as in the other renderings. In subgroup
comparisons the difference, ratios and p-values that involve such a count are withheld as well
(``"effect_suppressed": true``), since they would give the count back: the JSON is published
like the HTML, so it follows the same rule (see ``docs/report.md``, "Small cells").
"""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import datetime
from typing import Any

from analysis.report.summary import summary_data
from analysis.report.transparency_section import check_rendering
from analysis.results import Report, SubgroupResult, is_small

FORMAT = "nudgelab-report/1"
_RATE_KEYS = ("n", "successes", "rate", "rate_ci_low", "rate_ci_high")
#: Everything computed from an arm's and the control's counts: withheld with a small cell.
_EFFECT_KEYS = (
    "diff",
    "diff_ci_low",
    "diff_ci_high",
    "relative_risk",
    "relative_risk_ci_low",
    "relative_risk_ci_high",
    "odds_ratio",
    "odds_ratio_ci_low",
    "odds_ratio_ci_high",
    "test",
    "p_value",
    "p_adjusted",
    "significant",
    "diff_simultaneous_ci_low",
    "diff_simultaneous_ci_high",
    "diff_ci_unadjusted",
    "diff_ci_simultaneous",
)
_OMNIBUS_KEYS = ("omnibus_chi2", "omnibus_df", "omnibus_p")


def plain(value: Any) -> Any:
    """Dataclasses, tuples, datetimes and floats → JSON-ready values (non-finite → ``None``)."""
    if hasattr(value, "to_dict") and not isinstance(value, type):
        return plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return plain(value.item())
    return value


def _subgroup(group: SubgroupResult, threshold: int) -> dict[str, Any]:
    """One subgroup level; small cells and every number they could be recomputed from withheld.

    An arm with a small cell (n, successes or failures from 1 to ``threshold - 1``) loses its
    counts and rate. Its comparison with the control, and every comparison when the control has
    a small cell, loses the difference, ratios, test and p-values (``"effect_suppressed":
    true``): with the other counts published they would give the hidden count back. For the
    same reason a level with any small cell loses its omnibus test and the comparison's
    warnings (the smallest expected count names the level's total of successes).
    """
    data = plain(group)
    data["label"] = group.label
    small = group.small_arms(threshold)
    withheld = group.suppressed_arms(threshold)
    for total in data.get("totals", []):
        if total["arm"] in small:
            total.update(n=None, successes=None, suppressed=True)
    comparison = data.get("comparison") or {}
    for arm in comparison.get("arms", []):
        if arm["arm"] in small:
            arm.update({key: None for key in _RATE_KEYS}, suppressed=True)
        if arm["arm"] in withheld:
            arm.update({key: None for key in _EFFECT_KEYS}, effect_suppressed=True)
    if comparison and small:
        comparison.update({key: None for key in _OMNIBUS_KEYS}, warnings=[])
        comparison["omnibus_suppressed"] = True
    if small:
        data["suppressed_below"] = threshold
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
        "summary": summary_data(report),
        "options": plain(report.options),
        "flow": plain(report.flow),
        "outcomes": outcomes,
        "checks": checks,
        "power": plain(report.power),
        "transparency": plain(report.transparency),
        "interim": plain(report.interim),
        "warnings": list(report.warnings),
    }


def render_json(report: Report) -> str:
    """The report as indented JSON (checked for completeness)."""
    text = json.dumps(report_dict(report), indent=2, ensure_ascii=False, allow_nan=False)
    check_rendering(text, report, "JSON")
    return text + "\n"
