"""An executed report notebook as a standalone HTML page without code (nbconvert).

The page is made with cpet_nb's nbconvert template (``templates/nbconvert/cpet_nb_report``):
JupyterLab's look, nothing loaded from the internet (BokehJS is inlined by the notebook),
so that the file works offline, attached to an e-mail or in a supplement. Cells tagged
:data:`HIDDEN_TAGS` (the template's notes to whoever opens the notebook, its parameters)
are left out. nbconvert is imported when a page is made.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

#: Cells with these tags are not in the page: the template's notes, its parameters and the
#: parameters papermill injected.
HIDDEN_TAGS = ("template-notes", "parameters", "injected-parameters")
#: The nbconvert template (a folder of :data:`TEMPLATES`).
TEMPLATE_NAME = "cpet_nb_report"


def templates_folder() -> Path:
    """The folder of cpet_nb's nbconvert templates."""
    return Path(str(resources.files(__package__).joinpath("templates", "nbconvert")))


def notebook_html(notebook: Any, title: str) -> str:
    """The page of an executed notebook (an ``nbformat`` notebook): outputs and Markdown
    only, titled ``title``."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    exporter = HTMLExporter(template_name=TEMPLATE_NAME,
                            extra_template_basedirs=[str(templates_folder())],
                            exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags=set(HIDDEN_TAGS)),
                                   enabled=True)
    notebook.metadata["title"] = title
    page, _ = exporter.from_notebook_node(notebook)
    return page
