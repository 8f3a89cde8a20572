"""Store what ``cpet_nb.analyze`` computes today on every real test, to prove a rewrite changes
nothing.

    .venv/bin/python tools/make_physiology_reference.py [--samples ../shared/cpet-samples]

For pyoxynet's 139 bundled tests and every file of the real samples folder (the ZAN exports
also with a barometric pressure, so that their end-tidal pressures and the model run, and
``zan/zan_ramp`` with its heart-rate recording), one JSON object per line in
``tests/data/physiology_reference.jsonl.gz`` (gzip, about 80 kB): the entry's name, the
status, the model's thresholds, every classical estimate (time, VO2, method, threshold,
reason), the consensus and the values there, every measure, the review flags, the
uncertainty of each threshold and the findings' codes. These are cpet_nb's own outputs
(numbers and codes), not third-party data. Floats are written by ``json`` (shortest repr,
exact round trip; NaN as ``NaN``).

``tests/test_physiology_reference.py`` recomputes every entry with :func:`snapshot` and
compares: times exactly, other floats to 1e-9 relative, everything else exactly.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "physiology_reference.jsonl.gz"
SAMPLES = ROOT.parent / "shared" / "cpet-samples"
#: Barometric pressure (mmHg) given to the ZAN exports' variant (they record fractions only).
ZAN_PB_MMHG = 760.0


def cases(samples: Path = SAMPLES) -> list[dict[str, Any]]:
    """Every entry of the reference: ``name``, ``source`` (``pyoxynet`` or ``samples``), the
    ``path`` (relative to its source) and the keyword arguments of ``cpet_nb.analyze``
    (``settings`` as a dict of :class:`~cpet_nb.settings.Settings` fields, ``hr_file``
    relative to the samples folder)."""
    import cpet_nb

    out = [{"name": p.name, "source": "pyoxynet", "path": p.name, "kwargs": {}}
           for p in cpet_nb.datasets.pyoxynet_tests()]
    files = sorted(p for p in samples.rglob("*") if p.is_file()
                   and "LICENSES" not in p.parts and p.name != "README.md")
    for path in files:
        relative = path.relative_to(samples).as_posix()
        out.append({"name": relative, "source": "samples", "path": relative, "kwargs": {}})
        if relative.startswith("zan/") and not relative.endswith(".csv"):
            out.append({"name": f"{relative}@pb", "source": "samples", "path": relative,
                        "kwargs": {"settings": {"barometric_pressure_mmhg": ZAN_PB_MMHG}}})
    out.append({"name": "zan/zan_ramp@pb+hr", "source": "samples", "path": "zan/zan_ramp",
                "kwargs": {"settings": {"barometric_pressure_mmhg": ZAN_PB_MMHG},
                           "hr_file": "tcx/hr_ramp.tcx"}})
    return out


def run(case: dict[str, Any], samples: Path = SAMPLES):
    """``cpet_nb.analyze`` on one entry of :func:`cases`."""
    import cpet_nb
    from cpet_nb.settings import Settings

    folder = cpet_nb.datasets.pyoxynet_data_dir() if case["source"] == "pyoxynet" else samples
    kwargs = dict(case["kwargs"])
    if "settings" in kwargs:
        kwargs["settings"] = Settings(**kwargs["settings"])
    if "hr_file" in kwargs:
        kwargs["hr_file"] = samples / kwargs["hr_file"]
    return cpet_nb.analyze(folder / case["path"], **kwargs)


def snapshot(result) -> dict[str, Any]:
    """The physiology of one :class:`~cpet_nb.result.FileResult` as plain JSON values."""
    return {
        "status": result.status,
        "vt1": asdict(result.vt1) if result.vt1 else None,
        "vt2": asdict(result.vt2) if result.vt2 else None,
        "classical": {key: asdict(e) for key, e in result.classical.items()},
        "consensus": {key: {**asdict(c), "methods": list(c.methods)}
                      for key, c in result.consensus.items()},
        "consensus_values": dict(result.consensus_values),
        "measures": dict(result.measures),
        "review": dict(result.review),
        "uncertainty": {key: asdict(u) for key, u in result.uncertainty.items()},
        "findings": [f.code for f in result.findings],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not args.samples.is_dir():
        print(f"samples folder {args.samples} not found", file=sys.stderr)
        return 1
    lines = []
    for case in cases(args.samples):
        lines.append(json.dumps({"name": case["name"], **snapshot(run(case, args.samples))},
                                separators=(",", ":")))
    text = "\n".join(lines) + "\n"
    args.out.write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))
    print(f"{len(lines)} entries -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
