"""The panel's review queue without a browser: a real small batch on a local cluster, the
queue's order, and each way of deciding (accept the consensus, pick a method, click a time
on a plot) storing an override while the machine's values stay as they were.

The figures' ``Tap`` callbacks are called as jupyter_bokeh calls them when the browser sends
the event (tests/test_browser.py clicks a real plot).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("jupyter_bokeh")

from bokeh.events import Tap  # noqa: E402
from jupyter_bokeh.widgets import BokehModel  # noqa: E402

import cpet_nb  # noqa: E402
from cpet_nb.analysis import record_as_analysed  # noqa: E402
from cpet_nb.physiology.thresholds import vo2_at  # noqa: E402
from cpet_nb.ui import Panel  # noqa: E402
from cpet_nb.ui._review import estimates  # noqa: E402

pytestmark = pytest.mark.slow

#: The machine's values of a test: never changed by a decision.
MACHINE_COLUMNS = [f"{vt}_{c}" for vt in ("vt1", "vt2")
                   for c in ("time_s", "vo2_ml_min", "consensus_time_s", "consensus_vo2_ml_min",
                             "vslope_time_s", "equivalents_time_s", "uncertainty_ml_min")]


@pytest.fixture(scope="module")
def batch(tmp_path_factory, bundled_tests):
    """Five of pyoxynet's tests analysed by a real batch on the embedded local cluster."""
    store = tmp_path_factory.mktemp("review") / "jobs.sqlite"
    job = cpet_nb.submit(bundled_tests[:5], store=store, workers=1)
    assert job.wait(600).state == "done"
    yield job
    cpet_nb.batch.engine.shutdown()


@pytest.fixture()
def panel(batch):
    """A panel on the batch's store, reviewer ``alice``."""
    panel = Panel(batch.store.path)
    assert panel.batch.job_id == batch.job_id
    panel.review.reviewer.value = "alice"
    return panel


def choose(panel: Panel, file: str, threshold: str) -> pd.Series:
    """Select ``file`` in the review queue and ``threshold``; its results row now."""
    queue = panel.review
    position = queue.table.frame["test"].tolist().index(file.rsplit("/", 1)[-1])
    queue.table.source.selected.indices = [position]
    queue.threshold.value = threshold
    assert queue.file == file and queue.detail.layout.display == "flex"
    return panel.batch.results(files=[file]).iloc[0]


def newest_override(batch) -> pd.Series:
    return batch.overrides().iloc[-1]


