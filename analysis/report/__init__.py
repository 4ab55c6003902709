"""Renderings of a :class:`~analysis.results.Report`: HTML, Markdown, JSON and a text summary.

>>> figures = render_figures(report)                 # doctest: +SKIP
>>> page = render_html(report, figures)              # doctest: +SKIP
>>> text = render_markdown(report, "figures")        # doctest: +SKIP

Every writer refuses to return a rendering that lacks the transparency section, an arm or an
outcome. The report values live in :mod:`analysis.results`; nothing here is imported by them.
"""

from analysis.report.figures import render_figures
from analysis.report.html import render_html
from analysis.report.json import render_json, report_dict
from analysis.report.markdown import FIGURE_FILES, render_markdown
from analysis.report.text import render_summary
from analysis.results import IncompleteReport, Report

__all__ = [
    "FIGURE_FILES",
    "IncompleteReport",
    "Report",
    "render_figures",
    "render_html",
    "render_json",
    "render_markdown",
    "render_summary",
    "report_dict",
]
