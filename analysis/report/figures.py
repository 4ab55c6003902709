"""Figures drawn with matplotlib's object API (no pyplot state): flow diagram and forest plot.

Both return PNG bytes; the HTML writer embeds them as base64, the CLI also writes them as files
next to ``report.md``. Draw them once per report with :func:`render_figures` and hand the bytes
to every writer that needs them. matplotlib is imported when a figure is drawn, so importing
:mod:`analysis.report` does not load it.
"""

from __future__ import annotations

import io
import math
import textwrap
from typing import TYPE_CHECKING

from analysis.report.summary import CORRECTION_NAMES, arm_titles, family_size, summarize
from analysis.results import OutcomeResult, Report

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 130
BOX = {"boxstyle": "round,pad=0.02,rounding_size=0.02", "linewidth": 1.0}


def _figure(width: float, height: float) -> Figure:
    """A new figure with its own Agg canvas (no pyplot state)."""
    # matplotlib deferred on purpose: only drawing a figure needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _box(ax, x: float, y: float, w: float, h: float, text: str, color: str) -> None:  # type: ignore[no-untyped-def]
    from matplotlib.patches import FancyBboxPatch  # matplotlib deferred on purpose (see _figure)

    ax.add_patch(FancyBboxPatch((x, y), w, h, facecolor=color, edgecolor="#555", **BOX))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)


def _arrow(ax, x0: float, y0: float, x1: float, y1: float) -> None:  # type: ignore[no-untyped-def]
    ax.annotate(
        "",
        xy=(x1, y1),
        xytext=(x0, y0),
        arrowprops={"arrowstyle": "->", "color": "#555", "lw": 1.0},
    )


#: Width of the figures in inches; the assigned-arm boxes hold the arm's title.
FLOW_WIDTH = 12.4
#: Characters per line and lines of an arm title in a figure (longer titles end in "…").
TITLE_WIDTH, TITLE_LINES = 34, 2
#: An arm id in small print (bottom right of its box in the flow diagram).
ID_STYLE = {"ha": "right", "va": "bottom", "fontsize": 6.5, "color": "#666"}


def wrapped_title(title: str, width: int = TITLE_WIDTH, lines: int = TITLE_LINES) -> str:
    """An arm title over at most ``lines`` lines of ``width`` characters."""
    parts = textwrap.wrap(title, width) or [""]
    if len(parts) > lines:
        parts = [
            *parts[: lines - 1],
            textwrap.shorten(" ".join(parts[lines - 1 :]), width, placeholder="…"),
        ]
    return "\n".join(parts)


