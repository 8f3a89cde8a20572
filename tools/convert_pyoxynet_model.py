"""Convert pyoxynet's threshold models to TFLite, each with its provenance record.

Run in a throwaway virtual environment that has TensorFlow; cpet_nb itself never
imports TensorFlow::

    python3 -m venv /tmp/tf-venv
    /tmp/tf-venv/bin/pip install "tensorflow-cpu==2.15.1" "pandas<3" "pyoxynet==0.1.12"
    /tmp/tf-venv/bin/python tools/convert_pyoxynet_model.py            # every model
    /tmp/tf-venv/bin/python tools/convert_pyoxynet_model.py ais nswis  # some of them

TensorFlow 2.15 is the last release whose built-in Keras 2 loads pyoxynet's SavedModels
(with TF >= 2.16 ``pyoxynet.load_tf_model`` silently returns None unless ``tf_keras`` is
installed and ``TF_USE_LEGACY_KERAS=1``). pandas<3 because pyoxynet's code uses pandas 2 APIs.

For each model NAME (:data:`SOURCES`) the script writes ``cpet_nb/model/oxynet_NAME.tflite``
and, beside it, ``oxynet_NAME.provenance.json``: pyoxynet's version, the sha256 of every
source file, the TensorFlow version, the sha256 of the output, and the largest difference
between the TensorFlow model that pyoxynet runs and the TFLite model over every window of
pyoxynet's bundled tests.

Each model is rebuilt the way ``pyoxynet.load_tf_model`` rebuilds it: the SavedModel is
loaded with Keras and its weights are set into pyoxynet's own class (``pyoxynet.model.Model``
for the CNN-type models, ``pyoxynet.model.LSTMGRUModel`` for the recurrent ones). Two
exceptions:

* ``tcn``: pyoxynet's ``load_tf_model(model="TCN")`` returns None (its ``TCN`` class does
  not fit the weights; a bare ``except`` hides the error). The SavedModel in pyoxynet's
  ``TCN`` folder holds the Oxynet CNN's layers and weight shapes, and its own serving
  signature gives the same outputs as ``pyoxynet.model.Model`` with those weights (the
  difference is recorded as ``serving_signature_max_abs_difference``), so it is rebuilt as
  a CNN.
* the recurrent models are converted from a copy with ``unroll=True`` LSTM and GRU layers
  holding the same weights: the fused (not unrolled) recurrent ops convert only with a static
  batch, and such a model keeps its state from one ``invoke`` to the next.

Not converted (not threshold models): pyoxynet's ``generator`` (a conditional GAN generator
that makes synthetic CPET windows from noise and domain labels) and ``transformer`` (named
in ``load_tf_model``, but its file ``regressor/transformer.pickle`` is not in the package).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import platform
import tempfile
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyoxynet  # noqa: E402, F401  (imported for its package data and classes)
import tensorflow as tf  # noqa: E402
from pyoxynet.model import LSTMGRUModel, Model  # noqa: E402

N_PAST_POINTS = 40
INPUT_CHANNELS = ["VO2_I", "VCO2_I", "VE_I", "PetO2_I", "PetCO2_I"]
OUT_DIR = Path(__file__).resolve().parents[1] / "cpet_nb" / "model"
SOURCE_FILES = [
    "saved_model.pb",
    "keras_metadata.pb",
    "variables/variables.data-00000-of-00001",
    "variables/variables.index",
]


@dataclass(frozen=True)
class Source:
    """One of pyoxynet's threshold models.

    Attributes
    ----------
    folder : str
        The package folder of its SavedModel (``pyoxynet/<folder>/``).
    pyoxynet_name : str
        Its ``model`` argument of ``pyoxynet.load_tf_model``.
    family : str
        ``"cnn"`` (``pyoxynet.model.Model``, 3 sigmoid outputs) or ``"recurrent"``
        (``pyoxynet.model.LSTMGRUModel``, 3 softmax outputs).
    description : str
    """

    folder: str
    pyoxynet_name: str
    family: str
    description: str


#: cpet_nb's name of each model and where pyoxynet keeps it.
SOURCES: dict[str, Source] = {
    "cnn": Source("regressor", "CNN", "cnn",
                  "Oxynet CNN (pyoxynet/regressor), 3 sigmoid outputs"),
    "ais": Source("AIS", "AIS", "cnn", "Oxynet CNN trained on data from the Australian "
                                       "Institute of Sport (pyoxynet/AIS), 3 sigmoid outputs"),
    "nswis": Source("NSWIS", "NSWIS", "cnn",
                    "Oxynet CNN trained on data from the New South Wales Institute of Sport "
                    "(pyoxynet/NSWIS), 3 sigmoid outputs"),
    "tcn": Source("TCN", "TCN", "cnn", "Oxynet CNN with the weights of pyoxynet/TCN "
                                       "(undocumented; the SavedModel holds a CNN, not a "
                                       "TCN), 3 sigmoid outputs"),
    "lstmgru": Source("LSTMGRUModel", "LSTMGRUModel", "recurrent",
                      "LSTM-GRU model (pyoxynet/LSTMGRUModel, undocumented), 3 softmax "
                      "outputs"),
    "murias_lab": Source("murias_lab", "murias_lab", "recurrent",
                         "LSTM-GRU model trained on data from Juan Murias's lab "
                         "(pyoxynet/murias_lab), 3 softmax outputs"),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_hashes(folder: str) -> dict[str, str]:
    """sha256 of the SavedModel files as pyoxynet ships them (flat, in ``pyoxynet/<folder>/``)."""
    package = resources.files(f"pyoxynet.{folder}")
    return {name: sha256(package.joinpath(Path(name).name).read_bytes()) for name in SOURCE_FILES}


def load_saved_model(folder: str) -> tf.keras.Model:
    """The SavedModel of ``pyoxynet/<folder>/`` loaded by Keras (laid out as Keras wants it)."""
    package = resources.files(f"pyoxynet.{folder}")
    target = Path(tempfile.mkdtemp()) / folder
    for name in SOURCE_FILES:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(package.joinpath(Path(name).name).read_bytes())
    with contextlib.redirect_stderr(io.StringIO()):  # "no training configuration" warning
        return tf.keras.models.load_model(target)


def pyoxynet_model(saved: tf.keras.Model, family: str) -> tf.keras.Model:
    """pyoxynet's class for ``family`` with the SavedModel's weights (as ``load_tf_model``)."""
    model = Model(n_classes=3, n_input=5) if family == "cnn" else LSTMGRUModel(n_input=5)
    model.build(input_shape=(1, N_PAST_POINTS, 5))
    model.set_weights(saved.get_weights())
    return model


def unrolled_copy(model: tf.keras.Model) -> tf.keras.Model:
    """The recurrent model with ``unroll=True`` layers and the same weights.

    Layer order follows ``LSTMGRUModel.call``: LSTM, GRU (both returning sequences), dropout
    (inactive at inference), mean over time, softmax dense layer.
    """
    lstm, gru, dense = model.lstm_layer, model.gru_layer, model.output_layer
    inputs = tf.keras.Input(shape=(N_PAST_POINTS, 5), dtype=tf.float32)
    x = tf.keras.layers.LSTM.from_config({**lstm.get_config(), "unroll": True})(inputs)
    x = tf.keras.layers.GRU.from_config({**gru.get_config(), "unroll": True})(x)
    x = tf.keras.layers.GlobalAveragePooling1D()(x)
    outputs = tf.keras.layers.Dense.from_config(dense.get_config())(x)
    copy = tf.keras.Model(inputs, outputs)
    copy.set_weights(lstm.get_weights() + gru.get_weights() + dense.get_weights())
    return copy


def convert(model: tf.keras.Model) -> bytes:
    @tf.function(input_signature=[tf.TensorSpec([None, N_PAST_POINTS, 5], tf.float32)])
    def serve(windows):
        return model(windows, training=False)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], model
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def bundled_windows() -> np.ndarray:
    """All windows that pyoxynet's own inference builds over its bundled tests."""
    folder = resources.files("pyoxynet.data_test")
    windows = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".csv") or entry.name.startswith("database_"):
            continue
        df = pd.read_csv(io.BytesIO(entry.read_bytes()))
        x = df[INPUT_CHANNELS].to_numpy(dtype=float)
        x = (x - x.min(axis=0)) / (x.max(axis=0) - x.min(axis=0))
        starts = np.arange(1, len(x) - N_PAST_POINTS)
        windows.append(np.stack([x[i : i + N_PAST_POINTS] for i in starts]))
    return np.concatenate(windows).astype(np.float32)


