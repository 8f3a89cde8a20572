"""Bokeh plots built from a stored job (results row, domain curves, the file read again)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("bokeh")

from bokeh.models import Div, GridPlot, Legend, VSpan  # noqa: E402
from bokeh.plotting import figure  # noqa: E402
from synthetic import ramp_test, write_canonical_csv  # noqa: E402

import cpet_nb  # noqa: E402
from cpet_nb.batch.store import FileEntry, Outcome, Store  # noqa: E402
from cpet_nb.findings import Finding, Severity  # noqa: E402
from cpet_nb.physiology.consensus import REVIEW_REASONS  # noqa: E402
from cpet_nb.physiology.validate import screen_values  # noqa: E402
from cpet_nb.report import plots  # noqa: E402

ALL_BREATH_PANELS = {p.key for p in plots.PANELS}


def _commit(store: Store, items, settings=None) -> str:
    """A job in ``store`` holding ``(path, result)`` items, as a batch would store them."""
    entries = []
    for i, (path, _) in enumerate(items):
        content = path.read_bytes() if path.is_file() else b""
        entries.append(FileEntry(i, str(path), str(path), hashlib.sha256(content).hexdigest(),
                                 len(content)))
    job = store.new_job_id()
    store.create_job(job, entries, settings=(settings or cpet_nb.Settings()).to_dict(),
                     analysis_key="key", model_version="m", inputs={"given": []})
    store.commit(job, [Outcome(e.idx, r.renamed(e.name), "worker-1", 0.0, 0.1)
                       for e, (_, r) in zip(entries, items, strict=True)])
    return job


@pytest.fixture(scope="module")
def analysed(tmp_path_factory, bundled_tests):
    """Two real tests and one synthetic test without end-tidal pressures but with a work rate,
    copied to a folder of their own, and their results."""
    folder = tmp_path_factory.mktemp("tests")
    paths = [Path(shutil.copy(p, folder / p.name)) for p in bundled_tests[1:3]]
    no_end_tidal = folder / "no_end_tidal.csv"
    write_canonical_csv(ramp_test().drop(columns=["PetO2", "PetCO2"]), no_end_tidal)
    paths.append(no_end_tidal)
    return [(p, cpet_nb.analyze(p)) for p in paths]


@pytest.fixture(scope="module")
def job(tmp_path_factory, analysed):
    store = Store(tmp_path_factory.mktemp("store") / "jobs.sqlite")
    missing = tmp_path_factory.mktemp("gone") / "never_there.csv"
    return store, _commit(store, [*analysed, (missing, cpet_nb.analyze(missing))])


def _named(layout, kind=figure) -> dict:
    return {m.name: m for m in layout.select({"type": kind}) if m.name}


def _panels(layout) -> set[str]:
    return {name.removeprefix("panel-") for name in _named(layout)}


def test_panels_are_drawn_for_the_channels_present_and_only_those(job):
    store, job_id = job
    real = plots.test_figures(plots.TestData.from_store(store, job_id, 0))
    # pyoxynet's files have no tidal volume (VT): every other panel, and the domains
    assert _panels(real) == {"domains"} | ALL_BREATH_PANELS - {"vt_ve"}
    note = _named(real, Div)["missing-panels"].text
    assert "Tidal volume against VE (needs VE and VT)" in note
    layout = plots.test_figures(plots.TestData.from_store(store, job_id, 2))
    assert _panels(layout) == ALL_BREATH_PANELS - {"vt_ve", "end_tidal"}
    notes = _named(layout, Div)
    assert "the model did not run" in notes["missing-domains"].text  # no PetO2: no model
    assert "End-tidal pressures (needs PetO2 or PetCO2)" in notes["missing-panels"].text
    vo2 = _named(layout)["panel-vo2"]
    assert "right" in vo2.extra_y_ranges  # the work rate on its own axis, with its unit
    assert {r.name for r in vo2.renderers} >= {"VO2 (mL/min)", "VCO2 (mL/min)",
                                                "work rate (W)"}


def test_markers_sit_exactly_at_the_table_values_and_say_who_placed_them(job):
    store, job_id = job
    test = plots.TestData.from_store(store, job_id, 1)
    row = store.results(job_id).iloc[1]
    assert row["file"] == test.name
    layout = plots.test_figures(test)
    seen = set()
    for fig in _named(layout).values():
        for renderer in fig.renderers:
            if isinstance(renderer.glyph, VSpan):
                assert renderer.data_source.data["x"] == [row[renderer.name]]
                seen.add(renderer.name)
    expected = {c for c in plots.MARKERS if np.isfinite(row[c])}
    assert seen == expected and {"vt1_time_s", "vt1_consensus_time_s",
                                 "vt1_vslope_vo2_ml_min"} <= seen
    domains = _named(layout)["panel-domains"]
    labels = [item.label["value"] for item in domains.legend[0].items]
    assert f"VT1 model: {row['vt1_time_s']:,.0f} s" in labels
    assert f"VT2 consensus: {row['vt2_consensus_time_s']:,.0f} s" in labels
    vslope = _named(layout)["panel-vslope"]
    labels = [item.label["value"] for item in vslope.legend[0].items]
    assert f"VT1 V-slope (VCO2 vs VO2): {row['vt1_vslope_vo2_ml_min']:,.0f} mL/min" in labels
    assert vslope.xaxis[0].axis_label == "VO2 (mL/min)"
    assert domains.xaxis[0].axis_label == "time (s)"
    # the time axes are one range: zooming one zooms all
    assert domains.x_range is _named(layout)["panel-end_tidal"].x_range
    flags = [f.removeprefix("review_") for f in REVIEW_REASONS if row[f]]
    assert flags  # this test is flagged: the summary must say so, and why
    assert f"Review: {', '.join(flags)}." in _named(layout, Div)["summary"].text
    failed = plots.test_figures(plots.TestData.from_store(store, job_id, 3))
    assert "Review: not assessed." in _named(failed, Div)["summary"].text


def test_the_same_figures_from_an_in_memory_result(analysed):
    path, result = analysed[0]
    test = plots.TestData.from_result(result, cpet_nb.read(path))
    layout = plots.test_figures(test)
    spans = {r.name: r.data_source.data["x"] for f in _named(layout).values()
             for r in f.renderers if isinstance(r.glyph, VSpan)}
    assert spans["vt1_time_s"] == [result.vt1.time_s]
    assert spans["vt2_consensus_time_s"] == [result.consensus["vt2"].time_s]
    without = plots.test_figures(plots.TestData.from_result(result))
    assert _panels(without) == {"domains"}
    assert "were not given" in _named(without, Div)["missing-breath-data"].text


def legends_fit(layout, width_of) -> list[str]:
    """Names of figures in ``layout`` whose legend below is wider than ``width_of(fig)``."""
    return [fig.name for fig in layout.select({"type": figure})
            for legend in fig.below if isinstance(legend, Legend)
            if plots.legend_width_px(legend, legend.ncols) > width_of(fig)]


def uneven_grid_rows(layout) -> list[set]:
    """The figure heights of each grid row in ``layout`` whose figures differ in height."""
    rows: dict[tuple[int, int], set] = {}
    for i, grid in enumerate(layout.select({"type": GridPlot})):
        for fig, row, _ in grid.children:
            rows.setdefault((i, row), set()).add(fig.height)
    return [heights for heights in rows.values() if len(heights) > 1]


def test_legend_columns_shrink_to_the_figure_width():
    fig = figure(width=360, height=300)
    for i in range(4):
        fig.line([0, 1], [0, 1], legend_label=f"series {i}")
    plots._legend_below(fig, columns=2)
    assert fig.legend[0].ncols == 2 and fig.height == 300
    fig = figure(width=360, height=300)
    for i in range(4):
        fig.line([0, 1], [0, 1], legend_label=f"VT1 V-slope (VCO2 vs VO2): {i},118 mL/min")
    plots._legend_below(fig, columns=2)
    assert fig.legend[0].ncols == 1
    assert fig.height == 300 + 2 * plots.LEGEND_ROW_PX  # 4 rows, not 2: the plot keeps its size


def test_no_legend_overflows_its_figure_and_grid_rows_are_even(analysed):
    for path, result in analysed:
        layout = plots.test_figures(plots.TestData.from_result(result, cpet_nb.read(path)))
        assert legends_fit(layout, lambda fig: fig.width) == []
        assert uneven_grid_rows(layout) == []


def test_in_the_panel_legends_fit_the_least_width_a_figure_may_get(analysed):
    pytest.importorskip("jupyter_bokeh")
    from cpet_nb.ui._plots import fitted

    path, result = analysed[0]
    layout = plots.test_figures(plots.TestData.from_result(result, cpet_nb.read(path)))
    fitted(layout, min_width_px=240)
    assert legends_fit(layout, lambda fig: fig.min_width) == []
    widths = {fig.name: fig.min_width for fig in layout.select({"type": figure})}
    assert widths["panel-rer"] == 240 and widths["panel-vslope"] > 240  # its long labels
    assert uneven_grid_rows(layout) == []


def test_the_summary_gives_the_uncertainty_and_an_experts_value_in_force(analysed):
    """Review is set from the uncertainty: the summary shows it; an expert's decision in
    force is shown beside the machine's values, with its source."""
    _, result = analysed[0]
    row = cpet_nb.results_table([result]).iloc[0].to_dict()
    text = plots.summary_html(row)
    uncertainty = f"{row['vt1_uncertainty_ml_min']:,.0f} mL/min"
    assert "uncertainty of the consensus" in text and uncertainty in text
    assert "in force" not in text  # the consensus is what stands
    row |= {"vt2_source": "expert", "vt2_final_time_s": 612.0, "vt2_final_vo2_ml_min": 3456.0}
    text = plots.summary_html(row)
    assert "in force (VT1: consensus, VT2: expert)" in text and "3,456 mL/min" in text


