"""Write ``tests/data/reader_reference.json``: digests of what every reader returns today.

    PYTHONPATH=. .venv/bin/python tools/make_reader_reference.py

One entry per file of pyoxynet's bundled tests, of ``../shared/cpet-samples`` and a generated
canonical CSV (:func:`reader_digests.inputs`), each the digest of its record or of the finding
that refused it (:func:`reader_digests.record_digest`: sha256 of each column's values, of each
metadata field and of each finding's message; no value of a file is written).
``tests/test_reader_reference.py`` checks that the readers still return the same records, so
run this only when a change of what a reader returns is intended, and say why in the commit.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reader_digests import REFERENCE, inputs, record_digest  # noqa: E402


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        table = {key: record_digest(path) for key, path in inputs(Path(scratch))}
    lines = (f"{json.dumps(key)}: {json.dumps(entry, sort_keys=True)}"
             for key, entry in sorted(table.items()))
    REFERENCE.write_text("{\n" + ",\n".join(lines) + "\n}\n")  # one file per line
    refused = sum("error" in entry for entry in table.values())
    print(f"{REFERENCE}: {len(table)} files ({refused} refused)")


if __name__ == "__main__":
    main()
