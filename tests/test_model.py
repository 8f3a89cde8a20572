import hashlib
import importlib
import itertools
import json
import os
import subprocess
import sys
from importlib import resources

import numpy as np
import pytest

import cpet_nb
from cpet_nb.model import (
    MODEL_NAMES,
    OxynetModel,
    RuntimeMissing,
    bundled_model_version,
    get_model,
    interpreter_class,
)
from cpet_nb.model import oxynet as oxynet_module
from cpet_nb.model import runtime as runtime_module
from cpet_nb.model.oxynet import (
    MAX_DEFAULT_THREADS,
    WINDOWS_PER_INVOKE,
    cgroup_cpus,
    model_threads,
)
from cpet_nb.model.pipeline import model_input
from cpet_nb.model.runtime import THREADS_ENV

#: pyoxynet's folder of each model (the provenance must name it).
PYOXYNET_FOLDERS = {"cnn": "regressor", "ais": "AIS", "nswis": "NSWIS", "tcn": "TCN",
                    "lstmgru": "LSTMGRUModel", "murias_lab": "murias_lab"}


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shipped_model_matches_its_provenance_record(name):
    package = resources.files("cpet_nb.model")
    provenance = json.loads(package.joinpath(f"oxynet_{name}.provenance.json").read_text())
    data = package.joinpath(f"oxynet_{name}.tflite").read_bytes()
    assert hashlib.sha256(data).hexdigest() == provenance["output_sha256"]
    assert len(data) == provenance["output_bytes"] < 400_000
    assert provenance["source_version"] == "0.1.12"
    assert provenance["source_folder"] == f"pyoxynet/{PYOXYNET_FOLDERS[name]}"
    assert provenance["tensorflow_version"] == "2.15.1"
    assert set(provenance["source_files_sha256"]) == {
        "saved_model.pb", "keras_metadata.pb", "variables/variables.data-00000-of-00001",
        "variables/variables.index"}
    check = provenance["check"]
    assert check["windows"] == 96425  # every window of the 139 bundled tests
    assert check["max_abs_difference_vs_tensorflow"] < 1e-5
    assert check["stateless_across_invokes"] is True


def test_the_cnn_is_still_the_file_shipped_before_other_models_came():
    assert get_model().info.version == "oxynet-cnn@5d9e0c62b9a3"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_batched_inference_equals_one_window_at_a_time(name):
    """Also shows that no model keeps state from one invoke to the next (a static-batch
    fused LSTM does, and drifts)."""
    model = get_model(name)
    rng = np.random.default_rng(0)
    windows = rng.uniform(0, 1, (37, 40, 5)).astype(np.float32)
    batched = model.predict(windows)
    single = np.concatenate([model.predict(w[None]) for w in windows])
    assert batched.shape == (37, 3)
    np.testing.assert_allclose(batched, single, atol=1e-6)
    np.testing.assert_array_equal(model.predict(windows), batched)
    assert np.all((batched >= 0) & (batched <= 1))
    if model.provenance["output"]["activation"] == "softmax":
        np.testing.assert_allclose(batched.sum(axis=1), 1, atol=1e-5)
    assert model.predict(np.empty((0, 40, 5))).shape == (0, 3)


def test_models_are_told_apart_and_loaded_once_each():
    models = [get_model(name) for name in MODEL_NAMES]
    assert [m.name for m in models] == list(MODEL_NAMES)
    assert len({m.info.sha256 for m in models}) == len(MODEL_NAMES)
    assert all(get_model(m.name) is m for m in models)
    windows = np.random.default_rng(1).uniform(0, 1, (5, 40, 5)).astype(np.float32)
    scores = [m.predict(windows) for m in models]
    assert all(np.abs(a - b).max() > 1e-3 for a, b in itertools.pairwise(scores))


def test_unknown_model_names_are_refused():
    with pytest.raises(ValueError, match="model must be one of cnn, ais"):
        get_model("resnet")


def test_versions_of_several_models_without_loading_them():
    assert bundled_model_version() == get_model().info.version
    assert bundled_model_version(["ais", "cnn"]) == (
        f"{get_model('ais').info.version}+{get_model('cnn').info.version}")


