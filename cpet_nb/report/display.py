"""Showing report pieces in a notebook: HTML sections and Bokeh layouts, with BokehJS inlined
so that the executed notebook, and the HTML made from it, work offline.

The report notebooks call :func:`load_bokeh` once at the top and then :func:`show` for
every section and figure. IPython and Bokeh are imported when called.
"""

from __future__ import annotations

from typing import Any

#: The BokehJS bundles the report's figures need (plots and their Div notes: 1.65 MB); the
#: tables, WebGL and MathJax bundles are left out (2.3 MB more per page: the report's
#: tables are HTML).
BOKEH_COMPONENTS = ("bokeh", "bokeh-widgets")


def load_bokeh() -> None:
    """Load BokehJS into the notebook's output, inlined (no CDN: the page works offline).

    Call it in every notebook before the first figure: each executed notebook, and each
    HTML file made from one, must carry its own copy.
    """
    from bokeh.io import output_notebook
    from bokeh.resources import Resources

    output_notebook(Resources(mode="inline", components=list(BOKEH_COMPONENTS)),
                    hide_banner=True)


def show(item: Any) -> None:
    """Display ``item``: HTML text (a report section) or a Bokeh figure or layout.

    A Bokeh item is published as ``bokeh.io.show`` publishes it in a notebook, but on its
    own: ``show`` adds every item to one document for the whole session, which makes each
    further figure slower to show (a batch report with a section per test took minutes).
    """
    if isinstance(item, str):
        from IPython.display import HTML, display

        display(HTML(item))
        return
    from bokeh.embed.notebook import notebook_content
    from bokeh.io.notebook import EXEC_MIME_TYPE, HTML_MIME_TYPE, JS_MIME_TYPE
    from IPython.display import publish_display_data

    script, div, _ = notebook_content(item)
    publish_display_data({HTML_MIME_TYPE: div})
    publish_display_data({JS_MIME_TYPE: script, EXEC_MIME_TYPE: ""},
                         metadata={EXEC_MIME_TYPE: {"id": item.id}})
