"""The error :func:`analysis.analyze` raises when an analysis cannot start."""


class AnalysisError(Exception):
    """The analysis cannot start (trial not in the database, export of another trial, …)."""
