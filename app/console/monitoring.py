"""Blinded monitoring of a trial: HTML and JSON.

Visits, exposures, opt-outs and finishes per arm, per location and per day, the kiosks' last
contact, the sample-ratio check and the time to the planned sample size, all from
:func:`experiments.monitoring.monitor`, which never reads an outcome event. Monitoring is not a
look at the results and is not counted as one; outcome results are in :mod:`app.console.reports`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import current_app, jsonify, render_template
from werkzeug.wrappers import Response

from app.console.access import Can, allowed, roles, trial_for
from app.console.blueprint import bp
from app.db import get_connection
from experiments.monitoring import Monitoring, MonitorSettings, monitor
from experiments.opening_hours import DEFAULT as DEFAULT_OPENING_HOURS
from experiments.opening_hours import OpeningHours
from experiments.store.users import Role


def settings() -> MonitorSettings:
    """Monitoring settings from the app's configuration: the silent-kiosk time and the opening
    hours it is counted in (``NUDGELAB_OPENING_HOURS``)."""
    minutes = current_app.config["SILENT_KIOSK_MINUTES"]
    hours = current_app.config.get("OPENING_HOURS") or DEFAULT_OPENING_HOURS
    return MonitorSettings(
        silent_after=timedelta(minutes=minutes), opening=OpeningHours.parse(hours)
    )


def _monitor(trial_id: str) -> Monitoring:
    trial_for(trial_id, Can.VIEW)
    return monitor(get_connection(), trial_id, now=datetime.now(UTC), settings=settings())


@bp.get("/trials/<trial_id>/monitoring")
@roles(Role.RESEARCHER, Role.EVALUATOR, Role.ADMIN)
def monitoring(trial_id: str) -> str:
    """The blinded monitoring page."""
    record = trial_for(trial_id, Can.VIEW)
    data = _monitor(trial_id)
    return render_template(
        "console/monitoring.html",
        record=record,
        data=data,
        can_act=allowed(record, Can.ACT),
        silent_minutes=current_app.config["SILENT_KIOSK_MINUTES"],
        opening_hours=current_app.config.get("OPENING_HOURS") or DEFAULT_OPENING_HOURS,
    )


@bp.get("/trials/<trial_id>/monitoring.json")
@roles(Role.RESEARCHER, Role.EVALUATOR, Role.ADMIN)
def monitoring_json(trial_id: str) -> Response:
    """The same figures as JSON."""
    return jsonify(_monitor(trial_id).to_dict())
