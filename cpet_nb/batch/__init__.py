"""Batches: many files on a dask cluster, tracked in a crash-safe SQLite job store.

- :mod:`.api`: :func:`submit`, :func:`resume`, :func:`jobs`, :class:`Batch`, :class:`Upload`;
- :mod:`.engine`: which dask cluster, the worker plugin, the partition task;
- :mod:`.sandbox`: the per-worker analysis process (time and memory limit per file);
- :mod:`.store`: the SQLite job store (jobs, files, results, curves).
"""

from .api import Batch, NoCPETFiles, Progress, Upload, jobs, resume, submit

__all__ = ["Batch", "NoCPETFiles", "Progress", "Upload", "jobs", "resume", "submit"]
