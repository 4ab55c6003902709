"""Figures drawn with matplotlib's object API (no pyplot state): flow diagram and forest plot.

Both return PNG bytes; the HTML writer embeds them as base64, the CLI also writes them as files
next to ``report.md``. Draw them once per report with :func:`render_figures` and hand the bytes
to every writer that needs them. matplotlib is imported when a figure is drawn, so importing
:mod:`analysis.report` does not load it.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

from analysis.results import Report

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


def flow_figure(report: Report) -> bytes:
    """CONSORT-style diagram: randomized → (per arm) assigned → exposed → opted out → analysed."""
    arms = report.flow.arms
    rows = len(arms)
    height = 1.2 + 0.62 * rows
    figure = _figure(11, height)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, height)
    ax.axis("off")
    top = height - 0.75
    ax.text(0.2, height - 0.35, "Stages", fontsize=8, color="#666")
    for x, label in (
        (2.35, "assigned"),
        (4.65, "exposed to the material"),
        (6.95, "opted out (consent withdrawn, excluded)"),
        (9.2, "analysed (modified ITT)"),
    ):
        ax.text(x + 0.9, height - 0.35, label, fontsize=8, color="#666", ha="center")
    total = report.flow.total
    box_h = 0.46
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
        y = top - (i + 1) * 0.62 + 0.08
        mid = y + box_h / 2
        _arrow(ax, 1.9, mid, 2.35, mid)
        _box(ax, 2.35, y, 1.8, box_h, f"{arm.arm}\n{arm.randomized:,}", "#f3f3f3")
        _arrow(ax, 4.15, mid, 4.65, mid)
        _box(
            ax,
            4.65,
            y,
            1.8,
            box_h,
            f"{arm.exposed:,} exposed\n{arm.not_exposed:,} not exposed",
            "#f3f3f3",
        )
        _arrow(ax, 6.45, mid, 6.95, mid)
        _box(ax, 6.95, y, 1.8, box_h, f"{arm.opted_out:,} opted out", "#fbeaea")
        _arrow(ax, 8.75, mid, 9.2, mid)
        _box(ax, 9.2, y, 1.65, box_h, f"{arm.analysed:,} analysed", "#e7f4e8")
    return _png(figure)


def forest_figure(report: Report) -> bytes:
    """Differences from control (pp) with intervals, one panel per outcome."""
    panels = [o for o in report.outcomes if o.comparison is not None] or list(report.outcomes[:1])
    sizes = [max(len(report.arm_ids) - 1, 1) for _ in panels]
    height = 0.9 + sum(0.42 * s + 1.0 for s in sizes)
    figure = _figure(9, height)
    axes = figure.subplots(
        len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": [s + 1.5 for s in sizes]}
    )[:, 0]
    for ax, outcome in zip(axes, panels, strict=True):
        comparison = outcome.comparison
        title = f"{'Primary' if outcome.primary else 'Secondary'} outcome: {outcome.id}"
        ax.set_title(title, fontsize=10, loc="left")
        ax.axvline(0, color="#888", lw=1)
        if comparison is None:
            ax.text(0.5, 0.5, "not estimable", transform=ax.transAxes, ha="center")
            ax.set_yticks([])
            continue
        treated = [e for e in comparison.arms if not e.is_control]
        adjusted = {a.arm: a for a in outcome.adjusted}
        labels = []
        for y, e in enumerate(reversed(treated)):
            labels.append(e.arm)
            if _finite(e.diff, e.diff_ci_low, e.diff_ci_high):
                ax.errorbar(
                    e.diff * 100,
                    y,
                    xerr=[[(e.diff - e.diff_ci_low) * 100], [(e.diff_ci_high - e.diff) * 100]],
                    fmt="o",
                    color="#1f4e99",
                    ms=5,
                    capsize=3,
                    lw=1.4,
                )
                ax.annotate(
                    f"{e.diff * 100:+.2f} [{e.diff_ci_low * 100:.2f}, {e.diff_ci_high * 100:.2f}]",
                    (1.01, y),
                    xycoords=("axes fraction", "data"),
                    va="center",
                    fontsize=8,
                )
            a = adjusted.get(e.arm)
            if a is not None and _finite(a.effect, a.ci_low, a.ci_high):
                ax.errorbar(
                    a.effect * 100,
                    y - 0.25,
                    xerr=[[(a.effect - a.ci_low) * 100], [(a.ci_high - a.effect) * 100]],
                    fmt="o",
                    mfc="white",
                    color="#7a7a7a",
                    ms=4,
                    capsize=2,
                    lw=1,
                )
        ax.set_yticks(range(len(labels)), labels, fontsize=9)
        ax.set_ylim(-0.7, len(labels) - 0.4)
        ax.set_xlabel(
            f"difference from {comparison.control}, percentage points "
            f"({1 - comparison.alpha:.0%} CI)",
            fontsize=9,
        )
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", color="#eee")
    figure.subplots_adjust(
        left=0.2, right=0.78, top=1 - 0.45 / height, bottom=0.7 / height, hspace=0.9
    )
    return _png(figure)


def _finite(*values: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def render_figures(report: Report) -> dict[str, bytes]:
    """Both figures as PNG bytes, keyed ``flow`` and ``forest`` (draw once, reuse the bytes)."""
    return {"flow": flow_figure(report), "forest": forest_figure(report)}
