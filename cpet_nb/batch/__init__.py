"""Batches: many files on a dask cluster, tracked in a crash-safe SQLite job store.

- :mod:`.api`: :func:`submit`, :func:`resume`, :func:`jobs`, :class:`Batch`, :class:`Upload`;
- :mod:`.preview`: :func:`preview_inputs`, what a batch would do with its inputs (read, not
  analysed), one row per input;
- :mod:`.engine`: which dask cluster, the worker plugin, the partition task;
- :mod:`.sandbox`: the per-worker analysis process (time and memory limit per file);
- :mod:`.store`: the SQLite job store (jobs, files, results, curves).
"""

from .api import Batch, Progress, Upload, jobs, resume, submit
from .preview import preview_inputs

__all__ = ["Batch", "Progress", "Upload", "jobs", "preview_inputs", "resume", "submit"]
