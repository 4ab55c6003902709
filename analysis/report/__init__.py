"""The report: a frozen :class:`Report` value and its Markdown, HTML and JSON renderings."""

from analysis.report.model import IncompleteReport, Report

__all__ = ["IncompleteReport", "Report"]
