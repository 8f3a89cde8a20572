"""The JupyterLab panel (ipywidgets): a renderer of :meth:`cpet_nb.batch.Batch.subscribe`,
like the command line's progress bar. Imports ipywidgets, jupyter_bokeh and Bokeh; needs
``pip install "cpet-nb[jupyter]"``.

- :mod:`.panel`: :class:`Panel`, the widget of :func:`cpet_nb.panel` (intake, settings,
  run, results, review, report);
- :mod:`._settings`: the settings form, built from :meth:`cpet_nb.Settings.options`;
- :mod:`._tables`: Bokeh ``DataTable`` of a DataFrame (streamed, filtered from Python);
- :mod:`._plots`: the one place the panel asks for plots (per test, per batch, HTML pages);
- :mod:`._review`: the review queue, and the decisions on a test's VT1 and VT2;
- :mod:`._widgets`: the buttons, rows and headings every section uses;
- :mod:`._bigupload`: the *Upload large selection* button, streaming files to the server
  extension (an anywidget; its front end is ``_bigupload.js``).
"""

from .panel import Panel

__all__ = ["Panel"]
