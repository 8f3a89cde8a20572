"""One test in a report: its section in a batch report, and the parts of its own report
(``test_report.ipynb``): a header, every measure with its method, every finding.

The figures are :mod:`.plots`' (this module imports Bokeh through it): a batch report's
section shows the test's summary and its domain probabilities (:func:`section_items`),
the test's own report every figure (:func:`~cpet_nb.report.plots.test_figures`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any

import pandas as pd

from .._version import __version__
from ..findings import CODES
from ..physiology.consensus import REVIEW_REASONS
from ..result import RESULT_COLUMNS
from . import html as h
from .columns import SOURCES, describe
from .job import JobData
from .plots import MAX_POINTS_PER_LINE, domain_figure, summary_html
from .sections import short_names
from .testdata import TestData, raised

#: Titles of the groups of :func:`measures_html`, by source.
SOURCE_TITLES = {"file": "The file", "review": "Review flags", "model": "Model (Oxynet)",
                 "consensus": "Consensus", "final": "Final (after expert review)",
                 "method": "Classical methods",
                 "measure": "Peak values, effort criteria, slopes"}
#: Columns shown elsewhere in a test's report (the findings have a table of their own).
NOT_MEASURES = frozenset({"findings", "file"})


def sections(data: JobData, max_points: int = MAX_POINTS_PER_LINE) -> Iterator[Any]:
    """Every test's section of a batch report, in input order (:func:`section_items`)."""
    tests = data.stored_tests()
    names = short_names([row["file"] for _, row in tests]).names
    for (idx, row), name in zip(tests, names, strict=True):
        yield from section_items(data, idx, row, name, max_points)


def section_items(data: JobData, idx: int, row: pd.Series, name: str,
                  max_points: int = MAX_POINTS_PER_LINE) -> list[Any]:
    """What a batch report's section of one test shows, in order: an anchor, the test's
    summary (status, every threshold estimate, review flags, findings) and its domain
    probabilities with the thresholds marked, or a note saying why there are none. ``name``
    is how the report's tables name the test (:func:`~cpet_nb.report.sections.short_names`).

    Returns
    -------
    list
        HTML strings and a Bokeh figure, for :func:`cpet_nb.report.display.show`.
    """
    shown = row.copy()  # the heading: its number in the job and its name without folders
    shown["file"] = f"{idx + 1}. {name}"
    items: list[Any] = [h.section(f'<div id="test-{idx}"></div>' + summary_html(shown))]
    curves = data.store.curves(data.job_id, idx)
    if curves is None:
        items.append(h.section(h.note("No domain probabilities: the model did not run on "
                                      "this test (the findings say why).")))
    else:
        items.append(domain_figure(TestData(shown, curves), max_points=max_points))
    return items


def test_header_html(data: JobData, test: TestData, entry: pd.Series, title: str = "",
                     now: datetime | None = None) -> str:
    """Title, job, date and the facts of one test; its review flags with the reasons."""
    now = now or datetime.now(timezone.utc)
    row = test.row
    flags = [describe(f).label for f in REVIEW_REASONS if raised(row.get(f))]
    review = (", ".join(flags) if flags else "no flag raised") if any(
        not pd.isna(row.get(f)) for f in REVIEW_REASONS) else "not assessed (not analysed)"
    facts = [
        ("Test", h.esc(row["file"])),
        ("Job", f"{h.esc(data.job_id)}, input {int(entry['idx']) + 1} of {len(data.files)}, "
                f"store {h.esc(data.store.path)}"),
        ("Result", f"{h.esc(row['status'])}; {h.esc(row.get('format') or 'format unknown')}, "
                   f"{h.esc(row.get('sampling') or 'sampling unknown')}, "
                   f"{h.with_unit(row.get('duration_s'), 's')}"),
        ("Review", f"<span class='cpet-flag'>{h.esc(review)}</span>" if flags else h.esc(review)),
        ("Breath data", h.esc(test.missing) if test.record is None else
         "read again from the file the job analysed (same sha256)"),
        ("Report", f"{now.strftime('%Y-%m-%d %H:%M')} UTC, cpet_nb {h.esc(__version__)}; "
                   f"analysed by cpet_nb {h.esc(data.job['cpet_nb_version'])}, model "
                   f"{h.esc(data.job['model_version'])}"),
    ]
    title = title or f"CPET test report: {PurePath(str(row['file'])).name}"
    return h.section(h.style() + f"<h1>{h.esc(title)}</h1>" + h.facts(facts))


test_header_html.__test__ = False  # a report section, not a pytest test


def measures_html(row: pd.Series) -> str:
    """Every column of the test's results row with its value, unit and method, grouped by
    who made the value (the file, review flags, model, consensus, methods, measures)."""
    groups = {source: [] for source in SOURCES}
    for name in RESULT_COLUMNS:
        if name in NOT_MEASURES:
            continue
        column = describe(name)
        groups[column.source].append([h.esc(column.label),
                                      h.value(row.get(name), column.unit, column.kind),
                                      h.esc(column.unit), h.esc(column.method)])
    body = "<h2 id='measures'>Every measure and how it was made</h2>"
    for source, rows in groups.items():
        if rows:
            body += f"<h3>{h.esc(SOURCE_TITLES[source])}</h3>" + h.table(
                rows, ["measure", "value", "unit", "method"], text_columns=(0, 2, 3),
                wrap_columns=(3,), name=f"measures-{source}")
    return h.section(body)


def findings_html(entry: pd.Series) -> str:
    """Every finding about the file (information included), with where and what it means."""
    findings = json.loads(entry["findings"]) if entry["findings"] else []
    body = "<h2 id='findings'>Every finding</h2>"
    if not findings:
        return h.section(body + "<p>No findings: nothing was wrong with this file or worth "
                                "noting.</p>")
    rows = [[h.esc(f["severity"]), h.esc(f["code"]), h.esc(f.get("column") or ""),
             h.esc("" if f.get("row") is None else f["row"]), h.esc(f["message"]),
             h.esc(CODES.get(f["code"], ""))] for f in findings]
    return h.section(body + h.table(rows, ["severity", "code", "column", "row", "message",
                                           "meaning"], text_columns=(0, 1, 2, 4, 5),
                                    wrap_columns=(4, 5), name="findings"))
