"""Collection of the package's doctests: the panel (cpet_nb/ui) needs the ``jupyter``
extra; without it its modules are not collected (tests/test_panel.py then skips)."""

import importlib.util

collect_ignore_glob = ([] if importlib.util.find_spec("ipywidgets")
                       and importlib.util.find_spec("jupyter_bokeh") else ["cpet_nb/ui/*"])
