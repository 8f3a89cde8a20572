"""Executing the report notebooks with papermill (one report) or with one shared kernel
(one report per test), and saying which cell failed when one does.

As papermill does, a failed execution writes the partial notebook with the failing cell
marked (an error note at the top, an anchor before the cell) and raises: here
:class:`ReportFailed`, which names the cell by its id (the templates give every cell a
meaningful one: ``load-job``, ``quality``, ...), the error and the notebook written.
papermill and nbclient are imported only when a notebook is executed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

#: The Jupyter kernel the reports run in: ipykernel's default name, which exists wherever
#: ipykernel is installed (CI included). It must run this Python (:func:`check_kernel`).
KERNEL_NAME = "python3"
#: Longest a report cell may run (s) before the execution is stopped as failed.
CELL_TIMEOUT_S = 1800
#: How long a kernel may take to start (s).
START_TIMEOUT_S = 120


class ReportFailed(RuntimeError):
    """A report notebook failed.

    Attributes
    ----------
    notebook : pathlib.Path
        The partial notebook written, with the failing cell marked.
    cell : str
        The failing cell's id (``load-job``), or ``"?"`` when no cell is to blame (the
        kernel did not start).
    error : str
        The exception, ``"KeyError: no job 'x' in ..."``.
    """

    def __init__(self, notebook: Path, cell: str, error: str) -> None:
        self.notebook = Path(notebook)
        self.cell = cell
        self.error = error
        super().__init__(f"the report failed in cell {cell!r}: {error} (the partial notebook, "
                         f"with the failing cell marked, is {notebook})")


#: What executing a report needs (the ``jupyter`` extra), by import name.
REQUIRED = ("papermill", "nbclient", "nbconvert", "nbformat", "jupyter_client", "ipykernel")


def require() -> None:
    """Make sure the packages that execute a report are installed.

    Raises
    ------
    ImportError
        Naming the missing packages and the extra that brings them.
    """
    import importlib

    missing = []
    for name in REQUIRED:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ImportError(f"reports need {', '.join(missing)}: pip install 'cpet-nb[jupyter]'")


def template(name: str) -> Path:
    """The path of a report notebook shipped with cpet_nb (``batch_report.ipynb``,
    ``test_report.ipynb``)."""
    return Path(str(resources.files(__package__).joinpath("templates", name)))


def check_kernel(name: str = KERNEL_NAME) -> None:
    """Make sure the Jupyter kernel ``name`` runs this Python, so that a report is made with
    the cpet_nb that asked for it.

    A kernel spec in the user's Jupyter folder takes precedence over the environment's own
    (``python -m ipykernel install --sys-prefix`` writes that one); one that names another
    interpreter would run another installation, or none.

    Raises
    ------
    RuntimeError
        Saying which kernel spec is in the way and how to register this Python's.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    register = f"{sys.executable} -m ipykernel install --sys-prefix"
    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise RuntimeError(f"no Jupyter kernel named {name!r}: install ipykernel "
                           f"(pip install 'cpet-nb[jupyter]') and run {register}") from None
    command = spec.argv[0] if spec.argv else ""
    # jupyter_client runs a spec's bare "python" with the current interpreter
    same = command in ("python", f"python{sys.version_info[0]}",
                       "python{}.{}".format(*sys.version_info[:2])) or (
        os.path.abspath(command) == os.path.abspath(sys.executable))
    if not same:
        raise RuntimeError(f"the Jupyter kernel {name!r} ({spec.resource_dir}) runs {command}, "
                           f"not this Python ({sys.executable}): remove that kernel spec or "
                           f"give this one precedence ({register}; JUPYTER_PATH)")


def execute(source: Path, output: Path, parameters: Mapping[str, Any], cwd: Path,
            timeout_s: float = CELL_TIMEOUT_S) -> Any:
    """Execute notebook ``source`` with ``parameters`` in a new kernel (papermill) and
    write it to ``output``; return the executed notebook.

    Raises
    ------
    ReportFailed
        When a cell raises or runs past ``timeout_s``; ``output`` then holds the partial
        notebook with the failing cell marked.
    """
    import papermill

    try:
        return papermill.execute_notebook(
            str(source), str(output), parameters=dict(parameters), kernel_name=KERNEL_NAME,
            cwd=str(cwd), execution_timeout=timeout_s, start_timeout=START_TIMEOUT_S,
            progress_bar=False)
    except Exception as exc:  # papermill's and nbclient's errors alike: name the cell
        raise _failure(output, exc) from None