def test_decimation_caps_the_points_and_keeps_every_extreme():
    rng = np.random.default_rng(1)
    x = np.arange(50_000.0)
    y = rng.normal(size=x.size)
    y[31_337], y[777] = 40.0, -40.0
    y[5] = np.nan
    xs, ys = plots.decimate(x, y, max_points=500)
    assert len(xs) <= 500 and np.all(np.diff(xs) > 0)
    assert ys.max() == 40.0 and xs[np.argmax(ys)] == 31_337.0
    assert ys.min() == -40.0 and np.isfinite(ys).all()
    short_x, short_y = plots.decimate(x[:300], y[:300], max_points=500)
    assert len(short_x) == 299  # whole, but for the missing value
    with pytest.raises(ValueError, match="at least 2"):
        plots.decimate(x, y, max_points=1)


def test_long_tests_are_thinned_for_display_only(job):
    store, job_id = job
    test = plots.TestData.from_store(store, job_id, 0)
    layout = plots.test_figures(test, max_points=120)
    vo2_peak = screen_values(test.record)[0].data["VO2"].max()
    for fig in _named(layout).values():
        for renderer in fig.renderers:
            if not isinstance(renderer.glyph, VSpan):
                assert len(renderer.data_source.data["x"]) <= 120
    vo2 = next(r for r in _named(layout)["panel-vo2"].renderers if r.name == "VO2 (mL/min)")
    assert max(vo2.data_source.data["y"]) == vo2_peak
    assert len(test.record.data) > 120  # the record itself is whole


