"""Analyse files in a child process that can be stopped: a time and a memory limit per file.

A dask worker cannot interrupt a task that hangs or stop one that allocates without bound:
cancelling a future does not stop running code, and a worker killed for memory takes the
other files of its partition with it. So each worker keeps one child process
(:data:`CHILD`, started by :class:`cpet_nb.batch.engine.SandboxPlugin`) that loads the
model once and analyses one file per request. A file that runs past its time limit gets
the child killed and replaced (finding ``file-timeout``); one that allocates past its memory
limit gets a ``MemoryError`` inside the child (Linux ``RLIMIT_DATA``, counted above what the
child held when it started; finding ``file-memory-limit``) and the child is replaced; a child
that dies (a crash in native code) is replaced too (finding ``analysis-crashed``). So is a child
in which the analysis raised any other exception (finding ``internal-error``): an exception
half-way can leave the model's interpreter, or native memory, in a state that would fail or
mis-analyse the next files, and a new child starts from a known one. In every case only that
file is affected.

Requests and replies are pickled over the child's stdin/stdout
(:class:`multiprocessing.connection.Connection` framing); anything the analysis prints goes
to stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from ..model.runtime import THREADS_ENV
from ..result import FileResult

#: How much lower the analysis processes' scheduling priority is (``nice``) than their
#: worker's: analysis is background work.
NICENESS = 10
#: The child's program: :func:`main`, in a process that never loads pyarrow (pandas imports
#: it when it is installed, some 35 MiB; an analysis writes no Parquet, the client does).
CHILD = ("import sys; sys.modules['pyarrow'] = None; "
         "from cpet_nb.batch.sandbox import main; main()")

#: Time a new child may take to start and load the model (s); the per-file limit starts after.
STARTUP_ALLOWANCE_S = 60.0
#: What a child sends once its model is loaded.
READY = "ready"


class Sandbox:
    """One child process analysing one file at a time (thread-safe; requests queue).

    Examples
    --------
    >>> import cpet_nb
    >>> with Sandbox() as sandbox:
    ...     result = sandbox.analyze(cpet_nb.datasets.pyoxynet_tests()[0], "test 1")
    >>> result.file, result.status
    ('test 1', 'ok')
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._connection: Connection | None = None
        self._fresh = False
        self._lock = threading.Lock()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The child's process id (None when not running)."""
        return self._process.pid if self._process else None

    def start(self) -> None:
        """Start the child now (it loads the model while the caller does other work)."""
        if self._process is not None and self._process.poll() is None:
            return
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
                   **{THREADS_ENV: "1"})  # one analysis process per core: one thread each
        self._process = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=env)
        self._reader = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        self._writer = Connection(os.dup(self._process.stdin.fileno()), readable=False)
        self._process.stdout.close()
        self._process.stdin.close()
        self._fresh = True

    def _await_ready(self) -> bool:
        """Wait for a new child's "model loaded" message; stop it if none comes."""
        self._fresh = False
        try:
            if self._reader.poll(STARTUP_ALLOWANCE_S) and self._reader.recv() == READY:
                return True
        except (EOFError, OSError):
            pass
        self.close()
        return False

    def close(self) -> None:
        """Stop the child (safe to call twice)."""
        process, self._process = self._process, None
        if process is None:
            return
        for connection in (self._reader, self._writer):
            connection.close()
        if process.poll() is None:
            process.kill()
        process.wait()

    def analyze(self, path: str | os.PathLike, label: str, options: dict[str, Any] | None = None,
                *, timeout_s: float = 60.0, memory_mb: float | None = 2048.0) -> FileResult:
        """:func:`cpet_nb.analysis.analyze` ``path`` in the child; the result names ``label``.

        Parameters
        ----------
        path : str or path-like
        label : str
            How the user knows the file (the result's ``file``).
        options : dict, optional
            Keyword arguments for :func:`~cpet_nb.analysis.analyze`.
        timeout_s : float
            Wall-time limit for this file (s).
        memory_mb : float, optional
            Memory the analysis may allocate (MiB); None for no limit.

        Returns
        -------
        FileResult
            With a ``file-timeout``, ``file-memory-limit`` or ``analysis-crashed`` error finding
            when the limit was hit or the child died.
        """
        with self._lock:
            self.start()
            if self._fresh and not self._await_ready():
                return _failed(label, "analysis-crashed",
                               "the analysis process could not start (no model loaded within "
                               f"{STARTUP_ALLOWANCE_S:g} s, or it exited): is cpet_nb with its "
                               "TFLite runtime installed where the workers run? (see the "
                               "worker's log)")
            request = (os.fspath(path), label, options or {}, memory_mb)
            try:
                self._writer.send(request)
                if not self._reader.poll(timeout_s):
                    self.close()
                    return _failed(label, "file-timeout",
                                   f"analysis stopped after the {timeout_s:g} s limit per file")
                result, restart = self._reader.recv()
            except (EOFError, OSError):
                code = self._process.wait() if self._process else None
                self.close()
                return _failed(label, "analysis-crashed",
                               f"the analysis process died (exit code {code}) on this file")
            if restart:
                self.close()
            return result


def _failed(label: str, code: str, message: str) -> FileResult:
    return FileResult.error(label, code, message)


# -- the child ---------------------------------------------------------------------------


def _data_segment_bytes() -> int | None:
    """This process's data segment (VmData) in bytes; None where /proc is missing."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _limit_memory(memory_mb: float | None) -> None:
    """Cap the data segment at what it holds now plus ``memory_mb`` (Linux only)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    baseline = _data_segment_bytes()
    if baseline is None or not hasattr(resource, "RLIMIT_DATA"):  # pragma: no cover
        return
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    soft = hard if memory_mb is None else baseline + int(memory_mb * 1024 * 1024)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def _serve(reader: Connection, writer: Connection) -> None:
    from ..analysis import analyze, internal_error
    from ..model import get_model

    get_model()
    writer.send(READY)
    while True:
        try:
            path, label, options, memory_mb = reader.recv()
        except EOFError:
            return
        restart = True  # after an exception: the model's state is not known
        _limit_memory(memory_mb)
        try:
            result = analyze(path, **options).renamed(label)
            restart = False
        except MemoryError:
            limit = "the machine's memory" if memory_mb is None else (
                f"the {memory_mb:g} MiB memory limit per file")
            result = _failed(label, "file-memory-limit", f"analysis stopped at {limit}")
        except Exception as exc:  # noqa: BLE001 - a defect becomes this file's finding
            result = internal_error(label, exc)
        finally:
            _limit_memory(None)
        try:
            writer.send((result, restart))
        except (BrokenPipeError, OSError):  # the worker is gone: so is the reason to live
            return


def main() -> None:
    """Entry point of the child: serve requests on stdin/stdout until stdin closes.

    The child runs at a lower priority (:data:`NICENESS`): where analyses share cores with a
    Jupyter server, a kernel or a client, those answer first and the analyses take the rest.
    """
    if hasattr(os, "nice"):  # POSIX
        os.nice(NICENESS)
    protocol_out = os.dup(1)
    os.dup2(2, 1)  # stray prints must not corrupt the replies
    sys.stdout = sys.stderr
    reader = Connection(os.dup(0), writable=False)
    writer = Connection(protocol_out, readable=False)
    _serve(reader, writer)
