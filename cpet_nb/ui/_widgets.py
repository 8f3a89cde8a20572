"""Small widget builders shared by the panel's sections (buttons, rows, headings, error
text), so that every section looks the same."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import ipywidgets as w


def button(label: str, handler: Callable[[Any], None], tooltip: str, *, style: str = "",
           disabled: bool = False) -> w.Button:
    """A button sized to its label that calls ``handler(button)`` when clicked."""
    made = w.Button(description=label, tooltip=tooltip, button_style=style,
                    disabled=disabled, layout=w.Layout(width="auto", flex="0 0 auto"))
    made.on_click(handler)
    return made


def row(*children: w.Widget) -> w.HBox:
    """Widgets side by side, wrapping onto a new line when the notebook is narrow."""
    return w.HBox(list(children), layout=w.Layout(flex_flow="row wrap",
                                                  align_items="center"))


def heading(text: str) -> w.HTML:
    """A section's heading."""
    return w.HTML(f'<h3 style="margin:0.6em 0 0.2em 0">{escape(text)}</h3>')


def error_html(text: str) -> str:
    """``text``, escaped, in the panel's error colour."""
    return f'<span style="color:#b00020">{escape(text)}</span>'