def test_a_damaged_model_file_is_refused(monkeypatch):
    record = dict(oxynet_module.read_provenance("ais"), output_sha256="0" * 64)
    monkeypatch.setattr(oxynet_module, "read_provenance", lambda name: record)
    with pytest.raises(RuntimeError, match="oxynet_ais.tflite is damaged"):
        oxynet_module.OxynetModel("ais")


def test_model_runs_on_the_requested_runtime():
    """CI runs this file once per runtime, selected with CPET_NB_TFLITE_RUNTIME."""
    wanted = os.environ.get("CPET_NB_TFLITE_RUNTIME", "ai-edge-litert")
    assert get_model().info.runtime == wanted


def test_model_is_loaded_once_per_process():
    assert get_model() is get_model()
    assert get_model().info.version.startswith("oxynet-cnn@")


def test_rejects_wrong_window_shape():
    with pytest.raises(ValueError, match=r"\[n, 40, 5\]"):
        get_model().predict(np.zeros((3, 30, 5)))


def test_missing_runtime_names_what_to_install(monkeypatch):
    real_import = importlib.import_module

    def no_tflite(name, *args):
        if name.endswith(".interpreter"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args)

    monkeypatch.setattr(runtime_module.importlib, "import_module", no_tflite)
    with pytest.raises(RuntimeMissing, match="pip install ai-edge-litert"):
        interpreter_class()


def test_runtime_can_be_forced_by_environment(monkeypatch):
    monkeypatch.setenv("CPET_NB_TFLITE_RUNTIME", "no-such-runtime")
    with pytest.raises(ValueError, match="unknown TFLite runtime"):
        interpreter_class()
    monkeypatch.setenv("CPET_NB_TFLITE_RUNTIME", "ai-edge-litert")
    name, cls = interpreter_class()
    assert name == "ai-edge-litert" and cls.__name__ == "Interpreter"


def _stderr_of(code: str) -> list[str]:
    """The stderr lines of a fresh Python process running ``code`` (the model is per process)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return done.stderr.splitlines()


def test_loading_the_model_prints_no_delegate_notice_and_stderr_still_works():
    lines = _stderr_of(
        "import os, sys\n"
        "import numpy as np\n"
        "from cpet_nb.model import OxynetModel\n"
        "os.write(2, b'native before\\n')\n"
        "model = OxynetModel()\n"
        "model.predict(np.zeros((2, 40, 5), dtype=np.float32))\n"
        "os.write(2, b'native after\\n')\n"
        "print('python after', file=sys.stderr)\n")
    assert lines == ["native before", "native after", "python after"]


def test_only_the_delegate_notice_is_held_back():
    lines = _stderr_of(
        "import os, sys\n"
        "from cpet_nb.model.runtime import DELEGATE_NOTICE, without_delegate_notice\n"
        "with without_delegate_notice():\n"
        "    os.write(2, b'native inside\\n' + DELEGATE_NOTICE + b'\\n')\n"
        "    print('python inside', file=sys.stderr)\n"
        "try:\n"
        "    with without_delegate_notice():\n"
        "        raise KeyError('boom')\n"
        "except KeyError:\n"
        "    pass\n"
        "print('python after', file=sys.stderr)\n")
    assert lines == ["native inside", "python inside", "python after"]


class _FailsToAllocate:
    """A real interpreter whose ``allocate_tensors`` fails after the input was resized, as
    TFLite's does at a memory limit."""

    def __init__(self, *args, **kwargs):
        self._interpreter = interpreter_class()[1](*args, **kwargs)

    def allocate_tensors(self):
        raise RuntimeError("XNNPack delegate failed to reshape runtime")

    def __getattr__(self, name):
        return getattr(self._interpreter, name)


class _FailsToInvokeOnce:
    """A real interpreter whose next ``invoke`` fails."""

    def __init__(self, interpreter):
        self._interpreter = interpreter
        self._failed = False

    def invoke(self):
        if not self._failed:
            self._failed = True
            raise RuntimeError("invoke failed")
        return self._interpreter.invoke()

    def __getattr__(self, name):
        return getattr(self._interpreter, name)