def test_save_html_writes_an_offline_page_holding_the_data(tmp_path, job):
    store, job_id = job
    test = plots.TestData.from_store(store, job_id, 1)
    target = tmp_path / "pages" / "test.html"
    assert plots.save_html(plots.test_figures(test), target, "one test") == target
    page = target.read_text(encoding="utf-8")
    assert "cdn.bokeh.org" not in page and "<title>one test</title>" in page
    assert "Bokeh.embed" in page  # the library is inlined
    assert Path(test.name).name in page
    assert f"VT1 model: {test.row['vt1_time_s']:,.0f} s" in page
    assert [p.name for p in target.parent.iterdir()] == ["test.html"]  # no temporary left
    # a second page from fresh figures, and a batch page
    plots.save_html(plots.test_figures(test), target, "again")
    batch_page = plots.save_html(plots.batch_figures(store.results(job_id)).layout,
                                 tmp_path / "batch.html", "batch")
    assert "never_there.csv" in batch_page.read_text(encoding="utf-8")


def test_batch_sources_grow_as_results_are_streamed(job):
    store, job_id = job
    table = store.results(job_id)
    batch = plots.batch_figures(table.iloc[:0])
    assert len(batch.rows.data["file"]) == 0 and not batch.finding_counts.data["code"]
    for n in range(1, len(table) + 1):
        batch.stream(table.iloc[n - 1: n])
        assert len(batch.rows.data["file"]) == n
    vo2peak = table["vo2peak_ml_min"]
    assert sum(batch.vo2peak_bins.data["n_tests"]) == vo2peak.notna().sum() == 3
    assert list(batch.rows.data["vt1_consensus_pct_vo2peak"][:1]) == [
        table["vt1_consensus_pct_vo2peak"][0]]
    counts = dict(zip(batch.finding_counts.data["code"], batch.finding_counts.data["n_tests"],
                      strict=True))
    assert counts["file-not-found"] == 1
    assert counts["missing-channel"] == 1  # the synthetic test without end-tidal pressures
    figures = _named(batch.layout)
    assert set(figures) == {"batch-vo2peak", "batch-thresholds", "batch-findings"}
    assert list(figures["batch-findings"].y_range.factors) == batch.finding_counts.data["code"]
    assert figures["batch-vo2peak"].title.text == "VO2peak of 3 of 4 tests"


