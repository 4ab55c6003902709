"""``nudgelab analyze-counts``: effects from published or external counts per arm.

The CSV has a header with the columns ``arm,n,successes`` (others are ignored) and one row per
arm; lines starting with ``#`` are comments (for the source of the numbers). Every problem in the
file is reported as ``FILE:LINE: message`` and the command exits 1, never with a traceback.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from analysis.estimate import ArmCounts, Comparison

REQUIRED = ("arm", "n", "successes")


@dataclass(frozen=True)
class CountsProblem:
    """One problem in the counts file, at a line (0 when it concerns the whole file)."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return (
            f"{self.path}:{self.line}: {self.message}"
            if self.line
            else f"{self.path}: {self.message}"
        )


def _whole_number(text: str) -> int | None:
    text = text.strip()
    if not text or not (text.isdigit() or (text[0] in "+-" and text[1:].isdigit())):
        return None
    return int(text)


def read_counts(path: str) -> tuple[list[ArmCounts], list[CountsProblem]]:
    """Rows of ``arm,n,successes`` and every problem found (empty when the file is usable)."""
    from analysis.estimate import ArmCounts

    problems: list[CountsProblem] = []
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        return [], [CountsProblem(path, 0, f"cannot read the file: {error}")]
    numbered = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not numbered:
        return [], [CountsProblem(path, 0, "no header and no rows; expected arm,n,successes")]
    rows = list(csv.reader(line for _, line in numbered))
    header = [name.strip().lower() for name in rows[0]]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        return [], [
            CountsProblem(
                path,
                numbered[0][0],
                f"header lacks column(s) {', '.join(missing)}; expected arm,n,successes "
                f"(found {','.join(header) or 'nothing'})",
            )
        ]
    index = {name: header.index(name) for name in REQUIRED}
    counts: list[ArmCounts] = []
    seen: dict[str, int] = {}
    for (line, _), row in zip(numbered[1:], rows[1:], strict=True):
        if len(row) != len(header):
            problems.append(
                CountsProblem(path, line, f"{len(row)} fields where the header has {len(header)}")
            )
            continue
        arm = row[index["arm"]].strip()
        n, successes = (_whole_number(row[index[k]]) for k in ("n", "successes"))
        errors = []
        if not arm:
            errors.append("arm is empty")
        elif arm in seen:
            errors.append(f"arm {arm!r} already appears on line {seen[arm]}")
        for name, value in (("n", n), ("successes", successes)):
            if value is None:
                errors.append(f"{name} must be a whole number, not {row[index[name]].strip()!r}")
            elif value < 0:
                errors.append(f"{name} cannot be negative ({value})")
        if n == 0:
            errors.append(f"n is 0 for arm {arm!r}: an arm without observations cannot be analysed")
        if n is not None and successes is not None and successes > n:
            errors.append(f"successes ({successes}) are more than n ({n}) for arm {arm!r}")
        problems += [CountsProblem(path, line, message) for message in errors]
        if arm and arm not in seen:
            seen[arm] = line
        if not errors:
            counts.append(ArmCounts(arm, int(n), int(successes)))  # type: ignore[arg-type]
    if len(rows) < 3 and not problems:
        problems.append(CountsProblem(path, 0, "need at least two arms (a control and another)"))
    return counts, problems


