"""Markdown writer: the report's blocks as GitHub-flavoured Markdown (figures as PNG files)."""

from __future__ import annotations

from analysis.report.blocks import (
    Block,
    Bullets,
    FigureRef,
    Heading,
    Paragraph,
    Picture,
    Quote,
    Table,
)
from analysis.report.sections import document
from analysis.report.transparency_section import check_rendering
from analysis.results import Report

FIGURE_FILES = {"flow": "flow.png", "forest": "forest.png"}
_TONES = {"warning": "> **Warning:** ", "alarm": "> **ALARM:** ", "note": "Note: ", "plain": ""}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def block_markdown(block: Block, figure_dir: str) -> str:
    """One block as Markdown."""
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Paragraph):
        return _TONES[block.tone] + block.text.replace("\n", " ")
    if isinstance(block, Table):
        lines = []
        if block.caption:
            lines += [f"*{block.caption}*", ""]
        lines.append("| " + " | ".join(_cell(c) for c in block.columns) + " |")
        lines.append("|" + "|".join("---" for _ in block.columns) + "|")
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, FigureRef):
        return f"![{block.alt}]({figure_dir}/{FIGURE_FILES[block.key]})\n\n*{block.caption}*"
    if isinstance(block, Quote):
        body = "\n".join(f"> {line}".rstrip() for line in block.text.splitlines())
        return f"**{block.label}**\n\n{body}" if block.label else body
    if isinstance(block, Picture):  # the HTML report shows the picture itself
        return f"*Picture:* {block.caption} (alt text: {block.alt})"
    raise TypeError(f"unknown block {block!r}")


def render_markdown(report: Report, figure_dir: str = "figures") -> str:
    """The whole report as Markdown; figures are referenced as ``figure_dir/*.png``."""
    text = "\n\n".join(block_markdown(block, figure_dir) for block in document(report)) + "\n"
    check_rendering(text, report, "Markdown")
    return text
