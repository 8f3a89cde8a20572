import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from samples import sample
from synthetic import ramp_test, write_canonical_csv

import cpet_nb
from cpet_nb.cli import main


@pytest.mark.slow
def test_analyze_pyoxynet_folder_writes_139_rows(tmp_path):
    out = tmp_path / "results.csv"
    folder = cpet_nb.datasets.pyoxynet_data_dir()
    proc = subprocess.run([sys.executable, "-m", "cpet_nb", "analyze", str(folder), "-o", str(out),
                           "-q"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out)
    assert table["file"].is_unique
    assert list(table.columns) == list(cpet_nb.RESULT_COLUMNS)
    tests = table[table["status"] != "skipped"]
    assert len(tests) == 139 and (tests["status"] != "error").all()
    assert tests["vt1_time_s"].notna().all() and tests["vt2_time_s"].notna().all()
    # the two statistics tables, the pickle and __init__.py are not tests: listed, with why
    skipped = table[table["status"] == "skipped"]
    assert len(skipped) == 4 and skipped["findings"].str.contains("not-a-cpet-export").all()
    assert skipped["vt1_time_s"].isna().all()
    for name in skipped["file"]:
        assert (f"skipped: {name}: not-a-cpet-export: skipped: no reader recognises it"
                in proc.stderr)
    assert "143 input(s)" in proc.stderr and " 0 error, 4 skipped" in proc.stderr


def test_bad_explicit_file_gets_an_error_row_and_batch_continues(tmp_path, ramp_csv, capsys):
    bad = tmp_path / "garbage.csv"
    bad.write_bytes(b"\x00\x01\x02 binary")
    out = tmp_path / "r.csv"
    gone = tmp_path / "gone.csv"
    assert main(["analyze", str(ramp_csv), str(bad), str(gone), "-o", str(out)]) == 0
    table = pd.read_csv(out).set_index("file")
    assert table.loc[str(ramp_csv), "status"] in ("ok", "warning")
    assert table.loc[str(bad), "status"] == "error"
    assert "unsupported-format" in table.loc[str(bad), "findings"]
    assert "file-not-found" in table.loc[str(tmp_path / "gone.csv"), "findings"]
    assert pd.isna(table.loc[str(bad), "vt1_time_s"])  # no numbers from a file with none
    err = capsys.readouterr().err
    assert "3 input(s)" in err and "1 ok, 0 warning, 2 error" in err
    assert f"error: {bad}: unsupported-format: not a recognised CPET export" in err


def test_analyze_help_lists_every_table_format(capsys):
    from cpet_nb.io.exports import TABLE_FORMATS

    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    output = text[text.index("-o OUTPUT, --output OUTPUT"):]
    for ending in TABLE_FORMATS:
        assert ending in output.split("(default")[0]


def test_analyze_refuses_an_unknown_table_ending_before_any_work(tmp_path, ramp_csv, capsys):
    out = tmp_path / "results.txt"
    assert main(["analyze", str(ramp_csv), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "must end in .csv, .json, .xlsx, .parquet" in err and "[1/1]" not in err
    assert not out.exists()


def test_exit_code_is_non_zero_when_nothing_could_be_analysed(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("t,VO2\n")
    assert main(["analyze", str(bad), "-o", str(tmp_path / "r.csv")]) == 1
    assert "no file could be analysed" in capsys.readouterr().err
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    assert main(["analyze", str(empty), "-o", str(tmp_path / "r2.csv")]) == 1
    assert "no CPET files found" in capsys.readouterr().err


def test_globs_folders_and_duplicates(tmp_path):
    for i in range(3):
        write_canonical_csv(ramp_test(seed=i), tmp_path / f"t{i}.csv")
    (tmp_path / "notes.txt").write_text("not a test")
    (tmp_path / ".hidden.csv").write_text("t,VO2\n")
    out = tmp_path / "out" / "r.json"
    assert main(["analyze", str(tmp_path / "t*.csv"), str(tmp_path), "-o", str(out), "-q"]) == 0
    rows = json.loads(out.read_text())
    # each test once (the glob and the folder name them both); the note is listed as
    # skipped; the hidden file is not an input
    assert [(r["file"].rsplit("/", 1)[1], r["status"]) for r in rows] == [
        ("t0.csv", "ok"), ("t1.csv", "ok"), ("t2.csv", "ok"), ("notes.txt", "skipped")]


def test_formula_like_file_names_are_neutralised_in_csv(tmp_path, ramp_csv):
    evil = tmp_path / "=HYPERLINK(1).csv"
    shutil.copy(ramp_csv, evil)
    out = tmp_path / "r.csv"
    assert main(["analyze", str(evil), "-o", str(out), "-q"]) == 0
    assert pd.read_csv(out)["file"].iloc[0] == str(evil)  # an absolute path starts with "/"
    rel = subprocess.run([sys.executable, "-m", "cpet_nb", "analyze", evil.name, "-o", "r2.csv",
                          "-q"], cwd=tmp_path, capture_output=True, text=True)
    assert rel.returncode == 0, rel.stderr
    assert pd.read_csv(tmp_path / "r2.csv")["file"].iloc[0] == "'=HYPERLINK(1).csv"


@pytest.mark.slow
def test_demo_makes_the_batch_report_of_a_batch(tmp_path):
    """cpet-nb demo: the bundled tests as a batch (a job store), its table, and the batch
    report with a section per test, not the old triage page."""
    run = subprocess.run([sys.executable, "-m", "cpet_nb", "demo", "--out", str(tmp_path),
                          "--limit", "3", "--workers", "1", "-q", "--csv-dialect", "semicolon"],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(tmp_path / "results.csv", sep=";", decimal=",", encoding="utf-8-sig")
    assert len(table) == 3 and table["vo2peak_ml_min"].gt(1000).all()
    assert cpet_nb.jobs(tmp_path / "jobs.sqlite")["status"].tolist() == ["done"]
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h1>CPET batch report: pyoxynet's bundled real tests</h1>" in html
    assert "cdn.bokeh.org" not in html and "require.min.js" not in html  # works offline
    assert html.index('id="quality"') < html.index('id="results"')  # quality first
    assert html.count("exercise-intensity domains (Oxynet model)") == 3  # every test
    assert "cpet-nb: report written in" in run.stderr


def test_formats_lists_readers(capsys):
    assert main(["formats"]) == 0
    assert "pyoxynet-csv" in capsys.readouterr().out


def test_lab_profile_saved_then_used_for_a_folder(tmp_path, monkeypatch, capsys):
    """A lab's own layout: semicolons, decimal commas, L/min and kPa, German headers."""
    monkeypatch.setenv("CPET_NB_PROFILES", str(tmp_path / "profiles"))
    lab = tmp_path / "lab"
    lab.mkdir()
    for i in range(2):
        frame = ramp_test(seed=i)
        export = pd.DataFrame({"Zeit": frame["t"], "VO2": frame["VO2"] / 1000,
                               "VCO2": frame["VCO2"] / 1000, "VE": frame["VE"],
                               "PetO2": frame["PetO2"] / 7.50062,
                               "PetCO2": frame["PetCO2"] / 7.50062})
        export.to_csv(lab / f"test{i}.txt", sep=";", decimal=",", index=False)
    mapping = {"channels": {"t": {"column": "Zeit", "unit": "s"},
                            "VO2": {"column": "VO2", "unit": "L/min"},
                            "VCO2": {"column": "VCO2", "unit": "L/min"},
                            "VE": {"column": "VE", "unit": "L/min"},
                            "PetO2": {"column": "PetO2", "unit": "kPa"},
                            "PetCO2": {"column": "PetCO2", "unit": "kPa"}},
               "delimiter": ";", "decimal": ","}
    mapping_file = tmp_path / "mapping.json"
    mapping_file.write_text(json.dumps(mapping))
    assert main(["profile", "save", "our_lab", str(mapping_file)]) == 0
    assert main(["profile", "list"]) == 0
    assert "our_lab" in capsys.readouterr().out
    # without the profile the folder holds nothing recognisable
    assert main(["analyze", str(lab), "-o", str(tmp_path / "none.csv"), "-q"]) == 1
    out = tmp_path / "r.csv"
    assert main(["analyze", str(lab), "--profile", "our_lab", "-o", str(out), "-q"]) == 0
    table = pd.read_csv(out)
    assert len(table) == 2 and set(table["format"]) == {"generic"}
    expected = cpet_nb.analyze_record(_canonical_copy(ramp_test(seed=0)))
    row = table.sort_values("file").iloc[0]
    assert row["vo2peak_ml_min"] == pytest.approx(expected.vo2peak_ml_min, rel=1e-9)
    assert main(["analyze", str(lab), "--profile", "nope", "-o", str(out)]) == 2
    assert "our_lab" in capsys.readouterr().err  # the known profiles are listed


def _canonical_copy(frame):
    from cpet_nb.record import CPETRecord, Metadata

    return CPETRecord(frame[["t", "VO2", "VCO2", "VE", "PetO2", "PetCO2"]].copy(),
                      Metadata(source_name="expected"))


def test_participants_table_overrides_file_weights(tmp_path):
    tests = sample("zan/ramptests")
    out = tmp_path / "r.csv"
    assert main(["analyze", str(tests / "01"), str(tests / "09"), "-o", str(out), "-q",
                 "--participants", str(tests / "participants.csv")]) == 0
    table = pd.read_csv(out).set_index("file")
    # participants.csv: test 1 bodymass 60.1 kg, test 9 48.8 kg (the ZAN files say 60 and 49)
    assert table.loc[str(tests / "01"), "weight_kg"] == 60.1
    assert table.loc[str(tests / "09"), "weight_kg"] == 48.8
    peak = table.loc[str(tests / "01")]
    assert peak["vo2peak_ml_kg_min"] == pytest.approx(peak["vo2peak_ml_min"] / 60.1)


def test_hr_file_fills_missing_cart_hr_for_one_test(tmp_path, capsys):
    zan = sample("zan/zan_ramp")
    tcx = sample("tcx/hr_ramp.tcx")
    out = tmp_path / "r.json"
    assert main(["analyze", str(zan), "-o", str(out), "-q",
                 "--hr-file", str(tcx)]) == 0
    row = json.loads(out.read_text())[0]
    assert "hr-alignment-assumed" in row["findings"]
    without = cpet_nb.read(zan)
    assert without.data["HR"].isna().all()  # the cart recorded no HR
    merged = cpet_nb.analyze(zan, hr_file=tcx)
    assert any(f.code == "hr-merged" for f in merged.findings)
    assert main(["analyze", str(zan), str(zan.parent / "ramptests" / "01"), "-o", str(out),
                 "--hr-file", str(tcx)]) == 2
    assert "exactly one input file" in capsys.readouterr().err


def test_analyze_reads_settings_from_a_config_file(tmp_path, ramp_csv):
    config = tmp_path / "cpet.toml"
    config.write_text('[cpet_nb]\nvo2peak_window = 10\nvo2peak_method = "time-binned"\n')
    default, configured = tmp_path / "default.csv", tmp_path / "configured.csv"
    assert main(["analyze", str(ramp_csv), "-o", str(default), "-q"]) == 0
    assert main(["analyze", str(ramp_csv), "-o", str(configured), "-q",
                 "--config", str(config)]) == 0
    assert (pd.read_csv(configured)["vo2peak_ml_min"][0]
            != pd.read_csv(default)["vo2peak_ml_min"][0])
    config.write_text("[cpet_nb]\nvo2peak_window = 0\n")
    assert main(["analyze", str(ramp_csv), "-o", str(configured), "--config", str(config)]) == 2


def test_analyze_runs_the_models_asked_for(tmp_path, bundled_tests, capsys):
    out = tmp_path / "r.csv"
    assert main(["analyze", str(bundled_tests[0]), "-o", str(out), "-q",
                 "--models", "cnn,nswis"]) == 0
    row = pd.read_csv(out).iloc[0]
    assert row["vt1_nswis_time_s"] > 0 and row["vt1_ensemble_time_s"] > 0
    assert row["vt1_time_s"] > 0 and pd.isna(row["vt1_ais_time_s"])
    assert row["model_version"].startswith("oxynet-cnn@") and "+oxynet-nswis@" in row[
        "model_version"]
    capsys.readouterr()
    assert main(["analyze", str(bundled_tests[0]), "-o", str(out), "--models", "cnn,gpt"]) == 2
    assert "models must be one or more of cnn, ais" in capsys.readouterr().err


def test_run_exports_and_summarises(tmp_path, bundled_tests, capsys):
    from cpet_nb.batch import engine

    out = tmp_path / "r.xlsx"
    code = main(["run", *map(str, bundled_tests[:3]), "--store", str(tmp_path / "s.sqlite"),
                 "--workers", "1", "-o", str(out), "-q", "--models", "cnn,lstmgru"])
    engine.shutdown()
    assert code == 0
    assert "3 input(s), job done" in capsys.readouterr().err
    table = pd.read_excel(out, engine="calamine")
    assert len(table) == 3 and table["vt2_lstmgru_time_s"].notna().all()
    assert main(["store", "check", "--store", str(tmp_path / "s.sqlite")]) == 0
    assert main(["run", "--store", str(tmp_path / "s.sqlite")]) == 2  # neither inputs nor JOB
