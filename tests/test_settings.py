"""Settings: sources in order, validation that names the culprit, the analysis key."""

from __future__ import annotations

import json
import os

import pytest
from conftest import without_hanging

from cpet_nb.settings import Settings


def test_defaults_then_config_then_environment_then_arguments(tmp_path):
    config = tmp_path / "cpet.toml"
    config.write_text("[cpet_nb]\nfile_timeout_s = 90\nworkers = 3\nvo2peak_window = 20\n")
    environ = {"CPET_NB_WORKERS": "5", "CPET_NB_KEEP_UPLOADS": "yes",
               "CPET_NB_TFLITE_RUNTIME": "tflite-runtime"}  # not a setting: ignored
    settings = Settings.load(config, environ, vo2peak_window=15, retries=None)
    assert settings.file_timeout_s == 90  # config
    assert settings.workers == 5  # environment beats config
    assert settings.keep_uploads is True
    assert settings.vo2peak_window == 15  # argument beats both
    assert settings.retries == Settings().retries  # None means "not given"
    assert Settings.load(environ={"CPET_NB_CONFIG": str(config)}).workers == 3


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"file_timeout_s": 0}, "file_timeout_s must be positive"),
    ({"vo2peak_method": "median"}, "vo2peak_method must be one of"),
    ({"vo2peak_window": 0}, "vo2peak_window must be 1 to 600 (s or breaths)"),
    ({"ship_files": "email"}, "ship_files must be one of"),
    ({"partition_size": -1}, "partition_size must be 0 or more"),
    ({"colour": "blue"}, "unknown setting(s): colour"),
])
def test_invalid_values_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.load(environ={}, **kwargs)


def test_bad_sources_say_where(tmp_path):
    with pytest.raises(ValueError, match="environment variable CPET_NB_WORKERS: expected int"):
        Settings.load(environ={"CPET_NB_WORKERS": "two"})
    bad = tmp_path / "bad.toml"
    bad.write_text("[cpet_nb]\nworkers = 2.5\n")
    with pytest.raises(ValueError, match=f"config file {bad}: expected int"):
        Settings.load(bad, environ={})
    bad.write_text("workers = 2\n")
    with pytest.raises(ValueError, match=r"has no \[cpet_nb\] table"):
        Settings.load(bad, environ={})
    with pytest.raises(ValueError, match="does not exist"):
        Settings.load(tmp_path / "nope.toml", environ={})


def test_analysis_key_covers_what_changes_results_only():
    base = Settings()
    key = base.analysis_key("model@1")
    assert base.replace(workers=7, file_timeout_s=5, partition_size=3).analysis_key(
        "model@1") == key
    assert base.replace(vo2peak_window=20).analysis_key("model@1") != key
    assert base.replace(max_file_mb=50).analysis_key("model@1") != key
    assert base.analysis_key("model@2") != key


def test_round_trip_through_a_job_record():
    settings = Settings(file_timeout_s=12.5, vo2peak_method="breath-moving", vo2peak_window=15,
                        models=["ais", "cnn"])
    record = json.loads(json.dumps(settings.to_dict()))  # as a job stores it
    assert record["models"] == ["ais", "cnn"]
    assert Settings.from_dict(record | {"from_a_newer_version": 1}) == settings


def test_models_are_a_list_of_names_from_every_source(tmp_path):
    assert Settings().models == ("cnn",)
    assert Settings(models=["cnn", "ais"]).models == ("cnn", "ais")  # held as a tuple
    assert Settings.load(environ={"CPET_NB_MODELS": "nswis, cnn,"}).models == ("nswis", "cnn")
    config = tmp_path / "cpet.toml"
    config.write_text('[cpet_nb]\nmodels = ["lstmgru", "murias_lab"]\n')
    assert Settings.load(config, environ={}).models == ("lstmgru", "murias_lab")
    config.write_text('[cpet_nb]\nmodels = "cnn,ais"\n')  # text, as in the environment
    assert Settings.load(config, environ={}).models == ("cnn", "ais")
    config.write_text('[cpet_nb]\nmodels = 3\n')
    with pytest.raises(ValueError, match=f"setting 'models' in config file {config}: "
                                         "expected a list"):
        Settings.load(config, environ={})


@pytest.mark.parametrize(("value", "why"), [
    ("cnn", "it is not a list"),
    ([], "it is empty"),
    (["cnn", "CNN"], "'CNN' is not one"),
    (["ais", "ais"], "'ais' is repeated"),
])
def test_invalid_model_lists_say_what_is_wrong(value, why):
    with pytest.raises(ValueError, match=r"^models must be one or more of cnn, ais, nswis, tcn, "
                                         r"lstmgru, murias_lab, each at most once; got .* \("
                                         + why + r"\)$"):
        Settings(models=value)


def test_models_are_part_of_the_analysis_key():
    base = Settings()
    assert "models" in Settings.analysis_fields()
    assert base.replace(models=["cnn", "ais"]).analysis_key("m") != base.analysis_key("m")
    assert base.replace(models=("cnn",)).analysis_key("m") == base.analysis_key("m")


def _invalid_values(option):
    """Values that the declaration of ``option`` refuses (one per constraint)."""
    if option.kind is list:
        return [("not-a-choice",), "not-a-list", ()]
    if option.choices is not None:
        return ["not-a-choice"]
    values = []
    if option.low is not None:
        values.append(option.low if option.low_open else option.low - 1)
    if option.high is not None:
        values.append(option.high + 1)
    return values


@pytest.mark.parametrize("name", list(Settings.options()))
def test_every_declared_constraint_is_enforced(name):
    option = Settings.options()[name]
    for value in _invalid_values(option):
        with pytest.raises(ValueError, match=f"^{name} must be "):
            Settings(**{name: value})
    if option.kind in (int, float):
        with pytest.raises(ValueError, match=f"setting '{name}' in environment variable"):
            Settings.load(environ={f"CPET_NB_{name.upper()}": "twelve"})
    if not option.optional:
        assert getattr(Settings(), name) is not None


def test_declarations_make_the_docs_table_and_the_analysis_key():
    from pathlib import Path

    docs = (Path(__file__).parents[1] / "docs" / "batch.md").read_text(encoding="utf-8")
    assert Settings.markdown_table() in docs, "regenerate docs/batch.md's settings table"
    assert set(Settings.analysis_fields()) == {
        n for n, o in Settings.options().items() if o.analysis}
    assert "max_file_mb" in Settings.analysis_fields()
    assert "workers" not in Settings.analysis_fields()
    for name in Settings.options():
        assert f"    {name} : " in Settings.__doc__
def test_barometric_pressure_setting():
    assert Settings().barometric_pressure_mmhg is None
    settings = Settings.load(environ={"CPET_NB_BAROMETRIC_PRESSURE_MMHG": "713.5"})
    assert settings.barometric_pressure_mmhg == 713.5
    assert settings.analysis_key("model@1") != Settings().analysis_key("model@1")
    for wrong in (1013.25, 101.3):  # hPa, kPa: not mmHg
        with pytest.raises(ValueError, match="barometric_pressure_mmhg must be 350 to 850"):
            Settings(barometric_pressure_mmhg=wrong)
    with pytest.raises(ValueError, match="expected float"):
        Settings.load(environ={"CPET_NB_BAROMETRIC_PRESSURE_MMHG": "760 mmHg"})


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_config_file_is_refused_without_opening(tmp_path):
    config = tmp_path / "cpet.toml"
    os.mkfifo(config)
    with pytest.raises(ValueError, match=r"cpet.toml is a FIFO \(named pipe\), not a file"):
        without_hanging(Settings.load, config)
