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

A cold start waits mostly for these children to import cpet_nb and load the model, and a
worker could only start its child once it was up itself. So the embedded cluster starts the
children first (:class:`Prestarted`, from the client's process, as the cluster starts: one
import of cpet_nb, then a fork per further child): each loads the model, then waits on its
own Unix socket for one worker, which adopts it (:meth:`Sandbox.start`) and talks to it over
that socket instead of pipes; the limits, the replacement of a child and the findings are the
same. A worker that finds no waiting child (a remote cluster, a worker that joins later, a
replacement) starts its own.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
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
#: The child's argument before the file descriptors of its listening sockets (prestarted).
LISTEN_FD = "--listen-fd"


def child_command(*args: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of a child (this process's ``sys.path`` becomes its
    ``PYTHONPATH``, so it imports the same cpet_nb and reader plugins; the environment dask's
    nannies give a worker, :func:`worker_environ`, whether a worker starts the child or the
    cluster does, :class:`Prestarted`)."""
    env = dict(os.environ, **worker_environ(),
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
               **{THREADS_ENV: "1"})  # one analysis process per core: one thread each
    return [sys.executable, "-c", CHILD, *args], env


def worker_environ() -> dict[str, str]:
    """The variables dask's nannies set for their workers (``distributed.nanny.pre-spawn-environ``
    and ``distributed.nanny.environ``: one thread for OpenMP, MKL and OpenBLAS, glibc's
    ``MALLOC_TRIM_THRESHOLD_``)."""
    import dask
    import distributed  # noqa: F401 - registers the nanny's defaults in dask's config

    return {name: str(value)
            for key in ("distributed.nanny.pre-spawn-environ", "distributed.nanny.environ")
            for name, value in (dask.config.get(key, None) or {}).items()}


def can_adopt() -> bool:
    """Whether a worker can adopt a child it did not start (Linux: Unix sockets and pidfds,
    which address that process even after its id is reused)."""
    if not (hasattr(os, "pidfd_open") and hasattr(socket, "AF_UNIX")):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # a kernel older than 5.3
        return False
    return True


class Prestarted:
    """Children started before their workers, each waiting on its own Unix socket (in a
    private folder) for one worker to adopt it.

    One process imports cpet_nb and forks a copy of itself per further socket (they share
    the imported modules' memory until they write to it), then each loads the model and
    waits: a cold start imports cpet_nb once for all the analysis processes, not once each.
    A child that no worker adopts exits when :meth:`close` is called or this process ends
    (its stdin, a pipe from here, closes).

    Parameters
    ----------
    n : int
        Children to start (one per worker expected), at least 1.
    """

    def __init__(self, n: int) -> None:
        self._folder = tempfile.mkdtemp(prefix="cpet_nb-")  # mode 0700: this user only
        self.addresses = tuple(os.path.join(self._folder, f"{i}.sock") for i in range(n))
        """Socket path of each child, for :class:`Sandbox`."""
        listeners = []
        try:
            for path in self.addresses:
                listeners.append(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
                listeners[-1].bind(path)
                listeners[-1].listen(1)  # a worker may connect before its child accepts
            fds = [listener.fileno() for listener in listeners]
            argv, env = child_command(LISTEN_FD, ",".join(map(str, fds)))
            self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, env=env,
                                             pass_fds=fds)
        except OSError:  # e.g. a socket path too long for AF_UNIX (a deep TMPDIR)
            shutil.rmtree(self._folder, ignore_errors=True)
            raise
        finally:
            for listener in listeners:
                listener.close()

    def close(self) -> None:
        """Stop the children no worker adopted (the first, adopted or not, is stopped; the
        others see their stdin close) and remove the sockets' folder."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._process.stdin.close()
        shutil.rmtree(self._folder, ignore_errors=True)


class _Adopted:
    """A child this process did not start, with the part of :class:`subprocess.Popen` that
    :class:`Sandbox` uses, through a pidfd once its id is known (:meth:`attach`; until then
    it counts as running and cannot be signalled: closing its socket ends it). Its exit code
    goes to its parent: once it has exited, :meth:`poll` and :meth:`wait` give
    :data:`UNKNOWN_EXIT`."""

    UNKNOWN_EXIT = -1
    returncode = UNKNOWN_EXIT

    def __init__(self) -> None:
        self.pid: int | None = None
        self._pidfd = -1
        self._released = False

    def attach(self, pid: int) -> None:
        """Address the child from now on (it sent its process id)."""
        self._pidfd = os.pidfd_open(pid)
        self.pid = pid

    def poll(self) -> int | None:
        if self._released:
            return self.returncode
        return None if self._pidfd < 0 or not self._exited(0) else self.returncode

    def kill(self) -> None:
        if self._pidfd >= 0:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait(self) -> int | None:
        if self._pidfd >= 0:
            self._exited(None)
        self.release()
        return self.returncode

    def release(self) -> None:
        """Close the pidfd (the process is no longer watched)."""
        self._released = True
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1

    def _exited(self, timeout_s: float | None) -> bool:
        return bool(select.select([self._pidfd], [], [], timeout_s)[0])


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

    def __init__(self, prestarted: Sequence[str] = (), cpu: int | None = None) -> None:
        self._process: subprocess.Popen | _Adopted | None = None
        self._prestarted = list(prestarted)  # sockets to try before starting a child
        self.cpu = cpu
        """The CPU each child is kept on once its model is loaded (``os.sched_setaffinity``;
        None: wherever the OS schedules it)."""
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
        process = self._process  # once: the analysing thread may replace it meanwhile
        return process.pid if process else None

    def start(self) -> None:
        """Start the child now (it loads the model while the caller does other work), or
        adopt the first prestarted child still waiting (:class:`Prestarted`)."""
        if self._process is not None and self._process.poll() is None:
            return
        self._fresh = True
        prestarted, self._prestarted = self._prestarted, []  # a replacement starts its own
        for path in prestarted:
            if self._adopt(path):
                return
        argv, env = child_command()
        self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         env=env)
        self._reader = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        self._writer = Connection(os.dup(self._process.stdin.fileno()), readable=False)
        self._process.stdout.close()
        self._process.stdin.close()

    def _adopt(self, path: str) -> bool:
        """Connect to a prestarted child's socket; False when it is gone or taken."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(path)
            except OSError:  # another worker took it (the socket is removed then)
                return False
            self._reader = self._writer = Connection(sock.detach())
        self._process = _Adopted()
        return True

    def _await_ready(self) -> bool:
        """Wait for a new child's "model loaded" message; stop it if none comes. A
        prestarted child that another worker adopted first is replaced by one of our own."""
        self._fresh = False
        try:
            if isinstance(self._process, _Adopted):  # it says who it is first
                if not self._reader.poll(STARTUP_ALLOWANCE_S):
                    raise TimeoutError
                self._process.attach(self._reader.recv())
            if self._reader.poll(STARTUP_ALLOWANCE_S) and self._reader.recv() == READY:
                self._pin()
                return True
        except TimeoutError:
            pass
        except (EOFError, OSError):
            if isinstance(self._process, _Adopted):  # not ours after all (or it died)
                self._release()
                self.start()
                return self._await_ready()
        self.close()
        return False

    def _pin(self) -> None:
        """Keep the child on :attr:`cpu` (where the system lets a process choose)."""
        pid = self.pid
        if self.cpu is None or pid is None or not hasattr(os, "sched_setaffinity"):
            return
        with contextlib.suppress(OSError):  # a CPU taken from us since: it runs anywhere
            os.sched_setaffinity(pid, {self.cpu})

    def _release(self) -> None:
        """Forget the child without stopping it."""
        process, self._process = self._process, None
        self._reader.close()
        self._writer.close()
        process.release()

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
                died = ("" if isinstance(self._process, _Adopted) or code is None
                        else f" (exit code {code})")
                self.close()
                return _failed(label, "analysis-crashed",
                               f"the analysis process died{died} on this file")
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


def _load_model() -> None:
    from ..model import get_model

    get_model()


def _one_listener_each(listener_fds: list[int]) -> int:
    """Fork a copy of this process for each listener after the first; each process keeps
    one listener (this one the first) and closes the others. Returns this process's."""
    copies = []
    for fd in listener_fds[1:]:
        pid = os.fork()
        if pid == 0:
            for other in listener_fds:
                if other != fd:
                    os.close(other)
            return fd
        copies.append(pid)
    for other in listener_fds[1:]:
        os.close(other)
    for pid in copies:  # reaped when they end; other children (a plugin's) keep their codes
        threading.Thread(target=os.waitpid, args=(pid, 0), daemon=True).start()
    return listener_fds[0]


