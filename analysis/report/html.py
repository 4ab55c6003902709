"""HTML writer: one self-contained file (inline CSS, figures as base64 PNG, no external assets).

Nothing is fetched from the network when the file is opened; URLs from the trial file (claim
sources) are shown as text, not as links or images.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping

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
from analysis.report.figures import render_figures
from analysis.report.sections import document
from analysis.report.transparency_section import check_rendering
from analysis.results import Report
from experiments.vocabulary import text_direction

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",Arial,sans-serif;
margin:0;color:#1b1b1b;background:#fff}
main{max-width:1280px;margin:0 auto;padding:1.5rem 1.25rem 4rem}
h1{font-size:1.6rem;margin:.2rem 0 .6rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;
margin-top:2.2rem}h3{margin-top:1.6rem}h4{margin:1.2rem 0 .4rem}
nav{font-size:.9rem;margin:.4rem 0 1rem}nav a{margin-right:.9rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.82rem;display:block;overflow-x:auto}
p.caption{font-style:italic;margin:.8rem 0 .2rem;color:#444;font-size:.9rem}
th,td{border:1px solid #d0d0d0;padding:.22rem .4rem;vertical-align:top}
th{background:#f3f3f3;text-align:left}td.num{text-align:right;white-space:nowrap}td.short{white-space:nowrap}
p.note{color:#444;font-size:.92rem}
p.warning{background:#fff6df;border-left:5px solid #e0a800;padding:.5rem .75rem}
p.alarm{background:#fde8e8;border-left:6px solid #c62828;padding:.6rem .8rem;font-weight:600}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9rem;color:#444}
figure.picture img{max-width:16rem;max-height:12rem;border:1px solid #ddd}
blockquote{margin:.4rem 0 1rem;padding:.5rem .9rem;border-left:4px solid #8aa4c8;
background:#f6f8fb;white-space:pre-wrap}
.label{font-weight:600;font-size:.88rem;margin:.6rem 0 .1rem}
code{background:#f1f1f1;padding:0 .2rem;border-radius:3px}
td code,li code,p code{font-size:.74em;color:#555;white-space:nowrap}
#summary+p{font-size:1.05rem;font-weight:600}
"""
NAV = (
    ("summary", "Summary"),
    ("flow", "Flow"),
    ("results", "Results"),
    ("forest", "Effects"),
    ("checks", "Checks"),
    ("power", "Power"),
    ("transparency", "Transparency"),
)
_NUMERIC = re.compile(r"^[<+\-–−]?[\d,.]+(e[+-]\d+)?(%| pp)?( \[.*\])?$|^–$")


def _cell_class(text: str) -> str:
    return "num" if _NUMERIC.match(text) else "short" if len(text) <= 14 else "text"


def _inline(text: str) -> str:
    """Escape ``text``; a `code span` (an id: arm, trial, event) becomes small-print ``<code>``."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def block_html(block: Block, figures: Mapping[str, bytes]) -> str:
    """One block as HTML (text escaped)."""
    if isinstance(block, Heading):
        anchor, text = html.escape(block.anchor), html.escape(block.text)
        return f'<h{block.level} id="{anchor}">{text}</h{block.level}>'
    if isinstance(block, Paragraph):
        return f'<p class="{block.tone}">{_inline(block.text)}</p>'
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in block.columns)
        rows = "".join(
            "<tr>"
            + "".join(f'<td class="{_cell_class(c)}">{_inline(c)}</td>' for c in row)
            + "</tr>"
            for row in block.rows
        )
        caption = f'<p class="caption">{html.escape(block.caption)}</p>' if block.caption else ""
        return f"{caption}<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, FigureRef):
        data = base64.b64encode(figures[block.key]).decode("ascii")
        return (
            f'<figure id="figure-{block.key}"><img src="data:image/png;base64,{data}" '
            f'alt="{html.escape(block.alt)}"><figcaption>{html.escape(block.caption)}'
            "</figcaption></figure>"
        )
    if isinstance(block, Quote):
        label = f'<div class="label">{html.escape(block.label)}</div>' if block.label else ""
        lang = html.escape(block.language)
        return (
            f'{label}<blockquote lang="{lang}" dir="{text_direction(block.language)}">'
            f"{html.escape(block.text)}</blockquote>"
        )
    if isinstance(block, Picture):
        caption = f"<figcaption>{html.escape(block.caption)}</figcaption>"
        if not block.data:
            return f'<figure class="picture"><p class="warning">not stored</p>{caption}</figure>'
        source = f"data:{html.escape(block.media_type)};base64,{block.data}"
        return (
            f'<figure class="picture"><img src="{source}" alt="{html.escape(block.alt)}">'
            f"{caption}</figure>"
        )
    raise TypeError(f"unknown block {block!r}")


def render_html(report: Report, figures: Mapping[str, bytes] | None = None) -> str:
    """The whole report as one HTML page that needs no network.

    ``figures`` are the PNGs of :func:`~analysis.report.figures.render_figures`, when the caller
    has drawn them already (to write them as files too); otherwise they are drawn here.
    """
    if figures is None:
        figures = render_figures(report)
    body = "\n".join(block_html(block, figures) for block in document(report))
    nav = "".join(f'<a href="#{anchor}">{label}</a>' for anchor, label in NAV)
    page = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(report.title)}: trial report</title>\n<style>{CSS}</style>\n"
        f"</head>\n<body>\n<main>\n<nav>{nav}</nav>\n{body}\n</main>\n</body>\n</html>\n"
    )
    check_rendering(page, report, "HTML")
    return page
