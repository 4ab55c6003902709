"""The steps of :func:`analysis.analyze`: read the data, estimate, check, assemble the report."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sqlalchemy import Connection, Engine

from analysis.checks import Quality, read_quality, run_checks
from analysis.choices import Choices
from analysis.consort import participant_flow
from analysis.counts import Counts, load_counts, outcome_column
from analysis.errors import AnalysisError
from analysis.estimator_choice import AdjustmentPlan, choose_adjustment
from analysis.export import ExportError, read_export
from analysis.interim import InterimAnalysis, Timeline, interim_analysis
from analysis.outcomes import estimate_outcome
from analysis.power import power_summary
from analysis.preregistered import arm_union, outcome_specs, preregistered_trial
from analysis.results import Options, OutcomeResult, Report
from analysis.transparency import (
    OPT_OUT_RULE,
    Transparency,
    arms_shown,
    data_against_plan,
    data_deviations,
    deletion,
    disclosures,
    in_report_language,
    looks_while_running,
    media_files,
    option_deviations,
    preregistration,
    version_deviations,
    versions_shown,
)
from experiments.eventlog import make_engine
from experiments.model import AnalysisPlan, Arm, Trial, joined
from experiments.store import TrialHistory, read_history, record_look

Step = Callable[[str], None]


@dataclass(frozen=True)
class Inputs:
    """Everything read from the database or export before any statistics."""

    counts: Counts
    record: TrialHistory
    quality: Quality
    preregistered: Trial
    source: str
    look_counted: bool
    suppressed: Mapping[str, list[str]] = field(default_factory=dict)


def read_database(
    trial: Trial,
    engine_or_url: Engine | str | None,
    step: Step,
    *,
    record_look: bool,
    now: datetime,
) -> Inputs:
    """Read counts, lock, looks and data quality in one transaction; count the look."""
    owned = isinstance(engine_or_url, str)
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    assert engine is not None
    try:
        with engine.begin() as conn:
            record = read_history(conn, trial.id)
            if record.status is None:
                raise AnalysisError(
                    f"trial {trial.id!r} is not in this database; load it with `nudgelab trial "
                    "load` (or write simulated visits with `nudgelab simulate`)"
                )
            preregistered = preregistered_trial(record, trial)
            step("counting visits per arm and stratum, and the data-quality tallies (one SQL pass)")
            counts = load_counts(conn, trial.id, outcome_specs(preregistered, trial))
            step("checking data quality (from the same pass)")
            quality = read_quality(conn, trial, counts)
            if record_look:
                _record(conn, trial.id, counts.data_hash, now)
    finally:
        if owned:
            engine.dispose()
    return Inputs(counts, record, quality, preregistered, "event-log database", record_look)


def _record(conn: Connection, trial_id: str, data_hash: str, now: datetime) -> None:
    record_look(conn, trial_id, data_hash, now)


def read_exported(trial: Trial, path: str | Path, step: Step) -> Inputs:
    """Read an export file: counts and the event-log facts stored with them."""
    step("reading the export file")
    try:
        exported = read_export(path, trial.id)
    except ExportError as error:
        raise AnalysisError(str(error)) from error
    unknown = sorted({arm for c in ("n", "opted_out") for arm in exported.suppressed.get(c, [])})
    if unknown:
        raise AnalysisError(
            f"the export left the opt-out count empty (a small cell, threshold "
            f"{exported.meta['threshold']}) for arm(s) {', '.join(unknown)}, so the analysed "
            "visits per arm are unknown and no outcome estimate can be computed "
            "from it; analyse from the database (--db URL)"
        )
    return Inputs(
        exported.counts,
        exported.record,
        exported.quality,
        preregistered_trial(exported.record, trial),
        f"export file {Path(path).name} (exported {exported.meta['exported_at']}, "
        f"small cells merged below {exported.meta['threshold']})",
        False,
        exported.suppressed,
    )


def resolve(
    choices: Choices,
    plan: AnalysisPlan,
    *,
    cluster: str | None,
    source: str,
    design: AdjustmentPlan | None = None,
) -> Options:
    """The options the analysis runs with: the plan's values where the caller chose none.

    ``design`` (strata, cluster and why; :func:`analysis.estimator_choice.choose_adjustment`)
    comes from the trial's randomization, never from the data; it overrides ``cluster``.
    """
    return Options(
        correction=choices.correction or plan.correction,
        alpha=plan.alpha if choices.alpha is None else choices.alpha,
        interval=choices.interval,
        adjustment=choices.adjustment,
        cluster=design.cluster if design else cluster,
        small_cell_threshold=choices.small_cell_threshold,
        source=source,
        strata=design.strata if design else (),
        adjustment_reason=design.reason if design else "",
    )


def build_report(
    trial: Trial, inputs: Inputs, choices: Choices, step: Step, now: datetime
) -> Report:
    """Estimates, checks, flow, power and transparency assembled into the Report."""
    preregistered, counts = inputs.preregistered, inputs.counts
    arms = arm_union(preregistered, trial)
    arm_ids = [arm.id for arm in arms]
    settings = resolve(
        choices,
        preregistered.analysis,
        cluster=None,
        source=inputs.source,
        design=choose_adjustment(preregistered.randomization),
    )
    step("estimating effects")
    registered = {o.id for o in preregistered.outcomes}
    current = {o.id for o in trial.outcomes}
    outcomes = tuple(
        estimate_outcome(
            counts,
            spec,
            arm_ids,
            preregistered,
            settings,
            status=_status(spec.id, registered, current, inputs.record),
            suppressed=[arm for arm in inputs.suppressed.get(outcome_column(spec.id), [])],
        )
        for spec in counts.outcomes
    )
    step("checks and power")
    weights = {arm.id: arm.weight for arm in arms}
    checks = run_checks(counts, arm_ids, weights, inputs.quality)
    flow = participant_flow(
        counts, arm_ids, inputs.quality.visits_without_assignment, inputs.record.pauses
    )
    primary = outcomes[0]
    control = preregistered.control_arm.id
    control_total = next((t for t in primary.totals if t.arm == control), None)
    observed = (
        control_total.successes / control_total.n if control_total and control_total.n else None
    )
    power = power_summary(preregistered, flow, observed)
    transparency = build_transparency(trial, inputs, arms, settings, now)
    interim = build_interim(inputs, primary, settings, now)
    unknown = sorted(set(counts.cells["arm"]) - set(arm_ids))
    warnings = (
        *(f"visits assigned to undeclared arm {arm!r} are not analysed" for arm in unknown),
        *(interim.warnings if interim is not None else ()),
        *deviation_warnings(transparency),
    )
    return Report(
        trial.id,
        trial.title,
        now,
        settings,
        flow,
        outcomes,
        checks,
        power,
        transparency,
        warnings,
        interim=interim,
    )


def build_interim(
    inputs: Inputs, primary: OutcomeResult, options: Options, now: datetime
) -> InterimAnalysis | None:
    """The sequential analysis of this look at the primary outcome (see analysis.interim)."""
    record = inputs.record
    timeline = Timeline(
        status=None if record.status is None else str(record.status),
        started_at=record.started_at,
        stopped_at=record.stopped_at,
        looks=record.looks,
        now=now,
    )
    return interim_analysis(
        inputs.preregistered.analysis,
        primary.comparison,
        primary.id,
        inputs.counts,
        timeline,
        alpha=options.alpha,
        correction=options.correction,
    )


def deviation_warnings(transparency: Transparency) -> tuple[str, ...]:
    """One warning naming every deviation from the plan (details: Transparency › Deviations)."""
    deviations = transparency.deviations
    if not deviations:
        return ()
    listed = "; ".join(f"{d.kind}: {d.what}" for d in deviations[:8])
    more = f"; and {len(deviations) - 8} more" if len(deviations) > 8 else ""
    return (
        f"{len(deviations)} deviation{'s' if len(deviations) != 1 else ''} from the "
        f"pre-registered plan ({listed}{more}); see Transparency, Deviations from the plan",
    )


def _status(oid: str, registered: set[str], current: set[str], record: TrialHistory) -> str:
    if record.locked_version is None:
        return "declared in the trial file; not pre-registered (the trial was never locked)"
    if oid in registered and oid in current:
        return "pre-registered"
    if oid in registered:
        return "pre-registered, removed from the trial file later (still reported)"
    return "added after pre-registration (not pre-registered: exploratory)"


def build_transparency(
    trial: Trial, inputs: Inputs, arms: Sequence[Arm], options: Options, now: datetime
) -> Transparency:
    """The transparency values: plan, lock, deviations, exclusions, looks, hashes, retention."""
    preregistered, record, quality = inputs.preregistered, inputs.record, inputs.quality
    deviations = [
        *option_deviations(
            preregistered,
            correction=options.correction,
            alpha=options.alpha,
            interval=options.interval,
            adjustment=options.adjustment,
        ),
        *version_deviations(preregistered, trial),
        *data_deviations(record, quality.visits_by_version),
    ]
    against_plan, plan_notes = data_against_plan(
        preregistered,
        record,
        inputs.counts,
        [arm.id for arm in arms],
        options.small_cell_threshold,
    )
    deviations += against_plan
    # What visitors saw is the locked version; an arm added after the lock as it is now.
    shown = {arm.id: arm for arm in arms_shown(preregistered)}
    shown |= {arm.id: arm for arm in arms_shown(trial) if arm.id not in shown}
    deleted_on, basis = deletion(trial, record)
    looks = len(record.looks) + (1 if inputs.look_counted else 0)
    note = (
        "this analysis included"
        if inputs.look_counted
        else "looks recorded up to the export; this analysis of the export is not recorded"
        if inputs.source.startswith("export")
        else "this analysis was run without recording a look"
    )
    return Transparency(
        title=preregistered.title,
        purpose=in_report_language(preregistered.purpose),
        organisation=joined(preregistered.organisation),
        contact=trial.contact,
        privacy_contact=trial.privacy.contact,
        privacy_statement=in_report_language(trial.privacy.statement),
        # A register path is named under the platform's public address, as on the kiosk.
        register_url=trial.register_address(os.environ.get("NUDGELAB_PUBLIC_URL") or None),
        domain_sensitivity=preregistered.domain_sensitivity,
        sensitivity_reason=preregistered.sensitivity_reason,
        disclosures=disclosures(preregistered),
        arms=tuple(shown[arm.id] for arm in arms),
        preregistration=preregistration(preregistered, record),
        deviations=tuple(deviations),
        exclusions=exclusions(inputs, [arm.id for arm in arms]),
        looks=looks,
        looks_while_running=looks_while_running(record, now if inputs.look_counted else None),
        looks_note=note,
        software_version=_version(),
        data_hash=inputs.counts.data_hash,
        data_source=inputs.source,
        retention_days=trial.privacy.retention_days,
        deletion_date=deleted_on,
        deletion_basis=basis,
        statistical_notes=(OPT_OUT_RULE, *plan_notes),
        other_versions=versions_shown(preregistered, record, quality.visits_by_version),
        trial_status=None if record.status is None else str(record.status),
        media=media_files(record.version_sources.values()),
    )


def exclusions(inputs: Inputs, arm_ids: Sequence[str]) -> tuple[str, ...]:
    """What the estimates leave out, and what they deliberately keep (ITT)."""
    counts, quality = inputs.counts, inputs.quality
    by_arm = counts.by("arm")
    opted = int(by_arm["opted_out"].sum())
    items = [
        f"{opted:,} randomized visits opted out and are excluded from every outcome analysis "
        "(counted in the participant flow only).",
        "Visits that were randomized but never saw the material are NOT excluded "
        "(modified intention to treat: every randomized visit except opt-outs, in its "
        "randomized arm).",
    ]
    if quality.visits_without_assignment:
        items.append(
            f"{quality.visits_without_assignment:,} visits without an assignment (not randomized)."
        )
    for kind, number in quality.events_without_assignment.items():
        items.append(f"{number:,} {kind} events of visits without an assignment.")
    unknown = by_arm[~by_arm.index.isin(list(arm_ids))]
    for arm, row in unknown.iterrows():
        items.append(f"{int(row['n']):,} visits assigned to undeclared arm {arm!r}.")
    for column, arms in inputs.suppressed.items():
        items.append(f"{column} left empty in the export for arms {', '.join(arms)} (small cells).")
    return tuple(items)


def _version() -> str:
    """The installed version of nudgelab (read from the package metadata)."""
    try:
        return version("nudgelab")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0+unknown"