def _accept(listener_fd: int) -> Connection | None:
    """The connection of the one worker that adopts this prestarted child (its socket then
    disappears, so no other worker waits on it), told this process's id; None when the
    parent closed our stdin."""
    with socket.socket(fileno=listener_fd) as listener:
        ready = select.select([listener, sys.stdin], [], [])[0]
        _remove_socket(listener.getsockname())
        if listener not in ready:  # our parent is gone, or it gave up on us
            return None
        connection, _ = listener.accept()
    adopter = Connection(connection.detach())
    try:
        adopter.send(os.getpid())
    except OSError:  # the worker gave up waiting
        return None
    return adopter


def _remove_socket(path: str) -> None:
    """Remove a socket file, and its folder once it is empty (the last child's turn), so that
    a parent killed before its :meth:`Prestarted.close` leaves nothing behind (a closing
    parent may have removed the folder already)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:  # other sockets still waiting
        pass


def _serve(reader: Connection, writer: Connection) -> None:
    from ..analysis import analyze, internal_error

    writer.send(READY)
    while True:
        try:
            path, label, options, memory_mb = reader.recv()
        except (EOFError, OSError):  # the worker is gone (a socket may say so by a reset)
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
    """Entry point of the child: serve requests on stdin/stdout until stdin closes (or, when
    prestarted, on the socket of the worker that adopts it until that closes).

    The child runs at a lower priority (:data:`NICENESS`): where analyses share cores with a
    Jupyter server, a kernel or a client, those answer first and the analyses take the rest.
    """
    if hasattr(os, "nice"):  # POSIX
        os.nice(NICENESS)
    protocol_out = os.dup(1)
    os.dup2(2, 1)  # stray prints must not corrupt the replies
    sys.stdout = sys.stderr
    if sys.argv[1:2] == [LISTEN_FD]:  # prestarted: the worker that adopts us is the peer
        os.close(protocol_out)
        listener = _one_listener_each([int(fd) for fd in sys.argv[2].split(",")])
        _load_model()
        reader = writer = _accept(listener)
        if reader is None:
            return
    else:
        _load_model()
        reader = Connection(os.dup(0), writable=False)
        writer = Connection(protocol_out, readable=False)
    _serve(reader, writer)