@pytest.mark.parametrize("how", ["deleted", "changed", "upload-removed"])
def test_a_test_whose_file_is_gone_or_changed_gets_a_placeholder(tmp_path, analysed, how):
    source, result = analysed[0]
    store = Store(tmp_path / "jobs.sqlite")
    copy = Path(shutil.copy(source, tmp_path / source.name))
    job_id = _commit(store, [(copy, result)])
    if how == "deleted":
        copy.unlink()
    elif how == "changed":
        copy.write_bytes(source.read_bytes().replace(b"\n", b"\r\n"))
    else:  # an upload's copy, deleted when its job was done
        with store.transaction() as db:
            db.execute("UPDATE files SET path = ? WHERE job_id = ?",
                       (str(store.upload_dir(job_id) / "upload-0" / source.name), job_id))
    test = plots.TestData.from_store(store, job_id, 0)
    assert test.record is None
    expected = {"deleted": "is no longer at", "changed": "has changed since it was analysed",
                "upload-removed": "keep_uploads=True"}[how]
    assert expected in test.missing
    layout = plots.test_figures(test)
    assert _panels(layout) == {"domains"}  # the stored curves are still drawn
    assert expected in _named(layout, Div)["missing-breath-data"].text
    assert plots.save_html(layout, tmp_path / "page.html", "gone").is_file()


def test_a_file_whose_analysis_was_stopped_is_not_read_again(tmp_path, analysed):
    source, _ = analysed[0]
    stopped = cpet_nb.FileResult.failed(str(source), [Finding(
        "file-timeout", Severity.ERROR, "stopped after 60 s", file=str(source))])
    store = Store(tmp_path / "jobs.sqlite")
    job_id = _commit(store, [(source, stopped)])
    test = plots.TestData.from_store(store, job_id, str(source))
    assert test.record is None and "stopped (file-timeout)" in test.missing
    layout = plots.test_figures(test)
    assert _panels(layout) == set()
    assert set(_named(layout, Div)) == {"summary", "missing-domains", "missing-breath-data"}


def test_a_job_with_a_lab_profile_reads_its_file_with_that_mapping(tmp_path):
    frame = ramp_test()
    path = tmp_path / "lab.txt"
    pd.DataFrame({"Zeit": frame["t"], "VO2": frame["VO2"] / 1000, "VCO2": frame["VCO2"] / 1000,
                  "VE": frame["VE"]}).to_csv(path, sep=";", decimal=",", index=False)
    mapping = cpet_nb.ColumnMapping(channels={"t": ("Zeit", "s"), "VO2": ("VO2", "L/min"),
                                              "VCO2": ("VCO2", "L/min"), "VE": "VE"},
                                    delimiter=";", decimal=",")
    settings = cpet_nb.Settings(profile=mapping.to_dict())
    store = Store(tmp_path / "jobs.sqlite")
    job_id = _commit(store, [(path, cpet_nb.analyze(path, mapping=mapping))], settings)
    test = plots.TestData.from_store(store, job_id, 0)
    assert test.missing is None
    np.testing.assert_allclose(test.record.data["VO2"], frame["VO2"], rtol=1e-9)
    assert _panels(plots.test_figures(test)) == {"ve", "vo2", "ve_vco2", "vslope",
                                                 "equivalents", "rer"}


def test_text_from_files_is_escaped(tmp_path, analysed):
    _, result = analysed[0]
    hostile = result.renamed("<img src=x onerror=alert(1)>.csv")
    hostile.findings = [Finding("unknown-column", Severity.WARNING,
                                "<script>alert(2)</script> ignored", file=hostile.file)]
    layout = plots.test_figures(plots.TestData.from_result(hostile))
    summary = _named(layout, Div)["summary"].text
    assert "<img" not in summary and "<script>" not in summary
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in summary
    assert "&lt;script&gt;alert(2)&lt;/script&gt; ignored" in summary


