"""``nudgelab simulate``, ``nudgelab analyze`` and ``nudgelab export``: the evaluation side.

Each command imports ``analysis`` (and with it pandas, statsmodels, matplotlib) inside its
function, so ``nudgelab check`` starts without them.
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from experiments.lifecycle import OpenedTrial

CORRECTIONS = click.Choice(["holm", "bonferroni", "bh"])


def _open(spec: str, engine: Engine | None, *, strict: bool) -> OpenedTrial:
    """TRIAL: a trial file, or the id of a trial loaded in the database; rule errors warned."""
    from experiments.lifecycle import open_trial

    opened = open_trial(spec, engine, strict=strict)
    for problem in opened.rule_errors:
        click.echo(f"warning (rule error, analysed anyway): {problem}", err=True)
    return opened


@click.command()
@click.argument("trial")
@click.option("--visits", type=click.IntRange(min=1), required=True, help="Visits to simulate.")
@click.option(
    "--rates",
    default="",
    help="True primary-outcome rate per arm among analysed visits (the rate the report "
    "estimates): arm=0.05,... Exposed visits get the outcome with probability rate / "
    "exposure rate, so a rate above --exposure-rate is refused.",
)
@click.option(
    "--rates-file",
    type=click.Path(exists=True, dir_okay=False),
    help="CSV outcome,arm,location,language,rate (empty location/language = any); rates "
    "among analysed visits, as for --rates.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed: same seed, same data.")
@click.option("--db", "db_url", required=True, help="Event-log database URL.")
@click.option("--opt-out-rate", type=click.FloatRange(0, 1), default=0.02, show_default=True)
@click.option("--exposure-rate", type=click.FloatRange(0, 1), default=0.97, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=10_000, show_default=True)
def simulate(
    trial: str,
    visits: int,
    rates: str,
    rates_file: str | None,
    seed: int,
    db_url: str,
    opt_out_rate: float,
    exposure_rate: float,
    batch_size: int,
) -> None:
    """Write simulated visits with known true rates through the kiosk's write path.

    TRIAL is a trial file (loaded and started if needed) or the id of a loaded trial. Rates not
    given use the plan's baseline rate. A rate is the outcome's rate among analysed visits (all
    randomized visits but opt-outs, exposed or not), as the report estimates it and as the
    plan's baseline rate is meant; outcomes happen only after an exposure, with probability
    rate / exposure rate. Opt-outs are logged after the outcomes, so the event log deletes them
    as on a kiosk.
    """
    from analysis.simulate import Settings, parse_rates
    from analysis.simulate import simulate as run
    from experiments.lifecycle import open_event_log

    settings = Settings(
        visits=visits,
        seed=seed,
        batch_size=batch_size,
        exposure_rate=exposure_rate,
        opt_out_rate=opt_out_rate,
    )
    with open_event_log(db_url, upgrade_schema=True) as engine:
        opened = _open(trial, engine, strict=True)
        true_rates = parse_rates(opened.trial, rates, rates_file)
        with click.progressbar(length=visits, label="simulating visits", file=sys.stderr) as bar:
            result = run(
                engine,
                opened.trial,
                true_rates,
                settings,
                source=opened.source,
                progress=bar.update,
            )
    arms = ", ".join(f"{arm} {n:,}" for arm, n in sorted(result.per_arm.items()))
    stored = sum(n for key, n in result.events.items() if key.endswith(":stored"))
    click.echo(
        f"simulated {result.visits:,} visits of {result.trial_id} ({arms}); "
        f"{stored:,} events stored"
    )


ANALYSIS_STEPS = 7


@click.command()
@click.argument("trial")
@click.option("--db", "db_url", help="Event-log database URL.")
@click.option(
    "--export",
    "export_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Analyse an export file (nudgelab export) instead of a database.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for report.html, report.md, report.json and figures/.",
)
@click.option("--correction", type=CORRECTIONS, help="Default: the pre-registered correction.")
@click.option("--alpha", type=click.FloatRange(0, 0.5, min_open=True), help="Default: the plan's.")
@click.option(
    "--interval",
    type=click.Choice(["newcombe", "wald"]),
    default="newcombe",
    show_default=True,
    help="Interval for differences in proportions.",
)
@click.option(
    "--adjustment",
    type=click.Choice(["lpm", "logit"]),
    default="lpm",
    show_default=True,
    help="Covariate-adjusted model: linear probability or logistic (marginal effect).",
)
@click.option(
    "--small-cell-threshold",
    type=click.IntRange(min=10),
    default=10,
    show_default=True,
    help="Counts below this in tables by location, language or time are shown as <N.",
)
def analyze(
    trial: str,
    db_url: str | None,
    export_file: str | None,
    out_dir: str,
    correction: str | None,
    alpha: float | None,
    interval: str,
    adjustment: str,
    small_cell_threshold: int,
) -> None:
    """Analyse a trial and write its report (HTML, Markdown, JSON); print a short summary.

    Every run on a database counts as one look at the results and the report says so. Options
    that differ from the pre-registered plan are listed as deviations.
    """
    if (db_url is None) == (export_file is None):
        raise click.UsageError("give either --db URL or --export FILE")
    from analysis import analyze as run
    from analysis.report import (
        FIGURE_FILES,
        render_figures,
        render_html,
        render_json,
        render_markdown,
        render_summary,
    )
    from experiments.lifecycle import open_event_log

    with open_event_log(db_url) if db_url else nullcontext() as engine:
        opened = _open(trial, engine, strict=False)
        with click.progressbar(
            length=ANALYSIS_STEPS,
            label="analysing",
            file=sys.stderr,
            show_eta=False,
            item_show_func=lambda item: item,
        ) as bar:

            def step(message: str) -> None:
                bar.update(1, message)

            report = run(
                opened.trial,
                engine,
                export=export_file,
                correction=correction,
                alpha=alpha,
                interval=interval,
                adjustment=adjustment,
                small_cell_threshold=small_cell_threshold,
                progress=step,
            )
            out = Path(out_dir)
            (out / "figures").mkdir(parents=True, exist_ok=True)
            step("writing report.html")
            figures = render_figures(report)  # drawn once: embedded in the HTML, files for the .md
            (out / "report.html").write_text(render_html(report, figures), encoding="utf-8")
            step("writing report.md and figures")
            for key, png in figures.items():
                (out / "figures" / FIGURE_FILES[key]).write_bytes(png)
            (out / "report.md").write_text(render_markdown(report, "figures"), encoding="utf-8")
            step("writing report.json")
            (out / "report.json").write_text(render_json(report), encoding="utf-8")
    click.echo(render_summary(report))
    click.echo(f"wrote {out / 'report.html'}, {out / 'report.md'}, {out / 'report.json'}")


@click.command("export")
@click.argument("trial")
@click.option("--db", "db_url", required=True, help="Event-log database URL.")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False))
@click.option(
    "--threshold",
    type=click.IntRange(min=10),
    default=10,
    show_default=True,
    help="Smallest count allowed in a cell; smaller cells are merged "
    "(docs/ethics.md#exports-and-retention).",
)
def export(trial: str, db_url: str, out_file: str, threshold: int) -> None:
    """Write the trial's counts per arm × location × language × week for sharing.

    Times are rounded to the week; cells with counts below the threshold are merged (weeks,
    then languages, then locations) and anything still small is left empty. Exporting outcome
    counts counts as a look at the results.
    """
    from analysis.export import export_trial
    from experiments.lifecycle import open_event_log

    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    with open_event_log(db_url) as engine:
        opened = _open(trial, engine, strict=False)
        meta = export_trial(opened.trial, engine, out_file, threshold=threshold)
    gaps = "; ".join(f"{c}: {', '.join(arms)}" for c, arms in meta["suppressed"].items())
    click.echo(
        f"wrote {out_file} (trial {meta['trial_id']}, small cells merged below {threshold}"
        + (f"; left empty: {gaps}" if gaps else "")
        + ")"
    )


COMMANDS: list[click.Command] = [simulate, analyze, export]
