"""``nudgelab analyze-counts``: effects from published or external counts per arm.

The CSV has a header with the columns ``arm,n,successes`` (others are ignored) and one row per
arm; lines starting with ``#`` are comments (for the source of the numbers). Every problem in the
file is reported as ``FILE:LINE: message`` and the command exits 1, never with a traceback.
"""

from __future__ import annotations

import json

import click


@click.command("analyze-counts")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--control", required=True, help="The arm every other arm is compared with.")
@click.option(
    "--correction",
    type=click.Choice(["holm", "bonferroni", "bh", "none"]),
    default="holm",
    show_default=True,
    help="Adjustment of p-values across arms (bh = Benjamini–Hochberg).",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Intervals are at level 1 - alpha; '*' marks p adj < alpha.",
)
@click.option(
    "--interval",
    type=click.Choice(["newcombe", "wald"]),
    default="newcombe",
    show_default=True,
    help="Interval for the difference in proportions.",
)
@click.option(
    "--exact-below",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Use the small-sample test when an expected cell count is below this (0: never).",
)
@click.option(
    "--small-sample-test",
    type=click.Choice(["exact-z", "fisher"]),
    default="exact-z",
    show_default=True,
    help="exact-z: exact unconditional z-test (size never above alpha, less conservative); "
    "fisher: Fisher's exact test (conservative with few events).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "text"]),
    default="text",
    show_default=True,
)
def analyze_counts(
    file: str,
    control: str,
    correction: str,
    alpha: float,
    interval: str,
    exact_below: float,
    small_sample_test: str,
    output_format: str,
) -> None:
    """Effects of each arm against a control from a CSV of counts (arm,n,successes).

    Prints rates with Wilson intervals, differences with Newcombe (or Wald) intervals, unadjusted
    and at the family level of the correction (Bonferroni for holm and bonferroni, FCR-adjusted
    for bh), risk and odds ratios, a z-test (or its exact unconditional version when an expected
    cell count is small) per arm, p-values adjusted across arms and an omnibus chi-square test.
    JSON numbers are proportions (0.031, not 3.1); its "family" names the correction and the
    number of comparisons, its "intervals" what each interval field holds. Exit code 1 on any
    problem in the file.
    """
    from analysis.comparison_text import render_comparison
    from analysis.count_file import read_counts
    from analysis.estimate import compare_arms

    counts, problems = read_counts(file, control)
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(1)
    comparison = compare_arms(
        counts,
        control,
        correction=correction,  # type: ignore[arg-type]
        alpha=alpha,
        interval=interval,  # type: ignore[arg-type]
        exact_below=exact_below,
        small_sample=small_sample_test,  # type: ignore[arg-type]
    )
    if output_format == "json":
        click.echo(json.dumps(comparison.to_dict(), indent=2, allow_nan=False))
    else:
        click.echo(render_comparison(comparison, file))


COMMANDS: list[click.Command] = [analyze_counts]
