"""``nudgelab sequential``: the boundaries of a two-sided group-sequential design.

The numbers come from :func:`analysis.sequential.boundaries` (exact recursive integration of
the joint normal distribution of the looks' z-statistics, Lan-DeMets alpha spending at alpha/2
per side); this module parses the options and prints. :func:`design_table` is shared with
``nudgelab check``, which prints the same table for a trial file's ``analysis.interim``.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from analysis.sequential import SequentialDesign

#: ``--spending`` values and the spending function each names.
SPENDING_NAMES = {"obf": "obrien-fleming", "obrien-fleming": "obrien-fleming", "pocock": "pocock"}
TITLES = {"obrien-fleming": "O'Brien-Fleming", "pocock": "Pocock"}
CONVENTION = (
    "two-sided and symmetric: alpha/2 is spent on each side, with the spending function "
    "evaluated at alpha/2 (the convention of gsDesign and rpact)"
)


def parse_looks(text: str) -> tuple[float, ...]:
    """``"0.2,0.4,1"`` → the fractions; a whole number ``K`` → ``K`` equally spaced looks."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if len(parts) == 1 and parts[0].isdigit():
        count = int(parts[0])
        if not 1 <= count <= 100:
            raise ValueError(f"give between 1 and 100 equally spaced looks, not {count}")
        return tuple((k + 1) / count for k in range(count))
    try:
        return tuple(float(part) for part in parts)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a list of information fractions such as 0.2,0.4,0.6,0.8,1 "
            "(or a number of equally spaced looks such as 5)"
        ) from None


def _looks_option(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[float, ...]:
    try:
        return parse_looks(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _number(value: float, digits: int = 4) -> str:
    return "never (inf)" if math.isinf(value) else f"{value:.{digits}f}"


def _p(value: float) -> str:
    return f"{value:.3g}" if value < 1e-3 else f"{value:.5f}"


def design_table(
    design: SequentialDesign, *, indent: str = "", visits: int | None = None
) -> list[str]:
    """One line per look: fraction (and visits of ``visits``), |z| and p boundary, alpha spent."""
    extra = f"{'visits':>9}" if visits is not None else ""
    lines = [
        f"{indent}{'look':>4}  {'fraction':>8}{extra}  {'|z| boundary':>12}  "
        f"{'nominal p':>10}  {'alpha spent':>11}  {'cumulative':>10}"
    ]
    for look in design.looks:
        shown = f"{round(look.fraction * visits):>9,}" if visits is not None else ""
        lines.append(
            f"{indent}{look.look:>4}  {look.fraction:>8.4f}{shown}  "
            f"{_number(look.z_boundary):>12}  {_p(look.p_boundary):>10}  "
            f"{look.alpha_spent:>11.6f}  {look.alpha_cumulative:>10.6f}"
        )
    return lines


def design_dict(design: SequentialDesign) -> dict[str, Any]:
    """The design as JSON-ready data (an infinite boundary becomes ``null``)."""

    def finite(value: float) -> float | None:
        return value if math.isfinite(value) else None

    return {
        "alpha": design.alpha,
        "sides": 2,
        "spending": design.spending,
        "convention": CONVENTION,
        "power": design.power,
        "inflation_factor": design.inflation_factor,
        "looks": [
            {
                "look": look.look,
                "fraction": look.fraction,
                "z_boundary": finite(look.z_boundary),
                "p_boundary": look.p_boundary,
                "alpha_spent": look.alpha_spent,
                "alpha_cumulative": look.alpha_cumulative,
            }
            for look in design.looks
        ],
    }


def inflation_line(design: SequentialDesign, *, indent: str = "") -> str:
    """What the design costs: its maximum sample size relative to a fixed design."""
    if design.inflation_factor is None:
        return (
            f"{indent}maximum sample size inflation: not defined until the last look is at "
            "fraction 1"
        )
    return (
        f"{indent}maximum sample size inflation {design.inflation_factor:.4f} (power "
        f"{design.power:.0%}): the sequential design needs {design.inflation_factor:.4f} times "
        "the sample size of a fixed design with the same alpha and power"
    )


@click.command()
@click.option(
    "--looks",
    required=True,
    callback=_looks_option,
    help="Information fractions of the looks, increasing, e.g. 0.2,0.4,0.6,0.8,1 (the last is 1 "
    "for a complete design); or a number of equally spaced looks, e.g. 5.",
)
@click.option(
    "--alpha",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0, 0.5, min_open=True, max_open=True),
    help="Two-sided type I error of the whole design.",
)
@click.option(
    "--spending",
    default="obf",
    show_default=True,
    type=click.Choice(list(SPENDING_NAMES)),
    help="Lan-DeMets spending function: O'Brien-Fleming type (obf) or Pocock type.",
)
@click.option(
    "--power",
    default=0.8,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="Power for the maximum sample size inflation factor.",
)
@click.option(
    "--format",
    "output_format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="A table, or JSON with every number.",
)
def sequential(
    looks: tuple[float, ...], alpha: float, spending: str, power: float, output_format: str
) -> None:
    """Boundaries of a two-sided group-sequential design with alpha spending.

    Per look: the information fraction, the |z| boundary (stop for efficacy when the look's
    z-statistic reaches it), the nominal two-sided p-value boundary, and the alpha spent at the
    look and in total; then the maximum sample size inflation. Boundaries are computed by exact
    numerical integration of the joint normal distribution of the looks (not by simulation).
    Convention: alpha/2 per side, the spending function evaluated at alpha/2, as gsDesign and
    rpact do; docs/statistics.md explains the method and the other convention.
    """
    from analysis.sequential import SequentialDesignError, boundaries

    name = SPENDING_NAMES[spending]
    try:
        design = boundaries(looks, alpha, name, power=power if power > alpha else None)  # type: ignore[arg-type]
    except SequentialDesignError as error:
        raise click.BadParameter(str(error), param_hint="'--looks'") from None
    if output_format == "json":
        click.echo(json.dumps(design_dict(design), indent=2))
        return
    click.echo(
        f"{TITLES[name]}-type alpha spending (Lan-DeMets), alpha {alpha:g}, {len(looks)} "
        f"look{'s' if len(looks) != 1 else ''}; {CONVENTION}."
    )
    for line in design_table(design):
        click.echo(line)
    click.echo(inflation_line(design))


COMMANDS: list[click.Command] = [sequential]
