"""The sections of a batch report, as HTML made from a stored job (:class:`JobData`).

One function per section, in the order of the report: :func:`header_html` (title, date,
job, what the inputs came to), :func:`inputs_html` (every input with its state),
:func:`quality_html` (tests to review and why, findings by code, inputs not analysed),
:func:`cohort_html` (outcomes, distributions of the main measures), :func:`results_html`
(the results table, units in the headers, model and consensus values apart, the full table
as a CSV inside the page), :func:`review_html` (the reviewers' overrides: who, when, what
changed, why) and :func:`tests_html` (what the per-test part holds). The
processing statement is :mod:`.statement`. No Bokeh here: the notebook shows the figures of
:mod:`.plots` between these sections.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any

import pandas as pd

from .._version import __version__
from ..findings import CODES
from ..physiology.consensus import REVIEW_REASONS
from . import html as h
from .cohort import COHORT_MEASURES, distribution, outcome_counts
from .columns import describe
from .job import JobData
from .testdata import finding_codes, raised

#: Section anchors and titles, in order (the header's table of contents links to them).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("inputs", "1 Inputs"),
    ("quality", "2 Quality"),
    ("cohort", "3 Cohort summary"),
    ("results", "4 Results table"),
    ("review", "5 Expert review"),
    ("tests", "6 Tests one by one"),
    ("methods", "7 Processing statement"),
)
#: Review flags that single out a test, in the order the quality section sorts by; after
#: them, tests are ordered by their uncertainty (``review_uncertainty``: docs/accuracy.md).
SPECIFIC_FLAGS = ("review_vt_order", "review_model_swap", "review_vt_missing", "review_effort")
#: Columns of the results table in the report, grouped: (group title, CSS class, columns).
RESULTS_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Test", "", ("file", "status", "review")),
    ("Peak values", "", ("vo2peak_ml_min", "vo2peak_ml_kg_min", "hrpeak_bpm", "rerpeak")),
    ("VT1: model (Oxynet)", "cpet-model", ("vt1_time_s", "vt1_vo2_ml_min", "vt1_pct_vo2peak")),
    ("VT1: consensus", "cpet-consensus", ("vt1_consensus_time_s", "vt1_consensus_vo2_ml_min",
                                          "vt1_consensus_pct_vo2peak", "vt1_spread_ml_min")),
    ("VT2: model (Oxynet)", "cpet-model", ("vt2_time_s", "vt2_vo2_ml_min", "vt2_pct_vo2peak")),
    ("VT2: consensus", "cpet-consensus", ("vt2_consensus_time_s", "vt2_consensus_vo2_ml_min",
                                          "vt2_consensus_pct_vo2peak", "vt2_spread_ml_min")),
    ("VT1: final", "cpet-final", ("vt1_final_time_s", "vt1_final_vo2_ml_min", "vt1_source")),
    ("VT2: final", "cpet-final", ("vt2_final_time_s", "vt2_final_vo2_ml_min", "vt2_source")),
)
#: Most names listed inline (e.g. the inputs as given) before "and N more".
NAMES_SHOWN = 10


def heading(anchor: str) -> str:
    """The ``<h2>`` of section ``anchor`` (:data:`SECTIONS`), with its id."""
    title = dict(SECTIONS)[anchor]
    return f'<h2 id="{anchor}">{h.esc(title)}</h2>'


def header_html(data: JobData, title: str = "", now: datetime | None = None) -> str:
    """Title, date, job, software and what the inputs came to, with a guide to the labels
    and the table of contents."""
    job = data.job
    counts = outcome_counts(data.files)
    now = now or datetime.now(timezone.utc)
    title = title or f"CPET batch report: job {data.job_id}"
    given = [str(g) for g in job["inputs"].get("given", [])]
    participants = job["inputs"].get("participants")
    facts = [
        ("Job", f"{h.esc(data.job_id)} ({h.esc(job['status'])}), store {h.esc(data.store.path)}"),
        ("Analysed", f"{_when(job['created_at'])} to {_when(job['finished_at'])}, "
                     f"cpet_nb {h.esc(job['cpet_nb_version'])}"),
        ("Model", f"{h.esc(job['model_version'])}: the Oxynet CNN of pyoxynet 0.1.12 on "
                  "TensorFlow Lite"),
        ("Inputs given", _given(given)),
        ("Inputs", outcome_sentence(counts)),
        ("Participants table", f"{h.esc(participants['name'])} (sha256 "
                               f"{h.esc(participants['sha256'][:12])}…)" if participants
         else "none (subject data from the files)"),
        ("Report", f"{now.strftime('%Y-%m-%d %H:%M')} UTC, cpet_nb {h.esc(__version__)}"),
    ]
    unfinished = (h.note(f"This job is <b>{h.esc(job['status'])}</b>: "
                         f"{counts['pending'] + counts['cancelled']} input(s) have no result "
                         "yet. The report covers the stored results only.", "warning")
                  if job["status"] != "done" else "")
    guide = ("<p class='cpet-lead'>Every number below comes from the job store. Thresholds are "
             "labelled by who placed them: <span class='cpet-model'><b>model</b></span> is the "
             "Oxynet neural network's estimate, <span class='cpet-consensus'><b>consensus</b>"
             "</span> the weighted median of the model and the classical methods (V-slope, "
             "ventilatory equivalents, end-tidal pressures). The two can differ by hundreds of "
             "mL/min on the same test; the spread says by how much the estimates disagree. "
             "Final values are the consensus unless a reviewer overrode them (section 5 says "
             "who, when and why). Section 7 states how every value was made.</p>")
    contents = "<p>Contents: " + " · ".join(f'<a href="#{a}">{h.esc(t)}</a>'
                                           for a, t in SECTIONS) + "</p>"
    return h.section(h.style() + f"<h1>{h.esc(title)}</h1>" + unfinished + h.facts(facts)
                     + guide + contents)


def _when(stamp: str | None) -> str:
    """An ISO 8601 UTC time as ``2026-12-01 22:35:57 UTC``; unfinished for None."""
    if not stamp:
        return "(not finished)"
    return h.esc(datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M:%S UTC"))


def outcome_sentence(counts: dict[str, int]) -> str:
    """``"139 inputs: 139 analysed (130 ok, 9 warning), 0 error, 0 skipped"``, with the
    inputs still pending or cancelled when there are some.

    Examples
    --------
    >>> outcome_sentence({"inputs": 5, "ok": 2, "warning": 1, "error": 1, "skipped": 1,
    ...                   "pending": 0, "cancelled": 0, "reused": 2, "refused": 0})
    '5 inputs: 3 analysed (2 ok, 1 warning), 1 error, 1 skipped; 2 results reused from earlier jobs'
    """
    text = (f"{counts['inputs']} inputs: {counts['ok'] + counts['warning']} analysed "
            f"({counts['ok']} ok, {counts['warning']} warning), {counts['error']} error, "
            f"{counts['skipped']} skipped")
    if counts["pending"] or counts["cancelled"]:
        text += f", {counts['pending'] + counts['cancelled']} without a result (not analysed)"
    if counts["reused"]:
        text += f"; {counts['reused']} results reused from earlier jobs"
    return text


def inputs_html(data: JobData) -> str:
    """Every input, in order: its state, result status, format, size, analysis time and why
    it was not analysed or what was found."""
    names = short_names(data.files["name"])
    rows = []
    for (_, entry), name in zip(data.files.iterrows(), names.names, strict=True):
        findings = json.loads(entry["findings"]) if entry["findings"] else []
        rows.append([
            str(int(entry["idx"]) + 1), _name_cell(entry["name"], name),
            h.esc(entry["state"]), h.esc(entry["status"] or h.MISSING),
            h.esc(entry["device"] or h.MISSING), h.number(entry["size_bytes"] / 1000, decimals=1),
            h.number(entry["elapsed_s"], "s", decimals=2),
            h.esc(_first_problem(findings, entry["error"], entry["reused_from"])),
        ])
    headers = ["#", "input", "state", "result", "device", "size (kB)", "analysis (s)",
               "first warning or error"]
    where = (f"<p>Inputs in {h.esc(names.folder)}; hover over a name for its full path.</p>"
             if names.folder else "")
    return h.section(heading("inputs") + where + h.scroll(h.table(
        rows, headers, text_columns=(1, 2, 3, 4, 7), wrap_columns=(7,), name="inputs")))


def _name_cell(full: str, short: str) -> str:
    """A short name that shows its full path on hover."""
    return f'<span title="{h.esc(full)}">{h.esc(short)}</span>'


def _first_problem(findings: list[dict[str, Any]], error: str | None,
                   reused_from: str | None) -> str:
    problems = [f for f in findings if f.get("severity") in ("warning", "error")]
    if problems:
        first = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"{first['severity']} {first['code']}: {first['message']}{more}"
    if error:
        return error
    return f"result reused from job {reused_from}" if reused_from else ""


def quality_html(data: JobData) -> str:
    """The tests to review first (specific flags first, then by uncertainty), with why; the
    findings by code; the inputs that were not analysed."""
    analysed = data.analysed
    flags = {f: _flag_column(analysed, f) for f in REVIEW_REASONS}
    flagged = analysed[pd.concat(flags.values(), axis=1).any(axis=1)] if len(analysed) else analysed
    counts = [[h.esc(describe(f).label), h.esc(describe(f).method), str(int(flags[f].sum()))]
              for f in REVIEW_REASONS]
    limit = data.settings.review_uncertainty_ml_min
    lead = (f"<p><b>{len(flagged)} of {len(analysed)} analysed tests are flagged for review."
            f"</b> Tests with a specific flag come first, then the others by the larger "
            f"uncertainty of their VT1 and VT2 (flagged above {limit:g} mL/min): work down "
            "the list.</p>")
    body = (heading("quality") + lead
            + h.table(counts, ["review flag", "raised when", "tests"], text_columns=(0, 1),
                      wrap_columns=(1,), name="review-flags")
            + "<h3>Tests flagged for review</h3>" + _flagged_table(flagged, flags)
            + "<h3>Findings by code</h3>" + _findings_table(data.results)
            + "<h3>Inputs not analysed</h3>" + _not_analysed(data))
    return h.section(body)


def _flag_column(table: pd.DataFrame, flag: str) -> pd.Series:
    return table[flag].fillna(False).astype(bool) if flag in table else pd.Series(
        False, index=table.index)


def _flagged_table(flagged: pd.DataFrame, flags: dict[str, pd.Series]) -> str:
    if flagged.empty:
        return "<p>No test is flagged for review.</p>"
    specific = sum(flags[f][flagged.index].astype(int) for f in SPECIFIC_FLAGS)
    uncertainty = flagged[["vt1_uncertainty_ml_min", "vt2_uncertainty_ml_min"]].max(axis=1)
    order = flagged.assign(_specific=specific, _uncertainty=uncertainty).sort_values(
        ["_specific", "_uncertainty"], ascending=False, kind="stable", na_position="first")
    names = short_names(order["file"]).names
    shown = ("vt1_vo2_ml_min", "vt1_consensus_vo2_ml_min", "vt1_uncertainty_ml_min",
             "vt2_vo2_ml_min", "vt2_consensus_vo2_ml_min", "vt2_uncertainty_ml_min")
    rows = []
    for (index, row), name in zip(order.iterrows(), names, strict=True):
        why = [describe(f).label for f in (*SPECIFIC_FLAGS, "review_uncertainty")
               if flags[f][index]]
        rows.append([h.esc(name), h.esc(row["status"]),
                     f"<span class='cpet-flag'>{h.esc(', '.join(why))}</span>",
                     *(h.number(row[c], describe(c).unit) for c in shown)])
    headers = ["test", "status", "why", *(describe(c).header for c in shown)]
    kinds = {3 + i: _css(c) for i, c in enumerate(shown)}
    return h.scroll(h.table(rows, headers, text_columns=(0, 1, 2), wrap_columns=(2,),
                            header_classes=kinds, name="flagged"))


def _css(column: str) -> str:
    source = describe(column).source
    return f"cpet-{source}" if source in ("model", "consensus", "final", "method") else ""


def _findings_table(results: pd.DataFrame) -> str:
    tests: dict[tuple[str, str], list[str]] = {}
    for name, text in zip(results["file"], results["findings"], strict=True):
        for key in dict.fromkeys(finding_codes(text)):
            tests.setdefault(key, []).append(str(name))
    if not tests:
        return "<p>No warnings or errors.</p>"
    order = sorted(tests, key=lambda k: (k[0] != "error", -len(tests[k]), k[1]))
    rows = [[h.esc(code), h.esc(severity), h.esc(CODES[code]), str(len(tests[(severity, code)])),
             h.esc(", ".join(short_names(tests[(severity, code)]).names[:3])
                   + (" …" if len(tests[(severity, code)]) > 3 else ""))]
            for severity, code in order]
    return h.table(rows, ["code", "severity", "meaning", "tests", "for example"],
                   text_columns=(0, 1, 2, 4), wrap_columns=(2, 4), name="findings")


def _not_analysed(data: JobData) -> str:
    files = data.files
    missing = files[files["state"].isin(["cancelled", "pending"])
                    | files["status"].isin(["error", "skipped"])]
    if missing.empty:
        return "<p>Every input was analysed.</p>"
    names = short_names(missing["name"]).names
    rows = [[h.esc(name), h.esc(entry["state"]), h.esc(entry["status"] or "no result"),
             h.esc(_first_problem(json.loads(entry["findings"]) if entry["findings"] else [],
                                  entry["error"], None) or "not analysed: the job was not "
                   "finished (resume it to analyse these inputs)")]
            for (_, entry), name in zip(missing.iterrows(), names, strict=True)]
    return h.scroll(h.table(rows, ["input", "state", "result", "why"],
                            text_columns=(0, 1, 2, 3), wrap_columns=(3,), name="not-analysed"))


def cohort_html(data: JobData) -> str:
    """What the inputs came to, and the distribution of VO2peak, VT1 and VT2 (model and
    consensus, absolute and as % of VO2peak), HRpeak and RERpeak over the analysed tests."""
    counts = outcome_counts(data.files)
    stats = distribution(data.analysed, COHORT_MEASURES)
    rows = []
    for name, row in stats.iterrows():
        column = describe(name)
        unit = column.unit
        n = int(row["n"])
        rows.append([h.esc(column.label), h.esc(unit), str(n),
                     f"{h.number(row['mean'], unit)} ± {h.number(row['sd'], unit)}",
                     f"{h.number(row['median'], unit)} ({h.number(row['q1'], unit)} to "
                     f"{h.number(row['q3'], unit)})",
                     f"{h.number(row['min'], unit)} to {h.number(row['max'], unit)}"])
    body = (heading("cohort")
            + f"<p>{h.esc(outcome_sentence(counts))}. Statistics over the "
              f"{len(data.analysed)} analysed tests (status ok or warning), flagged tests "
              "included; n counts the tests with a value (VO2peak per kg needs a body mass; "
              "a threshold no method found is missing).</p>"
            + h.table(rows, ["measure", "unit", "n", "mean ± SD", "median (IQR)", "range"],
                      text_columns=(0, 1), name="cohort"))
    return h.section(body)


def results_html(data: JobData) -> str:
    """The results table of the report (the main columns, units in the headers, model and
    consensus apart), a link that saves the whole table as CSV, and what each column is."""
    table = data.results
    columns = [c for _, _, group in RESULTS_GROUPS for c in group]
    names = short_names(table["file"]).names
    rows = []
    for (_, row), name in zip(table.iterrows(), names, strict=True):
        cells = []
        for column in columns:
            if column == "file":
                cells.append(_name_cell(row["file"], name))
            elif column == "review" and raised(row["review"]):
                cells.append("<span class='cpet-flag'>yes</span>")
            else:
                described = describe(column)
                cells.append(h.value(row[column], described.unit, described.kind))
        rows.append(cells)
    headers = [_short_header(c) for c in columns]
    kinds = {i: _css(c) for i, c in enumerate(columns)}
    groups = [(h.esc(title), len(group), kind) for title, kind, group in RESULTS_GROUPS]
    link = h.csv_link(table, f"results-{data.job_id}.csv",
                      f"results-{data.job_id}.csv: the whole table ({len(table.columns)} "
                      f"columns, every digit; {data.settings.csv_dialect} CSV dialect)",
                      data.settings.csv_dialect)
    legend = "".join(f"<dt>{h.esc(describe(c).header)}</dt><dd>{h.esc(describe(c).method)}</dd>"
                     for c in columns if describe(c).method)
    body = (heading("results")
            + f"<p>One row per input with a result. Save {link}. Blue columns are the "
              "model's, green ones the consensus, orange ones the final values (the "
              "consensus, or a reviewer's override: the source says which); – is a value "
              "that could not be computed (the findings say why).</p>"
            + h.scroll(h.table(rows, headers, text_columns=(0, 1, 2), header_classes=kinds,
                               group_row=groups, name="results", compact=True))
            + f"<details><summary>What each column is</summary><dl>{legend}</dl></details>")
    return h.section(body)


def review_html(data: JobData) -> str:
    """The reviewers' overrides of this job's thresholds, oldest first: test, threshold,
    reviewer, when, what changed (previous → new time and VO2, with their sources), note,
    and whether a later override replaced it. The machine's values stay in the results."""
    overrides = data.overrides
    body = heading("review")
    if overrides.empty:
        return h.section(body + "<p>No threshold was overridden: every final value is the "
                                "consensus.</p>")
    current = overrides[overrides["current"]]
    names = dict(zip(data.results["file"], short_names(data.results["file"]).names,
                     strict=True))
    rows = [[h.esc(names.get(o["file"], o["file"])), h.esc(o["threshold"].upper()),
             h.esc(o["reviewer"]), _when(o["created_at"]),
             f"{_change(o, 'time_s', 's')}<br>{_change(o, 'vo2_ml_min', 'mL/min')}",
             f"{h.esc(o['previous_source'] or 'none')} → {h.esc(o['source'])}",
             h.esc(o["note"] or ""), "yes" if o["current"] else "no (replaced)"]
            for _, o in overrides.iterrows()]
    lead = (f"<p><b>{len(current)} threshold(s) of "
            f"{current['file'].nunique()} test(s) overridden</b> by "
            f"{h.esc(', '.join(sorted(current['reviewer'].unique())))}, in "
            f"{len(overrides)} decision(s). The results table's final columns show the "
            "decisions in force; the machine's values (model, consensus, methods) are kept "
            "as computed. A decision follows the file's content and analysis key: it also "
            "applies to a resumed job or a later job of the same file and settings.</p>")
    table = h.table(rows, ["test", "threshold", "reviewer", "when", "previous → new",
                           "source", "note", "in force"],
                    text_columns=(0, 1, 2, 3, 5, 6, 7), wrap_columns=(6,), name="overrides")
    return h.section(body + lead + h.scroll(table))