def flow_figure(report: Report) -> bytes:
    """CONSORT-style diagram: randomized → (per arm) assigned → exposed → opted out → analysed.

    Each arm is named by its title, with its id in small print under it.
    """
    arms = report.flow.arms
    titles = arm_titles(report)
    pitch, box_h = 0.74, 0.6
    height = 1.2 + pitch * len(arms)
    figure = _figure(FLOW_WIDTH, height)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, FLOW_WIDTH)
    ax.set_ylim(0, height)
    ax.axis("off")
    top = height - 0.75
    ax.text(0.2, height - 0.35, "Stages", fontsize=8, color="#666")
    columns = {"assigned": (2.35, 3.3), "exposed": (6.15, 1.8), "opted": (8.45, 1.8)}
    columns["analysed"] = (10.75, 1.5)
    for (x, w), label in zip(
        columns.values(),
        (
            "assigned",
            "exposed to the material",
            "opted out (consent withdrawn, excluded)",
            "analysed (modified ITT)",
        ),
        strict=True,
    ):
        ax.text(x + w / 2, height - 0.35, label, fontsize=8, color="#666", ha="center")
    total = report.flow.total
    _box(
        ax,
        0.15,
        0.25,
        1.75,
        top - 0.25,
        f"Randomized\n{total.randomized:,}\nvisits"
        + (
            f"\n\n{report.flow.not_randomized:,} without\nassignment"
            if report.flow.not_randomized
            else ""
        ),
        "#e8eef7",
    )
    for i, arm in enumerate(arms):
        y = top - (i + 1) * pitch + 0.08
        mid = y + box_h / 2
        (xa, wa), (xe, we), (xo, wo), (xn, wn) = columns.values()
        _arrow(ax, 1.9, mid, xa, mid)
        _box(ax, xa, y, wa, box_h, "", "#f3f3f3")
        title = wrapped_title(titles.get(arm.arm, arm.arm))
        ax.text(xa + 0.1, mid + 0.05, title, ha="left", va="center", fontsize=8)
        ax.text(xa + wa - 0.08, y + 0.08, f"{arm.arm} · {arm.randomized:,}", **ID_STYLE)
        _arrow(ax, xa + wa, mid, xe, mid)
        exposed = f"{arm.exposed:,} exposed\n{arm.not_exposed:,} not exposed"
        _box(ax, xe, y, we, box_h, exposed, "#f3f3f3")
        _arrow(ax, xe + we, mid, xo, mid)
        _box(ax, xo, y, wo, box_h, f"{arm.opted_out:,} opted out", "#fbeaea")
        _arrow(ax, xo + wo, mid, xn, mid)
        _box(ax, xn, y, wn, box_h, f"{arm.analysed:,} analysed", "#e7f4e8")
    return _png(figure)


#: Colours of the forest plot: the unadjusted estimate and the covariate-adjusted one.
ESTIMATE_COLOUR, ADJUSTED_COLOUR = "#1f4e99", "#7a7a7a"


def significance(report: Report, outcome: OutcomeResult) -> dict[str, bool | None]:
    """Per arm, whether it differs from the control after the correction.

    For the primary outcome this is the summary's decision (at an interim look of a sequential
    plan: whether the arm crossed its boundary); for the others ``p_adjusted < alpha``.
    """
    if outcome.primary:
        return {f.arm: f.significant for f in summarize(report).findings}
    if outcome.comparison is None:
        return {}
    return {e.arm: e.significant for e in outcome.comparison.arms if not e.is_control}


def _legend(figure: Figure, report: Report) -> None:
    """Filled: significant after the correction; hollow: not; grey square: adjusted."""
    from matplotlib.lines import Line2D  # matplotlib deferred on purpose (see _figure)

    correction = CORRECTION_NAMES.get(report.options.correction, report.options.correction)
    after = (
        "without correction"
        if report.options.correction == "none"
        else f"after the {correction} correction"
    )
    marker = {"linestyle": "-", "lw": 1.4, "ms": 6}
    handles = [
        Line2D([], [], marker="o", color=ESTIMATE_COLOUR, **marker),
        Line2D([], [], marker="o", color=ESTIMATE_COLOUR, mfc="white", **marker),
        Line2D([], [], marker="s", color=ADJUSTED_COLOUR, mfc="white", linestyle="-", lw=1, ms=4),
    ]
    labels = [
        f"significant {after}",
        f"not significant {after}",
        "covariate-adjusted (a check, not corrected)",
    ]
    figure.legend(handles, labels, loc="upper center", ncol=3, fontsize=7.5, frameon=False)


