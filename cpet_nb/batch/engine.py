"""The dask.distributed side of a batch: which cluster, what runs on a worker.

- :func:`get_client` gives the embedded ``LocalCluster`` (one worker per core unless told
  otherwise, one thread each; started on first use and reused; for a server shared by
  several users it can instead adapt between a minimum and that many workers), or a client
  of an existing scheduler (an address, ``DASK_SCHEDULER_ADDRESS``, or a ``Client`` passed
  in) — everything after that is the same code path. The embedded cluster's workers are
  threads of the caller's process, not processes of their own: the analysis runs in their
  analysis processes (:mod:`~cpet_nb.batch.sandbox`), which isolate it, so a worker only
  passes files and results, and a worker process would add its start (importing distributed
  and cpet_nb), ~150 MiB and a pickling of every result on its way to the client.
- :class:`SandboxPlugin` gives every worker one :class:`~cpet_nb.batch.sandbox.Sandbox` (a child
  process that loads the model once and enforces the per-file time and memory limits). The
  embedded cluster's children are started with the cluster, before its workers
  (:class:`~cpet_nb.batch.sandbox.Prestarted`), and each worker adopts one: a cold start
  then waits for the slower of the two, not for both in turn.
- :func:`run_partition` is the task: it analyses several files in order and returns their
  :class:`~cpet_nb.batch.store.Outcome` objects. Workers read files by path when they share the
  client's file system, else the task carries that partition's bytes (never the batch's).
  Between files it checks the job's cancel :class:`distributed.Event` (asked of the scheduler).
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from distributed import Client, LocalCluster, get_worker
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.utils import sync

from .sandbox import Prestarted, Sandbox, can_adopt
from .store import FileEntry, Outcome

log = logging.getLogger(__name__)

PLUGIN_NAME = "cpet_nb-sandbox"
#: How often a running task looks at the cancel event (s).
CANCEL_POLL_S = 0.2
#: How long :func:`shutdown` keeps dask's stream closings quiet after the embedded cluster
#: closed (s): the event loop's thread may log the last of them just after.
CLOSE_DRAIN_S = 0.05

#: The worker's periodic callbacks of dask's statistical profiler.
PROFILER_CALLBACKS = ("profile", "profile-cycle")

_lock = threading.Lock()
_clients: dict[str, Client] = {}
_local_cluster: LocalCluster | None = None
_local_dashboard = False  # whether the embedded cluster was started with its dashboard
_local_cpus: tuple[int, ...] = ()  # the CPU of each of its analysis processes (see below)
_prestarted: Prestarted | None = None


class SandboxPlugin(WorkerPlugin):
    """Starts one analysis child process per worker (idempotent: registered once per
    worker, and given to workers that join later).

    Parameters
    ----------
    prestarted : sequence of str
        :attr:`Prestarted.addresses` (sockets) of children waiting for the cluster's workers: a
        worker tries the one at its own position first (the embedded cluster names its
        workers 0, 1, ...), then the others, then starts its own.
    embedded : bool
        The workers are the embedded cluster's (threads of the client's process, only
        waiting on their analysis processes): their statistical profiler (a sample of their
        thread every 10 ms, for the dashboard) is stopped. Other clusters' are left alone.
    cpus : sequence of int
        A CPU for each worker's analysis process, by the worker's name (0, 1, ...): worker
        *i*'s is kept on ``cpus[i]`` (workers beyond them, and other clusters', are not).
    """

    idempotent = True
    name = PLUGIN_NAME

    def __init__(self, prestarted: Sequence[str] = (), embedded: bool = False,
                 cpus: Sequence[int] = ()) -> None:
        self.prestarted = tuple(prestarted)
        self.embedded = embedded
        self.cpus = tuple(cpus)

    def setup(self, worker: Any) -> None:
        name = worker.name
        cpu = self.cpus[name] if isinstance(name, int) and 0 <= name < len(self.cpus) else None
        self.sandbox = Sandbox(_own_first(self.prestarted, name), cpu=cpu)
        self.sandbox.start()  # loads the model while the client prepares the batch
        if self.embedded:
            for callback_name in PROFILER_CALLBACKS:
                callback = worker.periodic_callbacks.pop(callback_name, None)
                if callback is not None:
                    callback.stop()

    def teardown(self, worker: Any) -> None:
        self.sandbox.close()


def get_client(client: Client | str | None = None, workers: int = 0,
               adapt_minimum: int | None = None, dashboard: bool = False) -> Client:
    """A client for batch work, with :class:`SandboxPlugin` registered.

    Parameters
    ----------
    client : distributed.Client or str, optional
        A client, or a scheduler address (``tcp://host:8786``). Default:
        ``$DASK_SCHEDULER_ADDRESS`` if set, else the embedded local cluster.
    workers : int
        Workers of the embedded cluster (0: one per CPU core), each a thread of this process
        with its own analysis process. Used only when the embedded cluster is started.
    adapt_minimum : int, optional
        Make the embedded cluster adaptive (``LocalCluster.adapt``): it holds this many
        workers when idle and grows to ``workers`` under load (for a server that runs
        several users' batches). Default: a fixed number of workers. Used only when the
        embedded cluster is started.
    dashboard : bool
        Start the embedded cluster with dask's dashboard (on a free port). Used only when
        the embedded cluster is started.
    """
    prestarted: tuple[str, ...] = ()
    embedded = False
    cpus: tuple[int, ...] = ()
    if not isinstance(client, Client):
        address = client or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        client = (_scheduler_client(address) if address
                  else _embedded_client(workers, adapt_minimum, dashboard))
        embedded = not address
        if embedded:
            cpus = _local_cpus
            if _prestarted is not None:
                prestarted = _prestarted.addresses
    client.register_plugin(SandboxPlugin(prestarted, embedded=embedded, cpus=cpus))
    return client


def _own_first(prestarted: Sequence[str], name: Any) -> list[str]:
    """``prestarted`` from the worker's own position on (its name, when a number)."""
    start = name % len(prestarted) if isinstance(name, int) and prestarted else 0
    return [*prestarted[start:], *prestarted[:start]]


def _prestart_sandboxes(n: int) -> None:
    """Start the analysis children of a cluster about to start ``n`` workers (where workers
    can adopt them, :func:`~cpet_nb.batch.sandbox.can_adopt`); any left from a previous
    cluster are stopped."""
    global _prestarted
    if _prestarted is not None:
        _prestarted.close()
    _prestarted = None
    if n and can_adopt():
        try:
            _prestarted = Prestarted(n)
        except OSError as exc:  # the workers start their own, as on other systems
            log.warning("analysis processes not started ahead of the workers: %s", exc)


def _scheduler_client(address: str) -> Client:
    return _cached_client(address, lambda: Client(address, set_as_default=False))


def _embedded_client(workers: int, adapt_minimum: int | None = None,
                     dashboard: bool = False) -> Client:
    def start() -> Client:
        global _local_cluster, _local_dashboard, _local_cpus
        if _local_cluster is not None:  # its client closed: start afresh, not beside it
            _local_cluster.close()
        maximum = workers or os.cpu_count() or 1
        n_workers = maximum if adapt_minimum is None else min(adapt_minimum, maximum)
        _prestart_sandboxes(n_workers)  # they load the model while the workers start
        # no memory limit on the workers: they share the caller's process (a notebook's
        # kernel), and the analysis processes have their own per file; the scheduler's
        # HTTP server (health, metrics) on a free port either way, the dashboard's Bokeh
        # apps only when asked for
        _local_cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=False, memory_limit=0,
            dashboard_address=":0", scheduler_kwargs={"dashboard": dashboard})
        _local_dashboard = dashboard
        _local_cpus = analysis_cpus(n_workers) if adapt_minimum is None else ()
        if adapt_minimum is not None:
            _local_cluster.adapt(minimum=min(adapt_minimum, maximum), maximum=maximum)
        return Client(_local_cluster, set_as_default=False)

    return _cached_client("embedded", start)


def analysis_cpus(n_workers: int) -> tuple[int, ...]:
    """The CPU for each analysis process of an embedded cluster of ``n_workers`` fixed
    workers: one each when there are as many workers as CPUs this process may use (the
    default, one worker per core); else none (the OS places them: with fewer workers it
    can spread them away from whatever else runs, e.g. another kernel's batch).

    Kept on one CPU, an analysis process keeps its caches and is not moved about by the
    scheduler as the client's threads (the store, the scheduler, a kernel) come and go: a
    batch of 600 tests took 8-9 % less time (docs/performance.md). The client's threads run
    wherever the OS puts them, and take precedence, as the analysis processes run at a
    lower priority (:data:`cpet_nb.batch.sandbox.NICENESS`). An adaptive cluster (the
    server's) is not pinned: its workers come and go under names that do not map to CPUs.
    """
    if not hasattr(os, "sched_getaffinity"):
        return ()
    available = sorted(os.sched_getaffinity(0))
    return tuple(available) if n_workers == len(available) else ()


def dashboard_link(client: Client) -> str:
    """The address of the dask dashboard of ``client``'s cluster; empty when it has none (the
    embedded cluster started without one, or a link template the cluster cannot fill)."""
    if client is _clients.get("embedded") and not _local_dashboard:
        return ""
    try:
        return client.dashboard_link or ""
    except (KeyError, AttributeError):  # a dashboard link template without its variable
        return ""


def _cached_client(key: str, connect: Callable[[], Client]) -> Client:
    """The running client kept under ``key``, or a new one from ``connect()``."""
    with _lock:
        existing = _clients.get(key)
        if existing is None or existing.status != "running":
            existing = _clients[key] = connect()
        return existing


@atexit.register
def shutdown() -> None:
    """Close the clients this module opened and the embedded cluster (also at exit)."""
    global _local_cluster, _prestarted
    with _lock:
        with _closing_quietly():
            for client in _clients.values():
                client.close()
            _clients.clear()
            if _local_cluster is not None:
                _local_cluster.close()
                _local_cluster = None
                time.sleep(CLOSE_DRAIN_S)  # the event loop's own thread logs the last closings
        if _prestarted is not None:
            _prestarted.close()
            _prestarted = None


@contextlib.contextmanager
def _closing_quietly() -> Iterator[None]:
    """dask's batched streams at WARN while the embedded cluster closes: its in-process
    streams close one after the other, and one that finds its peer gone logs a traceback at
    INFO (dask/distributed#7192), after the cluster has set dask's logs back to INFO."""
    logger = logging.getLogger("distributed.batched")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def workers_share_files(client: Client) -> bool:
    """Whether every worker runs on this machine (so it can read the client's paths)."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    mine = _local_addresses()
    for address in workers:
        parsed = urlparse(address)
        if parsed.scheme == "inproc":
            continue
        host = parsed.hostname or ""
        try:
            if ipaddress.ip_address(host).is_loopback:
                continue
        except ValueError:
            pass
        if host not in mine:
            return False
    return True


def _local_addresses() -> set[str]:
    names = {"localhost", socket.gethostname(), socket.getfqdn()}
    try:
        names |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        pass
    return names


def worker_threads(client: Client) -> int:
    """Total worker threads in the cluster (at least 1)."""
    info = client.scheduler_info(n_workers=-1)["workers"]
    return max(1, sum(w.get("nthreads", 1) for w in info.values()))


def worker_memory(dask_worker: Any) -> dict[str, Any]:
    """Resident memory of a worker's process and of its analysis process (run on the worker,
    ``Client.run(worker_memory)``).

    Returns
    -------
    dict
        ``host``, ``pid`` and ``rss_bytes`` of the worker's process; ``analysis_rss_bytes``
        of its analysis process (0 when none is running).
    """
    import psutil

    sandbox = dask_worker.plugins.get(PLUGIN_NAME)
    pid = sandbox.sandbox.pid if sandbox is not None else None
    try:
        analysis = psutil.Process(pid).memory_info().rss if pid else 0
    except psutil.Error:  # ended meanwhile (a replacement is starting)
        analysis = 0
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "rss_bytes": psutil.Process().memory_info().rss, "analysis_rss_bytes": analysis}


def run_partition(job_id: str, entries: Sequence[FileEntry], options: dict[str, Any],
                  timeout_s: float, memory_mb: float,
                  contents: dict[int, bytes] | None = None) -> list[Outcome]:
    """Analyse ``entries`` in order on this worker (the dask task).

    Parameters
    ----------
    job_id : str
        Names the cancel event (``cpet_nb-cancel-<job_id>``).
    entries : sequence of FileEntry
    options : dict
        Keyword arguments for :func:`cpet_nb.analyze`.
    timeout_s, memory_mb : float
        Limits per file (:meth:`cpet_nb.batch.sandbox.Sandbox.analyze`).
    contents : dict, optional
        File bytes by index, when this worker cannot read the client's paths (a file
        missing from it is reported as not found).

    Returns
    -------
    list of Outcome
        One per file analysed; files left when the job was cancelled are not included.
    """
    worker = get_worker()
    sandbox: Sandbox = worker.plugins[PLUGIN_NAME].sandbox
    cancel = cancel_event_name(job_id)
    outcomes = []
    checked = 0.0
    with tempfile.TemporaryDirectory(dir=worker.local_directory) as scratch:
        for entry in entries:
            if time.monotonic() - checked > CANCEL_POLL_S:
                if _is_set(worker, cancel):
                    break
                checked = time.monotonic()
            path = entry.path
            if contents is not None:  # a file the client could not read is not written
                # the index keeps names unique and short; the ending is kept for readers
                path = os.path.join(scratch, f"{entry.idx}{Path(entry.name).suffix[:16]}")
                if entry.idx in contents:
                    Path(path).write_bytes(contents[entry.idx])
            started = time.time()
            result = sandbox.analyze(path, entry.name, options, timeout_s=timeout_s,
                                     memory_mb=memory_mb)
            outcomes.append(Outcome(entry.idx, result, worker.address, started,
                                    time.time() - started))
    return outcomes


def _is_set(worker: Any, event: str) -> bool:
    """Whether the :class:`distributed.Event` named ``event`` is set, asked of the scheduler
    directly: a ``distributed.Event`` on a worker makes a client, which for the embedded
    cluster's workers (threads of the caller's process) would become the caller's default
    dask client and keep the cluster's event loop running after it closed."""
    return sync(worker.loop, worker.scheduler.event_is_set, name=event)


def cancel_event_name(job_id: str) -> str:
    """The name of the job's cancel event on the scheduler."""
    return f"cpet_nb-cancel-{job_id}"