def _change(override: pd.Series, value: str, unit: str) -> str:
    """``"404.5 → 400 s"``: the previous and new value of an override."""
    return (f"{h.number(override[f'previous_{value}'], unit)} → "
            f"{h.number(override[value], unit)} {h.esc(unit)}")


#: Headers inside a threshold's group of the results table, by the column's ending.
GROUP_HEADERS = (("_pct_vo2peak", "% VO2peak"), ("_spread_ml_min", "spread (mL/min)"),
                 ("_vo2_ml_min", "VO2 (mL/min)"), ("_time_s", "time (s)"),
                 ("_source", "source"))


def _short_header(column: str) -> str:
    """The header of a results column inside its group: ``"VO2 (mL/min)"`` under "VT1:
    model", the label and unit elsewhere."""
    if column.startswith(("vt1_", "vt2_")):
        short = next((text for ending, text in GROUP_HEADERS if column.endswith(ending)), None)
        if short:
            return h.esc(short)
    return h.esc(describe(column).header)


def tests_html(data: JobData, per_test: str, zip_name: str = "") -> str:
    """The opening of the per-test part: what it holds for ``per_test`` (``none``,
    ``sections`` or ``zip``)."""
    n = len(data.stored_tests())
    if per_test == "sections":
        text = (f"One section per input with a result ({n}): its results with every "
                "threshold estimate, its review flags and findings, and the model's domain "
                "probabilities with the thresholds marked (solid: model, dashed: consensus). "
                "The nine-panel breath-data plots of each test are in its own report "
                "(per_test='zip', or notebooks/test_report.ipynb).")
    elif per_test == "zip":
        text = (f"One HTML report per test ({n}) is in {h.esc(zip_name) or 'the ZIP file'} "
                "beside this report: every plot, every measure with its method, every "
                "finding.")
    else:
        text = ("Not included (per_test='none'). per_test='sections' adds one section per "
                "test to this document; per_test='zip' writes one report per test.")
    return h.section(heading("tests") + f"<p>{text}</p>")