def _arm_ticks(ax, report: Report, arms: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Arm titles as y tick labels, each id in small print under its title."""
    titles = arm_titles(report)
    labels = [wrapped_title(titles.get(arm, arm), 30) for arm in arms]
    ax.set_yticks(range(len(arms)), labels, fontsize=8.5)
    for y, (arm, label) in enumerate(zip(arms, labels, strict=True)):
        below = -(label.count("\n") + 1) * 8.5 * 0.6 - 1  # half the label's height, in points
        ax.annotate(
            arm,
            (0, y),
            xycoords=("axes fraction", "data"),
            xytext=(-4, below),
            textcoords="offset points",
            ha="right",
            va="top",
            fontsize=6.5,
            color="#777",
        )


def forest_figure(report: Report) -> bytes:
    """Differences from control (pp) with intervals, one panel per outcome.

    Arms by title (id in small print); a filled marker is a difference that is significant after
    the correction (the primary outcome at an interim look: that crossed its sequential
    boundary), a hollow one is not; grey squares are the covariate-adjusted estimates.
    """
    panels = [o for o in report.outcomes if o.comparison is not None] or list(report.outcomes[:1])
    sizes = [max(len(report.arm_ids) - 1, 1) for _ in panels]
    height = 1.2 + sum(0.55 * s + 1.0 for s in sizes)
    figure = _figure(9.5, height)
    axes = figure.subplots(
        len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": [s + 1.5 for s in sizes]}
    )[:, 0]
    for ax, outcome in zip(axes, panels, strict=True):
        _forest_panel(ax, report, outcome)
    _legend(figure, report)
    figure.subplots_adjust(
        left=0.3, right=0.74, top=1 - 0.75 / height, bottom=0.7 / height, hspace=0.65
    )
    return _png(figure)


def _forest_panel(ax, report: Report, outcome: OutcomeResult) -> None:  # type: ignore[no-untyped-def]
    comparison = outcome.comparison
    title = f"{'Primary' if outcome.primary else 'Secondary'} outcome: {outcome.id}"
    ax.set_title(title, fontsize=10, loc="left")
    ax.axvline(0, color="#888", lw=1)
    if comparison is None:
        ax.text(0.5, 0.5, "not estimable", transform=ax.transAxes, ha="center")
        ax.set_yticks([])
        return
    treated = list(reversed([e for e in comparison.arms if not e.is_control]))
    adjusted = {a.arm: a for a in outcome.adjusted}
    marked = significance(report, outcome)
    for y, e in enumerate(treated):
        if _finite(e.diff, e.diff_ci_low, e.diff_ci_high):
            filled = bool(marked.get(e.arm))
            ax.errorbar(
                e.diff * 100,
                y,
                xerr=[[(e.diff - e.diff_ci_low) * 100], [(e.diff_ci_high - e.diff) * 100]],
                fmt="o",
                color=ESTIMATE_COLOUR,
                mfc=ESTIMATE_COLOUR if filled else "white",
                ms=6,
                capsize=3,
                lw=1.4,
            )
            ax.annotate(
                f"{e.diff * 100:+.2f} [{e.diff_ci_low * 100:.2f}, {e.diff_ci_high * 100:.2f}]"
                f"  p adj. {_p(e.p_adjusted)}",
                (1.01, y),
                xycoords=("axes fraction", "data"),
                va="center",
                fontsize=7.5,
            )
        a = adjusted.get(e.arm)
        if a is not None and _finite(a.effect, a.ci_low, a.ci_high):
            ax.errorbar(
                a.effect * 100,
                y - 0.28,
                xerr=[[(a.effect - a.ci_low) * 100], [(a.ci_high - a.effect) * 100]],
                fmt="s",
                mfc="white",
                color=ADJUSTED_COLOUR,
                ms=4,
                capsize=2,
                lw=1,
            )
    _arm_ticks(ax, report, [e.arm for e in treated])
    ax.set_ylim(-0.7, len(treated) - 0.4)
    control = arm_titles(report).get(comparison.control, comparison.control)
    m = family_size(comparison)
    unadjusted = ", not adjusted for multiple comparisons" * (m > 1)
    ax.set_xlabel(
        f"difference from the control ({control}), percentage points "
        f"({1 - comparison.alpha:.0%} CI{unadjusted})",
        fontsize=8.5,
    )
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#eee")


def _p(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.1e}" if value < 1e-4 else f"{value:.4f}"


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def render_figures(report: Report) -> dict[str, bytes]:
    """Both figures as PNG bytes, keyed ``flow`` and ``forest`` (draw once, reuse the bytes)."""
    return {"flow": flow_figure(report), "forest": forest_figure(report)}