def test_unknown_store_job_or_file_and_files_without_results_are_refused(tmp_path, job):
    store, job_id = job
    with pytest.raises(FileNotFoundError, match="no job store"):
        plots.TestData.from_store(tmp_path / "nope.sqlite", job_id, 0)
    assert not (tmp_path / "nope.sqlite").exists()  # not created by asking
    with pytest.raises(KeyError, match="no job 'nope'"):
        plots.TestData.from_store(store, "nope", 0)
    with pytest.raises(KeyError, match="has no file 99"):
        plots.TestData.from_store(store.path, job_id, 99)
    pending = Store(tmp_path / "p.sqlite")
    path = tmp_path / "waiting.csv"
    write_canonical_csv(ramp_test(), path)
    new = pending.new_job_id()
    pending.create_job(new, [FileEntry(0, "waiting.csv", str(path), "x", 1)],
                       settings={}, analysis_key="k", model_version="m", inputs={})
    with pytest.raises(KeyError, match="no stored result .state pending"):
        plots.TestData.from_store(pending, new, "waiting.csv")


def test_finding_codes_ignore_text_that_only_looks_like_a_finding():
    text = ("warning unknown-column [column X]: ignored; see 'warning no-such-code: x'; "
            "error file-not-found: gone")
    assert plots.finding_codes(text) == [("warning", "unknown-column"),
                                         ("error", "file-not-found")]
    assert plots.finding_codes(None) == [] and plots.finding_codes("") == []


@pytest.mark.slow
def test_a_real_batch_with_an_upload_plots_from_its_store(tmp_path, bundled_tests):
    from cpet_nb.batch import engine

    tests = bundled_tests[:2]
    upload = cpet_nb.Upload("uploaded.csv", bundled_tests[3].read_bytes())
    batch = cpet_nb.submit([*tests, upload], store=tmp_path / "jobs.sqlite", workers=1)
    try:
        assert batch.wait().state == "done"
    finally:
        engine.shutdown()
    on_disk = plots.TestData.from_store(batch.store, batch.job_id, str(tests[1]))
    assert on_disk.record is not None and len(on_disk.curves) > 0
    uploaded = plots.TestData.from_store(str(batch.store.path), batch.job_id, "uploaded.csv")
    assert uploaded.record is None and "keep_uploads=True" in uploaded.missing
    assert uploaded.row["vt1_time_s"] == batch.results().iloc[2]["vt1_time_s"]
    page = plots.save_html(plots.column(plots.test_figures(on_disk),
                                        plots.test_figures(uploaded),
                                        plots.batch_figures(batch.results()).layout),
                           tmp_path / "job.html", "job")
    assert json.dumps("uploaded.csv")[1:-1] in page.read_text(encoding="utf-8")


def test_review_figures_mark_the_decision_in_force_and_a_picked_time(job):
    store, job_id = job
    row = store.results(job_id).iloc[0]
    figures = plots.review_figures(plots.TestData.from_store(store, job_id, 0))
    assert _panels(figures.layout) == {"domains", *plots.REVIEW_PANELS}
    timed = {f.name: f for f in figures.time_figures}
    assert set(timed) == {"panel-domains", "panel-equivalents", "panel-end_tidal", "panel-ve"}
    vt1 = f"VT1 final (consensus): {row['vt1_final_time_s']:,.0f} s"
    for fig in timed.values():
        assert vt1 in [item.label["value"] for item in fig.legend[0].items]
    vslope = _named(figures.layout)["panel-vslope"]
    assert f"VT1 final (consensus): {row['vt1_final_vo2_ml_min']:,.0f} mL/min" in [
        item.label["value"] for item in vslope.legend[0].items]
    figures.show_pick(400.0)
    for fig in timed.values():
        (pick,) = [r for r in fig.renderers if r.name == "pick"]
        assert pick.data_source is figures.pick and pick.data_source.data["x"] == [400.0]
    assert not [r for r in vslope.renderers if r.name == "pick"]  # not a time axis
    no_end_tidal = plots.review_figures(plots.TestData.from_store(store, job_id, 2))
    assert {f.name for f in no_end_tidal.time_figures} == {"panel-equivalents", "panel-ve"}
    gone = plots.review_figures(plots.TestData.from_store(store, job_id, 3))
    assert gone.time_figures == [] and "missing-breath-data" in _named(gone.layout, Div)