class SharedKernel:
    """One kernel that executes many notebooks in turn (the per-test reports of a batch:
    starting a kernel and importing cpet_nb and Bokeh for each would take longer than the
    report itself). Use it as a context manager.

    Every notebook gets its parameters as papermill gives them (a tagged cell after the
    ``parameters`` cell) and is marked as papermill marks a failed one.
    """

    def __init__(self, cwd: Path, timeout_s: float = CELL_TIMEOUT_S) -> None:
        self.cwd = cwd
        self.timeout_s = timeout_s
        self._client: Any = None
        self._running = "?"

    def __enter__(self) -> SharedKernel:
        from jupyter_client.manager import KernelManager
        from nbclient import NotebookClient
        from nbformat import v4

        manager = KernelManager(kernel_name=KERNEL_NAME)
        manager.start_kernel(cwd=str(self.cwd))
        self._client = NotebookClient(v4.new_notebook(), km=manager, timeout=self.timeout_s,
                                      interrupt_on_timeout=True, startup_timeout=START_TIMEOUT_S,
                                      kernel_name=KERNEL_NAME,
                                      resources={"metadata": {"path": str(self.cwd)}},
                                      on_cell_execute=self._cell_started)
        return self

    def __exit__(self, *exc_info: Any) -> None:
        client = self._client
        if client.kc is not None:
            client.kc.stop_channels()
        client.km.shutdown_kernel(now=True)

    def execute(self, source: Path, output: Path, parameters: Mapping[str, Any]) -> Any:
        """Execute ``source`` with ``parameters``, write it to ``output``, return it.

        Raises
        ------
        ReportFailed
            As :func:`execute`.
        """
        import nbformat
        from papermill.iorw import load_notebook_node
        from papermill.parameterize import parameterize_notebook

        notebook = parameterize_notebook(load_notebook_node(str(source)), dict(parameters))
        for cell in notebook.cells:  # as papermill does: no output left from before
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        self._client.nb = notebook
        self._running = "?"
        try:
            self._client.execute()
        except Exception as exc:  # the failing cell's error is in the notebook: mark it
            _write_marked(notebook, output)
            failure = _failure(output, exc)
            if failure.cell == "?":  # a time-out leaves no error output: the running cell
                failure = ReportFailed(output, self._running, failure.error)
            raise failure from None
        nbformat.write(notebook, output)
        return notebook

    def _cell_started(self, cell: Any, cell_index: int, **_: Any) -> None:
        self._running = cell.get("id", "?")


def _write_marked(notebook: Any, output: Path) -> None:
    """Write a failed ``notebook`` as papermill does: an error note at the top and an
    anchor before the failing cell (papermill's own function, which raises once written)."""
    import nbformat
    from papermill.execute import raise_for_execution_errors

    try:
        raise_for_execution_errors(notebook, str(output))
    except Exception:  # noqa: BLE001 - papermill's error for the cell, now marked and written
        return
    nbformat.write(notebook, output)  # no error output to mark (a time-out)


def _failure(output: Path, exc: BaseException) -> ReportFailed:
    """:class:`ReportFailed` for an execution that raised ``exc`` and wrote ``output``."""
    cell, error = _failing_cell(output)
    if error is None:
        error = f"{type(exc).__name__}: {getattr(exc, 'evalue', None) or exc}"
    return ReportFailed(output, cell, error)


def _failing_cell(output: Path) -> tuple[str, str | None]:
    """The id of the cell that failed in the notebook at ``output`` and its error: the first
    cell with an error output, else the one papermill left running (a time-out)."""
    import nbformat

    if not output.is_file():
        return "?", None
    notebook = nbformat.read(output, as_version=4)
    for cell in notebook.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return cell.get("id", "?"), f"{out['ename']}: {out['evalue']}"
    for cell in notebook.cells:
        status = cell.get("metadata", {}).get("papermill", {}).get("status")
        if status == "running" or cell.get("metadata", {}).get("papermill", {}).get(
                "exception"):
            return cell.get("id", "?"), None
    return "?", None
