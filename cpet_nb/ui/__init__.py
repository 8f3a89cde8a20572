"""The JupyterLab panel (ipywidgets): a renderer of :meth:`cpet_nb.batch.Batch.subscribe`,
like the command line's progress bar. Imports ipywidgets; needs ``cpet-nb[jupyter]``."""
