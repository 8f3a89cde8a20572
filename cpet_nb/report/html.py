"""Small HTML pieces the report sections are made of: numbers with their units, tables,
scrolling boxes, notes and an embedded CSV download. Every text that comes from a file or a
user (names, messages, titles) is escaped here."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from ..io.exports import csv_bytes

#: Decimals shown per unit (numbers keep every digit in the CSV).
DECIMALS: dict[str, int] = {
    "mL/min": 0, "mL/kg/min": 1, "% of VO2peak": 1, "% of predicted": 1, "%": 1, "s": 0,
    "1/min": 0, "L/min": 1, "mmHg": 1, "W": 0, "km/h": 1, "mL/beat": 1, "kg": 1,
    "mL/min per W": 1, "mL/min per log10(L/min)": 0, "1/min per L/min": 1, "": 2,
}
#: What a missing value is shown as.
MISSING = "–"

#: The report's style: also emitted inside the document (:func:`style`), so that a notebook
#: opened in JupyterLab looks like the HTML file. Model values are blue, consensus values
#: green, everywhere.
CSS = """
.cpet h1 {margin-bottom: 0.2em}
.cpet .cpet-lead {font-size: 105%; max-width: 60em}
.cpet table.cpet-table {border-collapse: collapse; font-size: 85%; margin: 0.4em 0 1em 0}
.cpet table.cpet-table th, .cpet table.cpet-table td {border: 1px solid #d0d0d0;
  padding: 2px 6px; text-align: right; vertical-align: top}
