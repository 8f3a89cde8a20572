"""Convert pyoxynet's classic Oxynet CNN (``pyoxynet/regressor``) to TFLite.

Run in a throwaway virtual environment that has TensorFlow; cpet_nb itself never
imports TensorFlow::

    python3 -m venv /tmp/tf-venv
    /tmp/tf-venv/bin/pip install "tensorflow-cpu==2.15.1" "pandas<3" "pyoxynet==0.1.12"
    /tmp/tf-venv/bin/python tools/convert_pyoxynet_model.py

TensorFlow 2.15 is the last release whose built-in Keras 2 loads pyoxynet's SavedModels
(with TF >= 2.16 ``pyoxynet.load_tf_model`` silently returns None unless ``tf_keras`` is
installed and ``TF_USE_LEGACY_KERAS=1``). pandas<3 because pyoxynet's code uses pandas 2 APIs.

The script writes ``cpet_nb/model/oxynet_cnn.tflite`` and, beside it,
``oxynet_cnn.provenance.json`` (pyoxynet version, sha256 of every source file, TensorFlow
version, sha256 of the output, and the largest difference between TensorFlow and TFLite
outputs over every window of pyoxynet's bundled tests).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import sys
from importlib import metadata, resources
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyoxynet  # noqa: E402
import tensorflow as tf  # noqa: E402

N_PAST_POINTS = 40
INPUT_CHANNELS = ["VO2_I", "VCO2_I", "VE_I", "PetO2_I", "PetCO2_I"]
OUT_DIR = Path(__file__).resolve().parents[1] / "cpet_nb" / "model"
SOURCE_FILES = [
    "saved_model.pb",
    "keras_metadata.pb",
    "variables/variables.data-00000-of-00001",
    "variables/variables.index",
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_hashes() -> dict[str, str]:
    """sha256 of the SavedModel files as pyoxynet ships them (flat, in ``regressor/``)."""
    package = resources.files("pyoxynet.regressor")
    return {name: sha256(package.joinpath(Path(name).name).read_bytes()) for name in SOURCE_FILES}


def load_keras_model() -> tf.keras.Model:
    with contextlib.redirect_stdout(io.StringIO()):  # pyoxynet prints a banner
        model = pyoxynet.load_tf_model(n_inputs=5, past_points=N_PAST_POINTS, model="CNN")
    if model is None:
        sys.exit("pyoxynet.load_tf_model returned None: use tensorflow-cpu==2.15.1")
    return model


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


def max_abs_difference(model: tf.keras.Model, tflite_bytes: bytes, windows: np.ndarray) -> float:
    expected = model.predict(windows, batch_size=4096, verbose=0)
    interpreter = tf.lite.Interpreter(model_content=tflite_bytes)
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], windows.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], windows)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    return float(np.max(np.abs(got - expected)))


def main() -> None:
    model = load_keras_model()
    tflite_bytes = convert(model)
    windows = bundled_windows()
    diff = max_abs_difference(model, tflite_bytes, windows)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "oxynet_cnn.tflite").write_bytes(tflite_bytes)
    provenance = {
        "model": "Oxynet CNN (pyoxynet/regressor), 3 sigmoid outputs",
        "source_package": "pyoxynet",
        "source_version": metadata.version("pyoxynet"),
        "source_licence": "MIT (see LICENSE-pyoxynet.txt)",
        "source_files_sha256": source_hashes(),
        "converter": "tf.lite.TFLiteConverter.from_concrete_functions, TFLITE_BUILTINS only",
        "tensorflow_version": tf.__version__,
        "python_version": platform.python_version(),
        "input": {"shape": [None, N_PAST_POINTS, 5], "dtype": "float32",
                  "channels": ["VO2", "VCO2", "VE", "PetO2", "PetCO2"],
                  "scaling": "min-max over the whole test, per channel"},
        "output": {"shape": [None, 3], "dtype": "float32"},
        "output_sha256": sha256(tflite_bytes),
        "output_bytes": len(tflite_bytes),
        "check": {"windows": int(len(windows)), "max_abs_difference_vs_tensorflow": diff},
    }
    (OUT_DIR / "oxynet_cnn.provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance, indent=2))


if __name__ == "__main__":
    main()