def tflite_outputs(tflite_bytes: bytes, windows: np.ndarray) -> np.ndarray:
    """The TFLite model's outputs for ``windows``, all in one ``invoke``."""
    interpreter = tf.lite.Interpreter(model_content=tflite_bytes)
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], windows.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], windows)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def max_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - b)))


def stateless(tflite_bytes: bytes, windows: np.ndarray) -> bool:
    """Whether invoking window by window, twice over, gives the batched outputs (a model
    that carries state from one ``invoke`` to the next does not)."""
    batched = tflite_outputs(tflite_bytes, windows)
    interpreter = tf.lite.Interpreter(model_content=tflite_bytes)
    inp = interpreter.get_input_details()[0]["index"]
    out = interpreter.get_output_details()[0]["index"]
    interpreter.resize_tensor_input(inp, [1, N_PAST_POINTS, 5])
    interpreter.allocate_tensors()
    single = []
    for window in np.concatenate([windows, windows]):
        interpreter.set_tensor(inp, window[None])
        interpreter.invoke()
        single.append(interpreter.get_tensor(out)[0])
    return max_abs_difference(np.tile(batched, (2, 1)), np.array(single)) < 1e-6


def convert_one(name: str, windows: np.ndarray) -> dict:
    """Convert model ``name``, write its ``.tflite`` and provenance; return the provenance."""
    source = SOURCES[name]
    saved = load_saved_model(source.folder)
    model = pyoxynet_model(saved, source.family)
    expected = model.predict(windows, batch_size=4096, verbose=0)
    signature = saved.signatures["serving_default"]
    served = np.concatenate([next(iter(signature(tf.constant(chunk)).values())).numpy()
                             for chunk in np.array_split(windows, 24)])
    converted = unrolled_copy(model) if source.family == "recurrent" else model
    tflite_bytes = convert(converted)
    got = tflite_outputs(tflite_bytes, windows)
    if not stateless(tflite_bytes, windows[:50]):
        raise SystemExit(f"{name}: the TFLite model keeps state between invokes")
    (OUT_DIR / f"oxynet_{name}.tflite").write_bytes(tflite_bytes)
    provenance = {
        "model": source.description,
        "name": name,
        "family": source.family,
        "source_package": "pyoxynet",
        "source_version": metadata.version("pyoxynet"),
        "source_folder": f"pyoxynet/{source.folder}",
        "source_licence": "MIT (see LICENSE-pyoxynet.txt)",
        "source_files_sha256": source_hashes(source.folder),
        "rebuilt_as": ("pyoxynet.model.Model" if source.family == "cnn" else
                       "pyoxynet.model.LSTMGRUModel; converted from a copy with "
                       "LSTM/GRU(unroll=True) and the same weights"),
        "converter": "tf.lite.TFLiteConverter.from_concrete_functions, TFLITE_BUILTINS only",
        "tensorflow_version": tf.__version__,
        "python_version": platform.python_version(),
        "input": {"shape": [None, N_PAST_POINTS, 5], "dtype": "float32",
                  "channels": ["VO2", "VCO2", "VE", "PetO2", "PetCO2"],
                  "scaling": "min-max over the whole test, per channel"},
        "output": {"shape": [None, 3], "dtype": "float32",
                   "activation": "sigmoid" if source.family == "cnn" else "softmax"},
        "output_sha256": sha256(tflite_bytes),
        "output_bytes": len(tflite_bytes),
        "check": {"windows": int(len(windows)),
                  "max_abs_difference_vs_tensorflow": max_abs_difference(got, expected),
                  "serving_signature_max_abs_difference": max_abs_difference(served, expected),
                  "stateless_across_invokes": True},
    }
    (OUT_DIR / f"oxynet_{name}.provenance.json").write_text(json.dumps(provenance, indent=2)
                                                            + "\n")
    return provenance


def model_names(description: str, what: str) -> list[str]:
    """The models named on the command line (all of :data:`SOURCES` when none is); an
    unknown name exits with a usage error that lists the known ones."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"{what} (default: all of {', '.join(SOURCES)})")
    names = parser.parse_args().names or list(SOURCES)
    unknown = sorted(set(names) - set(SOURCES))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(SOURCES)}")
    return names


def main() -> None:
    names = model_names(__doc__.split("\n")[0], "models to convert")
    windows = bundled_windows()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        provenance = convert_one(name, windows)
        print(name, provenance["output_sha256"], provenance["output_bytes"],
              json.dumps(provenance["check"]), flush=True)


if __name__ == "__main__":
    main()