def test_a_failed_allocation_is_a_memory_error():
    model = OxynetModel()
    model._interpreter_class = _FailsToAllocate
    model._interpreter = None  # as after a failure: the next call loads a new one
    with pytest.raises(MemoryError, match=f"{WINDOWS_PER_INVOKE} windows"):
        model.predict(np.zeros((3, 40, 5), dtype=np.float32))


def test_a_failed_invoke_leaves_the_model_usable_and_right():
    model = OxynetModel()
    windows = np.random.default_rng(1).uniform(0, 1, (80, 40, 5)).astype(np.float32)
    expected = model.predict(windows)
    model._interpreter = _FailsToInvokeOnce(model._interpreter)
    with pytest.raises(RuntimeError, match="invoke failed"):
        model.predict(windows)
    np.testing.assert_array_equal(model.predict(windows), expected)


class _RecordsBatches:
    def __init__(self, interpreter):
        self._interpreter = interpreter
        self.resized = []
        self.sizes = []

    def resize_tensor_input(self, index, shape):
        self.resized.append(shape[0])
        return self._interpreter.resize_tensor_input(index, shape)

    def set_tensor(self, index, value):
        self.sizes.append(len(value))
        return self._interpreter.set_tensor(index, value)

    def __getattr__(self, name):
        return getattr(self._interpreter, name)


def test_tests_of_any_length_go_through_one_batch_size_with_the_same_scores(monkeypatch):
    """The interpreter never resizes (a resize costs about an invoke); the padding of the
    last batch changes no score."""
    rng = np.random.default_rng(2)
    tests = [rng.uniform(0, 1, (n, 40, 5)).astype(np.float32)
             for n in (2 * WINDOWS_PER_INVOKE + 7, 5, WINDOWS_PER_INVOKE)]
    model = OxynetModel()
    recorder = model._interpreter = _RecordsBatches(model._interpreter)
    scores = [model.predict(windows) for windows in tests]
    assert recorder.resized == []
    assert recorder.sizes == [WINDOWS_PER_INVOKE] * (3 + 1 + 1)
    for windows, got in zip(tests, scores, strict=True):
        monkeypatch.setattr(oxynet_module, "WINDOWS_PER_INVOKE", len(windows))
        np.testing.assert_array_equal(got, OxynetModel().predict(windows))  # one batch


def test_the_interpreter_uses_the_cpus_the_process_may_use(monkeypatch, tmp_path):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    expected = min(len(os.sched_getaffinity(0)), cgroup_cpus() or 64, MAX_DEFAULT_THREADS)
    assert model_threads() == expected
    assert OxynetModel().num_threads == expected
    with monkeypatch.context() as patch:
        patch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
        patch.setattr(oxynet_module, "cgroup_cpus", lambda: None)
        assert model_threads() == MAX_DEFAULT_THREADS  # a big machine: no more than helps
        patch.setattr(oxynet_module, "cgroup_cpus", lambda: 1)
        assert model_threads() == 1  # a container with one CPU's quota on that machine
    quota = tmp_path / "cpu.max"
    for text, cpus in (("150000 100000\n", 2), ("50000 100000", 1), ("max 100000", None),
                       ("", None)):
        quota.write_text(text)
        assert cgroup_cpus(str(quota)) == cpus
    assert cgroup_cpus(str(tmp_path / "absent")) is None
    monkeypatch.setenv(THREADS_ENV, "1")
    assert OxynetModel().num_threads == 1
    assert OxynetModel(num_threads=2).num_threads == 2
    monkeypatch.setenv(THREADS_ENV, "")
    assert model_threads() == expected
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=THREADS_ENV):
            model_threads()


@pytest.mark.parametrize("name", ["cnn", "lstmgru"])
def test_scores_do_not_depend_on_the_thread_count(name, bundled_tests):
    """Bitwise: the full check on all 139 bundled tests and every model is in
    docs/performance.md."""
    one, two = OxynetModel(name, num_threads=1), OxynetModel(name, num_threads=2)
    for path in bundled_tests[:3]:
        windows = model_input(cpet_nb.read(path)).windows
        np.testing.assert_array_equal(one.predict(windows), two.predict(windows))
