"""Execute the notebooks of ``notebooks/`` and keep, in each, only the outputs nbval compares.

nbval (``pytest --nbval-lax notebooks/``) compares the outputs of the cells marked
``# NBVAL_CHECK_OUTPUT`` with those saved in the notebook; every other cell only has to run.
This script saves those outputs and nothing else (an executed report notebook holds
megabytes of inlined BokehJS), after a change that changes them::

    python tools/notebook_outputs.py                      # every notebook
    python tools/notebook_outputs.py notebooks/scale_out.ipynb

A notebook that is a link (the report templates are links into the package) is written
where it points. Needs the jupyter extra (papermill).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nbformat
import papermill

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
MARK = "NBVAL_CHECK_OUTPUT"


def refresh(path: Path) -> int:
    """Execute ``path`` as it stands; save the outputs of its marked cells, clear the rest.
    Returns how many cells keep outputs."""
    with tempfile.TemporaryDirectory() as folder:
        executed = papermill.execute_notebook(str(path), str(Path(folder) / path.name),
                                              kernel_name="python3", cwd=str(path.parent),
                                              progress_bar=False)
    source = nbformat.read(path, as_version=4)
    ran = {cell.id: cell for cell in executed.cells}
    kept = 0
    for cell in source.cells:
        if cell.cell_type != "code":
            continue
        marked = MARK in cell.source and cell.id in ran
        # nbval compares only cells that ran: a marked cell keeps its execution count
        cell.execution_count = ran[cell.id].execution_count if marked else None
        cell.outputs = ran[cell.id].get("outputs", []) if marked else []
        kept += marked
    nbformat.write(source, path.resolve())
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        default=sorted(NOTEBOOKS.glob("*.ipynb")))
    args = parser.parse_args(argv)
    for path in args.notebooks:
        print(f"{path}: outputs kept in {refresh(path)} cell(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
