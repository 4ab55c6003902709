"""``nudgelab check``: validate trial files and explain every problem, ethics included."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import TYPE_CHECKING

import click

from nudgelab.cli.sequential_commands import TITLES, design_table, inflation_line

if TYPE_CHECKING:
    from experiments.check import CheckResult
    from experiments.design import ArmDesign
    from experiments.model import Trial


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--max-age-days",
    default=365,
    show_default=True,
    type=click.IntRange(min=1),
    help="Warn when a claim's or figure's as_of date is older than this.",
)
@click.option(
    "--max-mde",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Warn when the minimum detectable effect exceeds this (percentage points).",
)
@click.option(
    "--small-count",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Smallest figure a norm may show (smaller counts can single people out).",
)
@click.option(
    "--max-image-kb",
    default=500,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest image file a trial may show, in kB (1000 bytes).",
)
@click.option(
    "--max-audio-kb",
    default=2000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest narration file, in kB (1000 bytes).",
)
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Check as of this date (YYYY-MM-DD) instead of today, e.g. to reproduce a review.",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@click.option("--quiet", "-q", is_flag=True, help="Print problems only, not the design figures.")
def check(
    paths: tuple[str, ...],
    max_age_days: int,
    max_mde: float,
    small_count: int,
    max_image_kb: int,
    max_audio_kb: int,
    today: datetime | None,
    strict: bool,
    quiet: bool,
) -> None:
    """Check trial files: print `ok <id>` or every problem as `file:line: field: message`.

    Exit code 0 when every file passes, 1 when any has an error (or a warning, with --strict).
    For a passing trial it also prints the minimum detectable effect of each arm against the
    control (two-sided, the plan's power, alpha divided across the comparisons).

    The ethics and privacy rules checked here, and why each exists, are in docs/ethics.md; an
    ethics rule's message ends with the section of that page that explains it.
    """
    from experiments.check import check_path
    from experiments.rules import Settings

    settings = Settings(
        today=today.date() if today else date.today(),
        max_age_days=max_age_days,
        max_mde_points=max_mde,
        small_count=small_count,
        max_image_bytes=max_image_kb * 1000,
        max_audio_bytes=max_audio_kb * 1000,
    )
    failed = False
    for path in paths:
        failed |= _report(check_path(path, settings), strict=strict, quiet=quiet)
    raise SystemExit(1 if failed else 0)


def _report(result: CheckResult, *, strict: bool, quiet: bool) -> bool:
    """Print one file's problems and verdict (and, unless quiet, its design); whether it failed."""
    for problem in result.problems:
        click.echo(str(problem))
    if not result.ok or result.trial is None or (strict and result.warnings):
        click.echo(
            f"FAILED {result.file}: {len(result.errors)} errors, {len(result.warnings)} warnings"
        )
        return True
    suffix = f" ({len(result.warnings)} warnings)" if result.warnings else ""
    click.echo(f"ok {result.trial.id}{suffix}")
    if not quiet:
        for design in result.design:
            click.echo(_design_line(result.trial, design, len(result.design)))
        if result.trial.analysis.interim is not None and result.design:
            for line in _interim_lines(result.trial, len(result.design)):
                click.echo(line)
    return False


def _interim_lines(trial: Trial, comparisons: int) -> list[str]:
    """The interim plan: boundaries of one comparison at the first Holm step, and their cost.

    The boundaries are those of level ``alpha / k`` (the level the mde lines use); the
    maximum sample size inflation is at the plan's power, and the mde of the sequential design
    at the planned size is the fixed design's mde at ``planned_sample_size / inflation``.
    """
    from analysis.sequential import boundaries
    from experiments.design import comparison_alpha, planned_design

    plan = trial.analysis
    assert plan.interim is not None
    level = comparison_alpha(plan.alpha, comparisons)
    fractions = plan.interim_fractions
    power = plan.power if plan.power > level else None
    design = boundaries(fractions, level, plan.interim.spending, power=power)
    share = f" = {plan.alpha:g}/{comparisons}" if comparisons > 1 else ""
    lines = [
        f"  interim looks: {len(fractions)}, {TITLES[plan.interim.spending]}-type alpha "
        f"spending (Lan-DeMets), two-sided (alpha/2 per side); boundaries of one comparison at "
        f"alpha {level:.4g}{share}:",
        *design_table(design, indent="    ", visits=plan.planned_sample_size),
        inflation_line(design, indent="  "),
    ]
    if design.inflation_factor is not None:
        needed = plan.planned_sample_size * design.inflation_factor
        lines.append(
            f"  for the power printed above plan {math.ceil(needed):,} visits instead of "
            f"{plan.planned_sample_size:,}; at {plan.planned_sample_size:,} visits the mde "
            "with these looks is "
            + ", ".join(
                f"{d.arm} {_points(d.mde)}"
                for d in planned_design(trial, plan.planned_sample_size / design.inflation_factor)
            )
        )
    lines.append(_combination(plan.correction, comparisons))
    return lines


def _points(mde: float) -> str:
    return "not reachable" if math.isnan(mde) else f"{mde * 100:.2f} pp"


def _combination(correction: str, comparisons: int) -> str:
    """How the looks and the correction combine (the report's group-sequential procedure)."""
    if comparisons <= 1:
        return "  one comparison: no correction across comparisons"
    if correction == "bonferroni":
        return f"  Bonferroni: every comparison keeps alpha/{comparisons} at every look"
    others = "the other" if comparisons == 2 else f"the {comparisons - 1} others"
    bh = "; BH is replaced by Holm for the sequential decisions" if correction == "bh" else ""
    return (
        "  combined with the correction by the group-sequential Holm procedure (Maurer & Bretz "
        f"2013): a comparison that crosses passes its alpha to {others}, whose boundaries are "
        f"recomputed at the higher level{bh}"
    )


def _design_line(trial: Trial, design: ArmDesign, comparisons: int) -> str:
    """The minimum detectable effect of one arm against the control, with what it rests on."""
    plan = trial.analysis
    mde = "not reachable" if math.isnan(design.mde) else f"{design.mde * 100:.2f} pp"
    line = (
        f"  mde {design.arm} vs {trial.control_arm.id}: {mde} "
        f"(n {design.n_control:.0f} vs {design.n_arm:.0f}, baseline "
        f"{plan.baseline_rate:.1%}, alpha {design.alpha:.4g} = {plan.alpha:g}/"
        f"{comparisons} for {plan.correction}, two-sided, power {plan.power:.0%})"
    )
    if design.power_for_expected is not None:
        line += f"; power for +{plan.expected_effect * 100:g} pp: "  # type: ignore[operator]
        line += f"{design.power_for_expected:.0%}"
    return line


COMMANDS: list[click.Command] = [check]
