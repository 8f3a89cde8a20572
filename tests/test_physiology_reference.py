"""The analysis gives today what it gave when the reference was stored, on every real test.

``tests/data/physiology_reference.jsonl.gz`` was written by ``tools/make_physiology_reference.py``
before the physiology moved onto shared arrays: the model's thresholds, every classical
estimate, the consensus and the values there, every measure, the review flags and the
findings' codes of pyoxynet's 139 bundled tests and of the real samples. Times must be equal,
other floats equal to 1e-9 relative (NaN equals NaN), text, flags and counts identical.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
from pathlib import Path

import pytest
from samples import sample

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "data" / "physiology_reference.jsonl.gz"
RELATIVE = 1e-9


def _tool():
    spec = importlib.util.spec_from_file_location(
        "make_physiology_reference", ROOT / "tools" / "make_physiology_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TOOL = _tool()
STORED = {entry["name"]: entry for entry in map(
    json.loads, gzip.decompress(REFERENCE.read_bytes()).decode().splitlines())}


def differences(expected, actual, where: str = "") -> list[str]:
    """Where ``actual`` differs from ``expected`` (times exactly, floats to 1e-9 relative)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            return [f"{where}: keys {sorted(expected)} != {sorted(actual)}"]
        return [d for key in expected
                for d in differences(expected[key], actual[key], f"{where}.{key}")]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {expected!r} != {actual!r}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in differences(e, a, f"{where}[{i}]")]
    if isinstance(expected, float) and isinstance(actual, float):
        if math.isnan(expected) and math.isnan(actual):
            return []
        exact = where.endswith("time_s")
        if expected == actual or (not exact and math.isclose(expected, actual,
                                                             rel_tol=RELATIVE, abs_tol=0.0)):
            return []
        return [f"{where}: {expected!r} != {actual!r}"]
    if type(expected) is not type(actual) or expected != actual:
        return [f"{where}: {expected!r} != {actual!r}"]
    return []


def test_differences_tells_times_from_other_floats():
    assert differences({"time_s": 1.0, "vo2_ml_min": 1.0, "n": [math.nan]},
                       {"time_s": 1.0, "vo2_ml_min": 1.0 + 1e-12, "n": [math.nan]}) == []
    assert differences({"time_s": 1.0}, {"time_s": 1.0 + 1e-12}) == [
        ".time_s: 1.0 != 1.000000000001"]
    assert differences({"x": 1.0}, {"x": 1.0 + 1e-6}) != []
    assert differences({"flag": True}, {"flag": 1.0}) != []
    assert differences({"reason": None}, {"reason": "too few points"}) != []


def test_reference_covers_every_bundled_test():
    import cpet_nb

    bundled = {p.name for p in cpet_nb.datasets.pyoxynet_tests()}
    assert len(bundled) == 139 and bundled <= set(STORED)


@pytest.mark.parametrize("case", TOOL.cases(TOOL.SAMPLES), ids=lambda c: c["name"])
def test_analysis_matches_stored_reference(case):
    if case["source"] == "samples":
        sample(case["path"])  # skips without the samples folder
    if case["name"] not in STORED:
        pytest.fail(f"{case['name']} has no stored reference: rerun "
                    "tools/make_physiology_reference.py on the code before the change")
    actual = json.loads(json.dumps(TOOL.snapshot(TOOL.run(case, TOOL.SAMPLES))))
    expected = {k: v for k, v in STORED[case["name"]].items() if k != "name"}
    changed = differences(expected, actual)
    assert not changed, (f"{len(changed)} output(s) changed (when a change of results is "
                         "intended, regenerate the reference with "
                         "tools/make_physiology_reference.py and say why in the commit): "
                         + "; ".join(changed[:10]))