def per_test_heading_html(idx: int, row: pd.Series) -> str:
    """The heading of one test's section, with its id (``test-<idx>``)."""
    return h.section(f'<h3 id="test-{idx}">{idx + 1}. {h.esc(row["file"])}</h3>')


@dataclass(frozen=True)
class ShortNames:
    """Input names as a table shows them: without the folder they all share.

    Attributes
    ----------
    folder : str
        The folder common to every name (empty when there is none).
    names : list of str
    """

    folder: str
    names: list[str]


def short_names(names: Sequence[str] | pd.Series) -> ShortNames:
    """``names`` without the folder they all share (when there is one).

    Examples
    --------
    >>> s = short_names(["/data/lab/a.csv", "/data/lab/b/c.csv"])
    >>> s.folder, s.names
    ('/data/lab', ['a.csv', 'b/c.csv'])
    >>> short_names(["a.csv", "b.csv"]).folder
    ''
    """
    names = [str(n) for n in names]
    parents = {str(PurePath(n).parent) for n in names}
    if not names or parents == {"."}:
        return ShortNames("", names)
    try:
        folder = os.path.commonpath([str(PurePath(n).parent) for n in names])
    except ValueError:  # absolute and relative names mixed
        return ShortNames("", names)
    if folder in ("", "/", "."):
        return ShortNames("", names)
    return ShortNames(folder, [str(PurePath(n).relative_to(folder)) for n in names])


def _given(given: list[str]) -> str:
    """The inputs as given (files, folders, globs, archives): the first few by name, the
    folder they share said once."""
    if not given:
        return "none recorded"
    names = short_names(given)
    shown = ", ".join(h.esc(n) for n in names.names[:NAMES_SHOWN])
    more = len(given) - NAMES_SHOWN
    where = f" in {h.esc(names.folder)}" if names.folder else ""
    return (f"{len(given)}{where}: " if len(given) > 1 else "") + shown + (
        f" and {more} more" if more > 0 else "") + (where if len(given) == 1 else "")
