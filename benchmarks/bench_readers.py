"""Parse time per format: every real sample export, plus generated canonical CSVs.

    python benchmarks/bench_readers.py [--samples ../shared/cpet-samples] [--repeats 5]

For each file: detected format, rows, test duration, best-of-N ``cpet_nb.read`` time
(content detection included) and that time scaled to a 15-minute test (parse cost grows
with rows; files shorter than 5 minutes are listed but left out of the per-format summary,
where fixed costs would dominate the scaling). Targets: a 15-minute breath-by-breath
export parses in < 50 ms (CSV/TXT) and < 150 ms (XLSX).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cpet_nb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from synthetic import ramp_test, write_canonical_csv  # noqa: E402

DEFAULT_SAMPLES = HERE.parents[1] / "shared" / "cpet-samples"


def best_seconds(path: Path, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        cpet_nb.read(path)
        times.append(time.perf_counter() - start)
    return min(times)


def files_to_time(samples: Path, scratch: Path) -> list[Path]:
    generated = scratch / "canonical_15min_bxb.csv"
    write_canonical_csv(ramp_test(duration_s=900), generated, weight_kg=70)
    found = [generated]
    if samples.is_dir():
        found += sorted(p for p in samples.rglob("*") if p.is_file()
                        and p.suffix.lower() not in (".md", ".tcx")
                        and p.name not in ("participants.csv", "vo2max_reference_01-12.csv"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'file':32s} {'format':16s} {'rows':>6s} {'dur s':>7s} {'ms':>7s} {'ms/15 min':>9s}")
    per_format: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for path in files_to_time(args.samples, Path(scratch)):
            try:
                record = cpet_nb.read(path)
            except cpet_nb.CPETError as exc:
                print(f"{path.name[:32]:32s} {exc.finding.code}")
                continue
            seconds = best_seconds(path, args.repeats)
            duration = record.duration_s
            per_15 = seconds * 1000 * 900 / duration if duration > 0 else float("nan")
            fmt = record.metadata.format
            if duration >= 300:
                per_format.setdefault(fmt, []).append(per_15)
            print(f"{path.name[:32]:32s} {fmt:16s} {len(record.data):6d} {duration:7.0f} "
                  f"{seconds * 1000:7.1f} {per_15:9.1f}")
    print("\nmedian ms per 15-minute test, by format (files of 5 minutes or more):")
    for fmt, values in sorted(per_format.items()):
        print(f"  {fmt:16s} {statistics.median(values):7.1f}")


if __name__ == "__main__":
    main()
