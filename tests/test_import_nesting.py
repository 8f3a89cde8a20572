"""The layering of the package, enforced (in the manner of mne-python's test_import_nesting).

Dependencies run one way: base (findings, record, grid) -> io, model, physiology -> settings
-> result -> analysis -> batch (and testing) -> report -> ui, server, cli. ``import cpet_nb``
and one ``cpet_nb.analyze`` stay light: no dask, Bokeh or Jupyter package is imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import cpet_nb

PACKAGE = Path(cpet_nb.__file__).parent

#: Rank of each part of the package: a module may import only parts of lower or equal rank
#: (equal: within its own part, or the base); parts of equal rank never import each other.
RANKS = {
    "_version": 0, "_optional": 0, "_checks": 0, "findings": 0, "record": 0, "grid": 0,
    "io": 1, "model": 1, "physiology": 1,
    "settings": 2,
    "result": 3, "analysis": 4,
    "batch": 5, "testing": 5,
    "report": 6,
    "ui": 7, "server": 7, "cli": 7, "__main__": 8,
}

#: Packages that must not be imported by ``import cpet_nb`` and one ``cpet_nb.analyze``.
HEAVY = ("dask", "distributed", "bokeh", "ipywidgets", "papermill", "nbconvert",
         "jupyter_server", "tornado", "itables", "jupyter_bokeh", "openpyxl", "tqdm")


def _part(module: str) -> str:
    """The part of the package a dotted module name (without ``cpet_nb.``) belongs to."""
    return module.split(".")[0]


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every cpet_nb module that ``path`` imports (at any depth, lazy imports included),
    as names relative to the package, with the line number."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = path.relative_to(PACKAGE).with_suffix("").parts
    package = own[:-1] if own[-1] != "__init__" else own[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)])
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "cpet_nb":
                target = node.module.split(".")[1:]
            else:
                continue
            if not target:  # ``from . import name`` in the root: name is a part
                found += [(alias.name, node.lineno) for alias in node.names]
            else:
                found.append((".".join(target), node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name.split(".", 1)[1], node.lineno) for a in node.names
                      if a.name.startswith("cpet_nb.")]
    return found


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_down_the_layers(path):
    part = _part(".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    assert part in RANKS, f"{path}: a new part of the package needs a rank in RANKS"
    for target, line in _imports(path):
        other = _part(target)
        assert other in RANKS, f"{path}:{line} imports unknown part {target!r}"
        if other == part or RANKS[other] == 0:
            continue
        assert RANKS[other] < RANKS[part], (
            f"{path.relative_to(PACKAGE)}:{line} ({part}, rank {RANKS[part]}) imports "
            f"{target} ({other}, rank {RANKS[other]}): dependencies must run down the layers")


def test_the_layer_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The check above is not vacuous: a physiology module importing the batch engine
    and a cli import in the ui are both reported."""
    fake = tmp_path / "cpet_nb"
    (fake / "physiology").mkdir(parents=True)
    (fake / "ui").mkdir()
    (fake / "physiology" / "bad.py").write_text("def f():\n    from ..batch import submit\n")
    (fake / "ui" / "bad.py").write_text("from cpet_nb.cli import main\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    for path in sorted(fake.rglob("bad.py")):
        with pytest.raises(AssertionError, match="must run down the layers"):
            test_imports_run_down_the_layers(path)


def test_import_and_one_analysis_stay_light():
    """In a fresh interpreter: ``import cpet_nb`` and analysing one bundled test import no
    dask, Bokeh, Jupyter or spreadsheet-writer module (pandas itself loads pyarrow
    when it is installed), and no part of the package
    above the analysis (the batch engine's dask side, the report, the panel, the server)."""
    code = (
        "import sys, cpet_nb\n"
        "cpet_nb.analyze(cpet_nb.datasets.pyoxynet_tests()[0])\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    heavy = sorted(m for m in out if m.split(".")[0] in HEAVY)
    assert heavy == []
    above = sorted(m for m in out if m.startswith(("cpet_nb.report", "cpet_nb.ui",
                                                     "cpet_nb.server", "cpet_nb.cli",
                                                     "cpet_nb.batch.engine",
                                                     "cpet_nb.batch.sandbox")))
    assert above == []
