"""The one translation of the errors a user can cause into one line that says what to do next.

:class:`ExplainingGroup` runs every ``nudgelab`` command: a known error ends the command with
``Error: <one line>`` and exit code 1, after the problems it carries (a refused trial file's, one
per line). Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

Explain = Callable[[Any], str]

DB_HINT = "is the database running, and has `nudgelab db upgrade --db URL` created its schema?"


def _database(error: Any) -> str:
    """A driver's error (``orig``) says what went wrong; SQLAlchemy's adds SQL and a link."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    return f"database error: {reason[0] if reason else type(error).__name__}; {DB_HINT}"


def _os_error(error: OSError) -> str:
    where = f"{error.filename}: " if error.filename else ""
    return f"{where}{error.strerror or error} (check the path and its permissions)"


def _stored_trial(error: Exception) -> str:
    return (
        f"{error} (stored by another nudgelab version? `nudgelab trial load PATH` stores the "
        "file again)"
    )


#: (module, exception class, how to say it), the most specific class first. A class is looked up
#: only once its module has been imported: an exception cannot come from a module that never
#: ran, so `nudgelab check` never loads SQLAlchemy, Flask or pandas just to be ready for one.
KNOWN: tuple[tuple[str, str, Explain], ...] = (
    ("experiments.lifecycle", "TrialRefused", str),
    ("experiments.lifecycle", "DatabaseUrlError", lambda e: f"not a usable database URL: {e}"),
    ("experiments.store", "RecordingError", str),
    ("experiments.store", "KioskError", str),
    ("experiments.store", "StoredTrialError", _stored_trial),
    ("app", "StartupError", str),
    ("analysis", "AnalysisError", str),
    ("analysis.export", "ExportError", str),
    ("analysis.simulate", "SimulationError", str),
    ("analysis.sequential", "SequentialDesignError", str),
    ("sqlalchemy.exc", "SQLAlchemyError", _database),
    ("builtins", "OSError", _os_error),
)


def explain(error: BaseException) -> str | None:
    """The one line that explains ``error``, or None when it is not an error a user can cause."""
    for module, name, say in KNOWN:
        known = getattr(sys.modules.get(module), name, None)
        if known is not None and isinstance(error, known):
            return say(error)
    return None


class ExplainingGroup(click.Group):
    """A command group whose commands end a known error with one clear line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as error:
            message = explain(error)
            if message is None:
                raise
            for problem in getattr(error, "problems", ()):
                click.echo(str(problem), err=True)
            raise click.ClickException(message) from None
