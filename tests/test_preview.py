"""preview_inputs: every input gets a row, read (never analysed), with plain reasons."""

from __future__ import annotations

import zipfile

import pytest
from samples import sample

from cpet_nb.batch import Upload, preview_inputs
from cpet_nb.batch.preview import PREVIEW_COLUMNS, PREVIEW_STATES
from cpet_nb.settings import Settings


@pytest.fixture()
def lab(tmp_path, bundled_tests):
    """A folder with a test, a README and a ZIP holding a test, a note and an unsafe
    member; an empty folder; a missing file and a glob that matches nothing."""
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "ramp.csv").write_bytes(bundled_tests[0].read_bytes())
    (folder / "README.md").write_text("# what these files are\n")
    with zipfile.ZipFile(folder / "visit.zip", "w") as archive:
        archive.write(bundled_tests[1], "visit/p02.csv")
        archive.writestr("visit/notes.txt", "no data here")
        archive.writestr("../escape.csv", "t,VO2\n")
    (tmp_path / "empty").mkdir()
    return folder


def test_every_input_has_a_row_with_its_state_and_reason(lab, tmp_path):
    inputs = [lab, tmp_path / "empty", tmp_path / "missing.csv", str(tmp_path / "*.nothing")]
    table = preview_inputs(inputs).set_index("input")
    assert list(table.reset_index().columns) == list(PREVIEW_COLUMNS)
    assert set(table["state"]) <= set(PREVIEW_STATES)
    states = table["state"].to_dict()
    assert states == {
        str(lab / "ramp.csv"): "ready",
        str(lab / "visit.zip") + "/visit/p02.csv": "ready",
        str(tmp_path / "missing.csv"): "error",
        str(lab / "README.md"): "skipped",
        str(lab / "visit.zip") + "/visit/notes.txt": "skipped",
        str(lab / "visit.zip") + "/../escape.csv": "error",  # the unsafe member, by name
        str(tmp_path / "empty"): "error",
        str(tmp_path / "*.nothing"): "error",
    }
    reasons = table["reason"].to_dict()
    assert reasons[str(lab / "ramp.csv")] == ""
    assert "no reader recognises it" in reasons[str(lab / "README.md")]
    assert "path" in reasons[str(lab / "visit.zip") + "/../escape.csv"]
    assert "no such file" in reasons[str(tmp_path / "missing.csv")]
    assert "holds no files" in reasons[str(tmp_path / "empty")]
    assert "matches no file" in reasons[str(tmp_path / "*.nothing")]
    codes = {name: [f["code"] for f in found] for name, found in table["findings"].items()}
    assert codes[str(tmp_path / "missing.csv")] == ["file-not-found"]
    assert codes[str(lab / "visit.zip") + "/../escape.csv"] == ["unsafe-archive-member"]
    assert codes[str(lab / "README.md")] == ["not-a-cpet-export"]


def test_ready_rows_say_what_the_file_holds(bundled_tests):
    [row] = preview_inputs([bundled_tests[0]]).to_dict("records")
    assert row["format"] == "pyoxynet-csv" and row["sampling"] == "1 s grid"
    assert row["duration_s"] > 300
    assert row["channels"][:5] == ["VO2", "VCO2", "VE", "PetO2", "PetCO2"]
    assert "t" not in row["channels"]


def test_a_file_without_end_tidal_pressures_says_the_model_cannot_run():
    [row] = preview_inputs([sample("cosmed/omnia_de_10s.xlsx")]).to_dict("records")
    assert row["state"] == "ready" and row["format"] == "cosmed-omnia"
    assert row["sampling"].startswith("averaged") and "PetO2" not in row["channels"]
    blockers = [f for f in row["findings"] if f["code"] == "missing-channel"
                and "thresholds unavailable" in f["message"]]
    assert blockers and blockers[0]["file"] == row["input"]


def test_uploads_are_named_as_the_batch_names_them(bundled_tests, lab):
    uploads = [Upload("p01.csv", bundled_tests[0].read_bytes()),
               Upload("../../visit.zip", (lab / "visit.zip").read_bytes()),
               Upload("notes.md", b"just words\n")]
    table = preview_inputs(uploads)
    assert table[["input", "state"]].values.tolist() == [  # in the order of a batch's rows
        ["p01.csv", "ready"], ["visit.zip/../escape.csv", "error"],
        ["visit.zip/visit/notes.txt", "skipped"], ["visit.zip/visit/p02.csv", "ready"],
        ["notes.md", "error"]]  # named explicitly: the batch gives it an error row
    shown = table.to_json()
    assert "cpet_nb-preview-" not in shown and "upload-" not in shown  # no scratch paths


def test_settings_change_what_is_ready_and_progress_is_reported(bundled_tests):
    seen = []
    table = preview_inputs(bundled_tests[:3], Settings(max_file_mb=0.01),
                           progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert (table["state"] == "error").all()
    assert {f["code"] for found in table["findings"] for f in found} == {"file-too-large"}
