"""``nudgelab calibrate``: simulate A/A and effect trials through the report's methods.

Writes docs/calibration.md (or ``--out``): false-positive rates, family-wise error, coverage of
every interval, power against the analytic power, and the error of 10 looks under the
sequential plan and under naive peeking, each against its binomial 99 % band
(:mod:`analysis.calibration`). One line per cell goes to stderr as the cells finish.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from analysis.calibration import CellResult


@click.command()
@click.option(
    "--quick",
    is_flag=True,
    help="A subset of the grid with a few hundred replications (under a minute).",
)
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of the simulation.")
@click.option(
    "--out",
    default="docs/calibration.md",
    show_default=True,
    type=click.Path(dir_okay=False, writable=True),
    help="Markdown file to write ('-' for stdout).",
)
@click.option(
    "--replications",
    type=click.IntRange(min=10),
    default=None,
    help="A/A and effect trials per cell (default 2000; 300 with --quick).",
)
@click.option(
    "--adjusted",
    type=click.IntRange(min=0),
    default=None,
    help="Of those, how many also get the adjusted estimate (default 1000; 100 with --quick).",
)
@click.option(
    "--sequential",
    type=click.IntRange(min=0),
    default=None,
    help="Of those, how many also at each of 10 looks (default 1000; 200 with --quick).",
)
@click.option(
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Cells simulated in parallel processes.",
)
def calibrate(
    quick: bool,
    seed: int,
    out: str,
    replications: int | None,
    adjusted: int | None,
    sequential: int | None,
    jobs: int,
) -> None:
    """Check by simulation that the report's tests and intervals err at their nominal rates.

    Runs A/A trials (no effect) and trials with one effective arm through the same functions
    the report uses, for 50 to 10,000 visits per arm, control rates 2 %, 10 % and 30 %, and 2 or
    5 arms, and writes a Markdown page with every rate, its 99 % binomial band and a verdict
    (within / above / below). Exit code 0 even when a value lies outside its band: the page says
    which, and how many are expected by chance.
    """
    from analysis.calibration import QUICK, Budget, calibrate, grid, render_markdown

    default = QUICK if quick else Budget()
    total = replications or default.replications
    budget = Budget(
        replications=total,
        adjusted=min(total, default.adjusted if adjusted is None else adjusted),
        sequential=min(total, default.sequential if sequential is None else sequential),
    )
    cells = grid(quick)
    click.echo(
        f"calibrating {len(cells)} cells, {budget.replications:,} replications each "
        f"(adjusted {budget.adjusted:,}, 10 looks {budget.sequential:,}), seed {seed}",
        err=True,
    )
    done = iter(range(1, len(cells) + 1))

    def progress(result: CellResult) -> None:
        failed = sum(not m.passed() for m in result.metrics)
        click.echo(
            f"[{next(done)}/{len(cells)}] {result.cell.label}: {result.seconds:.0f} s, "
            f"{failed} value(s) outside the acceptable side of the band",
            err=True,
        )

    calibration = calibrate(cells, budget, seed=seed, jobs=jobs, progress=progress, quick=quick)
    command = " ".join(["nudgelab calibrate", *(["--quick"] if quick else []), f"--seed {seed}"])
    page = render_markdown(calibration, command)
    if out == "-":
        sys.stdout.write(page)
    else:
        Path(out).write_text(page, encoding="utf-8")
    judged, failed = len(calibration.judged()), len(calibration.failures())
    click.echo(
        f"{judged - failed} of {judged} judged values acceptable; {failed} outside "
        f"(wrote {out}, {calibration.seconds / 60:.1f} min)",
        err=True,
    )


COMMANDS: list[click.Command] = [calibrate]
