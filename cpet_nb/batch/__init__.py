"""Batches: many files on a dask cluster, tracked in a crash-safe SQLite job store.

- :mod:`.api`: :func:`submit`, :func:`resume`, :func:`jobs`, :class:`Batch`, :class:`Progress`;
- :mod:`.staging`: inputs (paths, :class:`Upload`) into the rows of a job, every one accounted
  for (shared with ``cpet-nb analyze``);
- :mod:`.driver`: the thread that submits partitions, commits results and notifies;
- :mod:`.preview`: :func:`preview_inputs`, what a batch would do with its inputs (read, not
  analysed), one row per input;
- :mod:`.engine`: which dask cluster, the worker plugin, the partition task;
- :mod:`.sandbox`: the per-worker analysis process (time and memory limit per file);
- :mod:`.store`: the SQLite job store (jobs, files, results, curves, overrides);
- :mod:`.review`: the review queue and reviewers' threshold overrides.
"""

from .api import Batch, Progress, jobs, resume, submit
from .preview import preview_inputs
from .staging import NoCPETFiles, Upload

__all__ = ["Batch", "NoCPETFiles", "Progress", "Upload", "jobs", "preview_inputs", "resume",
           "submit"]