.cpet table.cpet-table td {white-space: nowrap}
.cpet table.cpet-table td.cpet-wrap {white-space: normal; min-width: 16em}
.cpet table.cpet-compact {font-size: 78%}
.cpet table.cpet-compact th, .cpet table.cpet-compact td {padding: 1px 4px}
.cpet table.cpet-table th {background: #f0f0f0; position: sticky; top: 0; z-index: 1}
.cpet table.cpet-table td.cpet-text, .cpet table.cpet-table th.cpet-text,
  .cpet table td:first-child, .cpet table th:first-child {text-align: left}
.cpet table.cpet-table tr:nth-child(even) td {background: #fafafa}
.cpet .cpet-model {color: #1f4e8c}
.cpet th.cpet-model {background: #e3ecf7}
.cpet .cpet-consensus {color: #1d6b3a}
.cpet th.cpet-consensus {background: #e2f2e6}
.cpet th.cpet-method {background: #f4ecf7}
.cpet .cpet-final {color: #8a4b08}
.cpet th.cpet-final {background: #fbeedd}
.cpet .cpet-scroll {max-height: 26em; overflow: auto; border: 1px solid #d0d0d0;
  display: inline-block; max-width: 100%}
.cpet .cpet-scroll table.cpet-table {margin: 0}
.cpet .cpet-note {padding: 6px 10px; border-left: 4px solid #999; background: #f4f4f4;
  max-width: 60em}
.cpet .cpet-warning {border-left-color: #e9a03b; background: #fdf3e4}
.cpet .cpet-error {border-left-color: #c8553d; background: #fbe9e5}
.cpet .cpet-flag {color: #a33b25; font-weight: bold}
.cpet dl.cpet-facts {display: grid; grid-template-columns: max-content auto; gap: 2px 14px}
.cpet dl.cpet-facts dt {font-weight: bold; white-space: nowrap}
.cpet dl.cpet-facts dd {margin: 0}
@media print {.cpet .cpet-scroll {max-height: none; overflow: visible; border: none}
  .cpet table.cpet-table th {position: static}}
"""


def esc(text: Any) -> str:
    """``text`` as HTML text (``&``, ``<``, ``>`` and quotes escaped); None is empty."""
    return "" if text is None else html.escape(str(text))


def style() -> str:
    """The ``<style>`` element of :data:`CSS`."""
    return f"<style>{CSS}</style>"


def section(body: str) -> str:
    """``body`` inside the element the report's style applies to."""
    return f'<div class="cpet">{body}</div>'


def number(value: Any, unit: str = "", decimals: int | None = None) -> str:
    """A number as shown in a report: the unit's decimals (:data:`DECIMALS`), a minus sign,
    :data:`MISSING` when unknown.

    Examples
    --------
    >>> number(3456.7, "mL/min"), number(1.1234), number(float("nan"), "s"), number(-2.5, "%")
    ('3,457', '1.12', '–', '−2.5')
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        return MISSING
    if not math.isfinite(value):
        return MISSING
    places = DECIMALS.get(unit, 2) if decimals is None else decimals
    return f"{value:,.{places}f}".replace("-", "−")


def value(cell: Any, unit: str = "", kind: str = "number") -> str:
    """A results cell as shown: text escaped, a flag as yes or no, a count as a whole
    number, a number with its unit's decimals; :data:`MISSING` when unknown.

    Examples
    --------
    >>> value("<b>", kind="text"), value(1.0, kind="flag"), value(3.0, kind="count")
    ('&lt;b&gt;', 'yes', '3')
    """
    if isinstance(cell, str):
        return esc(cell)
    if cell is None or pd.isna(cell):
        return MISSING
    if kind == "flag":
        return "yes" if cell else "no"
    return number(cell, unit, decimals=0 if kind == "count" else None)


def with_unit(value: Any, unit: str) -> str:
    """``"3457 mL/min"``, or :data:`MISSING` alone when unknown."""
    shown = number(value, unit)
    return shown if shown == MISSING or not unit else f"{shown} {unit}"


def table(rows: Iterable[Sequence[str]], headers: Sequence[str], *,
          text_columns: Iterable[int] = (0,), wrap_columns: Iterable[int] = (),
          header_classes: Mapping[int, str] | None = None,
          group_row: Sequence[tuple[str, int, str]] | None = None, name: str = "",
          compact: bool = False) -> str:
    """An HTML table of cells that are already HTML (escape text with :func:`esc`).

    Parameters
    ----------
    rows : iterable of sequences of str
    headers : sequence of str
        Header cells (HTML).
    text_columns : iterable of int
        Columns aligned left (the rest are numbers, aligned right).
    wrap_columns : iterable of int
        Columns whose text may wrap (sentences); the others stay on one line.
    header_classes : mapping of int to str, optional
        A CSS class per column's header (``cpet-model``, ``cpet-consensus``).
    group_row : sequence of (text, span, class), optional
        A header row above ``headers`` grouping columns (e.g. "VT1, model").
    name : str
        The table's ``data-name`` (tests look tables up by it).
    compact : bool
        Smaller type (a wide table).
    """
    text = set(text_columns)
    wrap = set(wrap_columns)
    classes = dict(header_classes or {})

    def cell(tag: str, i: int, content: str, extra: str = "") -> str:
        kinds = [k for k in ("cpet-text" if i in text else "", "cpet-wrap" if i in wrap else "",
                             extra) if k]
        attribute = f' class="{" ".join(kinds)}"' if kinds else ""
        return f"<{tag}{attribute}>{content}</{tag}>"

    head = ""
    if group_row:
        head += "<tr>" + "".join(f'<th colspan="{span}" class="cpet-text {kind}">{label}</th>'
                                 for label, span, kind in group_row) + "</tr>"
    head += "<tr>" + "".join(cell("th", i, h, classes.get(i, ""))
                             for i, h in enumerate(headers)) + "</tr>"
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    kind = "cpet-table cpet-compact" if compact else "cpet-table"
    return (f'<table class="{kind}" data-name="{esc(name)}"><thead>{head}</thead>'
            f"<tbody>{body}</tbody></table>")


def scroll(content: str) -> str:
    """``content`` in a box that scrolls on screen and prints whole."""
    return f'<div class="cpet-scroll">{content}</div>'


def note(text_html: str, kind: str = "") -> str:
    """A boxed note; ``kind`` ``"warning"`` or ``"error"`` colours it."""
    extra = f" cpet-{kind}" if kind else ""
    return f'<p class="cpet-note{extra}">{text_html}</p>'


def facts(items: Iterable[tuple[str, str]]) -> str:
    """A list of ``(term, HTML description)`` pairs, two columns."""
    return ('<dl class="cpet-facts">'
            + "".join(f"<dt>{esc(term)}</dt><dd>{value}</dd>" for term, value in items)
            + "</dl>")


def csv_link(frame: pd.DataFrame, file_name: str, text: str, csv_dialect: str = "comma"
             ) -> str:
    """A link that saves ``frame`` as a CSV file from the page itself (a ``data:`` URI: it
    works offline, from an e-mail attachment as from a server).

    The CSV is what :func:`cpet_nb.io.exports.write_table` writes
    (:func:`~cpet_nb.io.exports.csv_bytes`): the dialect's separator, decimal mark and
    encoding, formula-like text neutralised.
    """
    payload = base64.b64encode(csv_bytes(frame, csv_dialect)).decode("ascii")
    return (f'<a download="{esc(file_name)}" href="data:text/csv;base64,{payload}">'
            f"{esc(text)}</a>")