def _p(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    return f"{value:.2e}" if value < 1e-4 else f"{value:.4f}"


def _range(low: float | None, high: float | None, scale: float, form: str) -> str:
    if low is None or high is None:
        return ""
    return f"[{format(low * scale, form)}, {format(high * scale, form)}]"


def render_text(comparison: Comparison, source: str) -> str:
    """A compact aligned table; rates in %, differences in percentage points."""
    from analysis.corrections import CORRECTION_NAMES

    level = f"{1 - comparison.alpha:.0%}"
    interval = {"newcombe": "Newcombe hybrid score", "wald": "Wald"}[comparison.interval]
    tested = sum(e.p_value is not None for e in comparison.arms)
    ci = f"{level} CI"
    header = ("arm", "n", "successes", "rate %", ci, "diff pp", ci,
              "risk ratio", ci, "odds ratio", ci, "test", "p", "p adj")  # fmt: skip
    table = [header]
    for e in comparison.arms:
        row = [e.arm, f"{e.n:,}", f"{e.successes:,}", f"{e.rate * 100:.2f}",
               _range(e.rate_ci_low, e.rate_ci_high, 100, ".2f")]  # fmt: skip
        if e.is_control:
            row += ["(control)"] + [""] * 8
        elif e.diff is None:
            row += ["(no visits)"] + [""] * 8
        else:
            star = " *" if e.significant else ""
            row += [
                f"{e.diff * 100:+.2f}", _range(e.diff_ci_low, e.diff_ci_high, 100, "+.2f"),
                f"{e.relative_risk:.3f}",
                _range(e.relative_risk_ci_low, e.relative_risk_ci_high, 1, ".3f"),
                f"{e.odds_ratio:.3f}",
                _range(e.odds_ratio_ci_low, e.odds_ratio_ci_high, 1, ".3f"),
                str(e.test), _p(e.p_value), _p(e.p_adjusted) + star,
            ]  # fmt: skip
        table.append(tuple(row))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    numeric = {1, 2, 3, 5, 7, 9, 12, 13}
    lines = [
        f"{source}: each arm against control {comparison.control!r}",
        f"rates: Wilson {level} CI; differences: {interval} {level} CI (percentage points); "
        "risk ratio: log (Katz) CI; odds ratio: log (Woolf) CI",
        "test: z = two-proportion z-test (pooled), fisher = Fisher's exact test (used when an "
        f"expected cell count is below {comparison.fisher_below:g})",
        f"p adj: {CORRECTION_NAMES[comparison.correction]} across {tested} "
        f"comparison{'' if tested == 1 else 's'}; "
        f"* = p adj < {comparison.alpha:g}",
        "",
    ]
    for row in table:
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    chi2 = comparison.omnibus_chi2
    lines.append("")
    lines.append(
        "omnibus chi-square across all arms: "
        + ("undefined" if math.isnan(chi2) else f"{chi2:.3f}")
        + f", df {comparison.omnibus_df}, p {_p(comparison.omnibus_p)}"
    )
    for warning in (*comparison.warnings, *(w for e in comparison.arms for w in e.warnings)):
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


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
    "--fisher-below",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Use Fisher's exact test when an expected cell count is below this (0: never).",
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
    fisher_below: float,
    output_format: str,
) -> None:
    """Effects of each arm against a control from a CSV of counts (arm,n,successes).

    Prints rates with Wilson intervals, differences with Newcombe (or Wald) intervals, risk and
    odds ratios, a z-test or Fisher's exact test per arm, p-values adjusted across arms and an
    omnibus chi-square test. JSON numbers are proportions (0.031, not 3.1). Exit code 1 on any
    problem in the file.
    """
    from analysis.estimate import compare_arms

    counts, problems = read_counts(file)
    arms = {c.arm for c in counts}
    if not problems and control not in arms:
        problems.append(
            CountsProblem(
                file,
                0,
                f"control arm {control!r} is not in the file (arms: {', '.join(sorted(arms))})",
            )
        )
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(1)
    try:
        comparison = compare_arms(
            counts,
            control,
            correction=correction,  # type: ignore[arg-type]
            alpha=alpha,
            interval=interval,  # type: ignore[arg-type]
            fisher_below=fisher_below,
        )
    except ValueError as error:
        click.echo(f"error: {file}: {error}", err=True)
        raise SystemExit(1) from None
    if output_format == "json":
        click.echo(json.dumps(comparison.to_dict(), indent=2, allow_nan=False))
    else:
        click.echo(render_text(comparison, file))


COMMANDS: list[click.Command] = [analyze_counts]