def assert_machine_values_kept(batch, before: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(batch.results()[MACHINE_COLUMNS], before[MACHINE_COLUMNS])


def shown(panel: Panel, file: str, table: str = "results") -> pd.Series:
    """The row of ``file`` as the results table (or the queue) shows it."""
    frame = (panel.results if table == "results" else panel.review.table).frame
    return frame.loc[frame["test"] == file.rsplit("/", 1)[-1]].iloc[0]


def test_the_queue_lists_flagged_tests_first_by_uncertainty(panel, batch):
    results = batch.results()
    analysed = results[results["status"].isin(["ok", "warning"])].copy()
    analysed["u"] = analysed[["vt1_uncertainty_ml_min", "vt2_uncertainty_ml_min"]].max(axis=1)
    flagged = analysed["review"].fillna(False).astype(bool)
    expected = [*analysed[flagged].sort_values("u", ascending=False)["file"],
                *analysed[~flagged].sort_values("u", ascending=False)["file"]]
    table = panel.review.table.frame
    assert table["test"].tolist() == [f.rsplit("/", 1)[-1] for f in expected]
    assert table["flag"].tolist() == ["⚑" if f else "" for f in sorted(flagged, reverse=True)]
    np.testing.assert_allclose(table["uncertainty_ml_min"], analysed.set_index("file").loc[
        expected, "u"])
    assert set(table["vt1_source"]) == {"consensus"}  # nothing decided yet
    assert f"<b>{int(flagged.sum())}</b> of {len(analysed)}" in panel.review.count.value
    assert panel.review.detail.layout.display == "none"  # until a test is selected


def test_selecting_a_test_shows_its_review_figures_and_estimates(panel, batch):
    file = batch.results()["file"].iloc[0]
    row = choose(panel, file, "vt1")
    review = panel.review
    (plots,) = review.plots.children
    assert isinstance(plots, BokehModel)
    names = {f.name for f in review.figures.time_figures}
    assert names == {"panel-domains", "panel-equivalents", "panel-end_tidal", "panel-ve"}
    labels = dict((method, label) for label, method in review.method.options)
    assert labels["vslope"] == (f"vslope: {row['vt1_vslope_time_s']:,.0f} s, "
                                f"{row['vt1_vslope_vo2_ml_min']:,.0f} mL/min")
    assert "model" in labels and "cnn" not in labels  # the model's vote, listed once
    assert all(math.isfinite(row[f"vt1_{m}_time_s"]) for m in labels if m != "model")
    assert f"{row['vt1_consensus_time_s']:,.0f} s" in review.accept.description
    assert review.time_s.value == f"{row['vt1_final_time_s']:g}"


def test_accepting_the_consensus_stores_an_override(panel, batch):
    before = batch.results()
    file = before["file"].iloc[1]
    row = choose(panel, file, "vt2")
    panel.review.note.value = "consensus looks right"
    n_before = len(batch.overrides())
    panel.review.accept.click()
    assert len(batch.overrides()) == n_before + 1
    stored = newest_override(batch)
    assert (stored["file"], stored["threshold"], stored["source"]) == (file, "vt2", "consensus")
    assert (stored["reviewer"], stored["note"]) == ("alice", "consensus looks right")
    assert stored["time_s"] == row["vt2_consensus_time_s"]
    assert "Stored: VT2" in panel.review.status.value and "by alice" in panel.review.status.value
    assert panel.review.note.value == ""  # a note goes with one decision
    assert_machine_values_kept(batch, before)


def test_picking_a_method_stores_its_estimate_and_the_tables_show_it(panel, batch):
    before = batch.results()
    file = before["file"].iloc[2]
    row = choose(panel, file, "vt2")
    options = estimates(row, "vt2", batch.settings)
    assert panel.review.method.value == options[0][1]  # the first is chosen, ready to use
    method = next(m for _, m in options if m != "model")
    panel.review.method.value = method
    panel.review.use.click()
    stored = newest_override(batch)
    assert (stored["file"], stored["threshold"], stored["source"]) == (file, "vt2", method)
    assert stored["time_s"] == row[f"vt2_{method}_time_s"]
    assert stored["vo2_ml_min"] == row[f"vt2_{method}_vo2_ml_min"]
    for table in ("results", "queue"):  # the final value and its source, at once
        now = shown(panel, file, table)
        assert now["vt2_source"] == method
        assert now["vt2_final_vo2_ml_min"] == pytest.approx(stored["vo2_ml_min"])
    assert panel._results.set_index("file").loc[file, "vt2_source"] == method
    legend = [item.label["value"] for fig in panel.review.figures.time_figures
              for item in fig.legend[0].items]
    assert f"VT2 final ({method}): {stored['time_s']:,.0f} s" in legend
    assert_machine_values_kept(batch, before)


def test_a_click_on_a_time_plot_sets_the_time_on_the_1_s_grid(panel, batch):
    before = batch.results()
    file = before["file"].iloc[3]
    choose(panel, file, "vt1")
    review = panel.review
    equivalents = next(f for f in review.figures.time_figures
                       if f.name == "panel-equivalents")
    equivalents._trigger_event(Tap(equivalents, x=400.3, y=30.0))
    assert review.time_s.value == "400"
    assert review.figures.pick.data["x"] == [400.0]  # drawn where it was clicked
    review.set_time.click()
    stored = newest_override(batch)
    assert (stored["file"], stored["threshold"], stored["source"]) == (file, "vt1", "expert")
    assert stored["time_s"] == 400.0 and stored["reviewer"] == "alice"
    expected_vo2 = vo2_at(record_as_analysed(file, batch.settings), 400.0)
    assert stored["vo2_ml_min"] == pytest.approx(expected_vo2)
    assert stored["previous_source"] == "consensus"
    now = shown(panel, file)
    assert (now["vt1_source"], now["vt1_final_vo2_ml_min"]) == ("expert", pytest.approx(
        expected_vo2))
    assert shown(panel, file, "queue")["vt1_final_time_s"] == 400.0
    assert review.time_s.value == "400"  # the controls show the decision in force
    assert_machine_values_kept(batch, before)


def test_a_bad_time_is_refused_and_nothing_is_stored(panel, batch):
    file = batch.results()["file"].iloc[4]
    choose(panel, file, "vt1")
    review, n_before = panel.review, len(batch.overrides())
    review.time_s.value = "four hundred"
    review.set_time.click()
    assert "not a time in seconds" in review.status.value
    review.time_s.value = "99999"
    review.set_time.click()
    assert "override-time-outside-test" in review.status.value
    review.reviewer.value = "bob"
    review.time_s.value = "350,6"  # a decimal comma is a decimal point
    review.set_time.click()
    assert len(batch.overrides()) == n_before + 1
    assert (newest_override(batch)["time_s"], newest_override(batch)["reviewer"]) == (
        351.0, "bob")
