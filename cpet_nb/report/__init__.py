"""What a person reads: reports and plots of stored jobs.

- :func:`batch_report` (:mod:`.batch`): the HTML report of a job, made by executing the
  papermill template ``batch_report.ipynb`` (and ``test_report.ipynb`` per test);
  ``cpet-nb report`` on the command line. :class:`ReportFailed` names the failing cell.
- :mod:`.sections`, :mod:`.statement`, :mod:`.cohort`, :mod:`.columns`: what the report
  says, as HTML from a stored job (:mod:`.job`), testable without a kernel.
- :mod:`.plots` (Bokeh figures of a test or a batch), :mod:`.testdata` (one stored test as
  the figures draw it).

Importing this package imports neither Bokeh nor papermill nor nbconvert: the modules that
draw or execute import them.
"""

from .batch import (
    PER_TEST,
    batch_report,
    executed_notebook_path,
    tests_zip_path,
    write_test_reports,
)
from .execute import ReportFailed
from .job import JobData, UnknownJob, load_job

__all__ = ["JobData", "PER_TEST", "ReportFailed", "UnknownJob", "batch_report",
           "executed_notebook_path", "load_job", "tests_zip_path", "write_test_reports"]
