"""The settings form, built from the declared settings table
(:meth:`cpet_nb.Settings.options`): one control per setting, chosen by its kind, with its
unit in the label and its help as the tooltip. Nothing here lists settings by hand."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from ..io.profiles import list_profiles
from ..settings import GROUPS, Option, Settings

#: Groups shown open; the others are in a collapsed section.
SHOWN_GROUPS = ("analysis", "limits")
#: The profile control's value for "no lab profile".
NO_PROFILE = "(none: detect the format)"
#: The profile control's value for a mapping given to the panel as a dictionary.
GIVEN_PROFILE = "(the mapping given to the panel)"
#: Stands for "no bound" in a number field (ipywidgets needs a finite one).
UNBOUNDED = 1e12
_STYLE = {"description_width": "16em"}
_LAYOUT = w.Layout(width="34em")


class SettingsForm:
    """Controls for every setting, grouped as :data:`cpet_nb.settings.GROUPS`.

    Parameters
    ----------
    initial : Settings
        The values the controls start with.
    """

    def __init__(self, initial: Settings) -> None:
        self.initial = initial
        self.controls: dict[str, w.Widget] = {
            name: _control(name, option, getattr(initial, name))
            for name, option in Settings.options().items()}
        self.participants = w.Text(
            description="participants table (CSV)", style=_STYLE, layout=_LAYOUT,
            placeholder="path on the server; optional",
            tooltip="Weight, height, age and sex by file name or number; they override "
                    "what the files say (checked before the batch starts).")
        groups = {g: [self.controls[n] for n, o in Settings.options().items() if o.group == g]
                  for g in GROUPS}
        shown = [c for g in SHOWN_GROUPS for c in groups[g]]
        hidden = w.Accordion([w.VBox([c for g in GROUPS if g not in SHOWN_GROUPS
                                      for c in groups[g]])],
                             titles=("Engine and store",), selected_index=None)
        self.widget = w.Accordion(
            [w.VBox([w.HTML("<i>Analysis settings change results (and the analysis key); "
                            "limits protect the batch from bad files.</i>"),
                     *shown, self.participants, hidden])],
            titles=("Settings",), selected_index=None)

    def values(self) -> dict[str, Any]:
        """The settings as keyword arguments of :func:`cpet_nb.submit` (``profile`` as a
        saved profile's name or the given mapping; empty optional fields as None)."""
        out = {}
        for name, control in self.controls.items():
            value = control.value
            if name == "profile":
                value = {NO_PROFILE: None, GIVEN_PROFILE: self.initial.profile}.get(value,
                                                                                     value)
            elif Settings.options()[name].kind is list:
                value = list(value)
            elif Settings.options()[name].optional:
                value = _optional_number(name, value)
            out[name] = value
        return out

    def settings(self) -> Settings:
        """The settings the controls hold, validated.

        Raises
        ------
        ValueError
            Naming the setting and what is valid.
        """
        return Settings.load(environ={}, **self.values())

    def participants_path(self) -> str | None:
        """The participants table's path, None when the field is empty."""
        return self.participants.value.strip() or None


def _label(name: str, option: Option) -> str:
    return name.replace("_", " ") + (f" ({option.unit})" if option.unit else "")


def _control(name: str, option: Option, value: Any) -> w.Widget:
    """The control of one setting: a dropdown for choices and profiles, a multiple selection
    for a list of choices, a checkbox for a flag, a bounded number field for a number, a text
    field for an optional number."""
    common = {"description": _label(name, option), "tooltip": option.help,
              "style": _STYLE, "layout": _LAYOUT}
    if option.kind is dict:
        names = [NO_PROFILE, *list_profiles()]
        if value is not None:
            names.append(GIVEN_PROFILE)
        return w.Dropdown(options=names, value=NO_PROFILE if value is None else GIVEN_PROFILE,
                          **common)
    if option.kind is list:  # several of the choices (e.g. the models to run)
        return w.SelectMultiple(options=list(option.choices), value=tuple(value),
                                rows=min(len(option.choices), 6), **common)
    if option.choices is not None:
        return w.Dropdown(options=list(option.choices), value=value, **common)
    if option.kind is bool:
        return w.Checkbox(value=value, indent=False, **common)
    if option.optional:
        return w.Text(value="" if value is None else f"{value:g}",
                      placeholder="empty: not set", **common)
    low = option.low if option.low is not None else -UNBOUNDED
    high = option.high if option.high is not None else UNBOUNDED
    if option.kind is int:
        return w.BoundedIntText(value=value, min=int(low), max=int(high), **common)
    step = 0.01 if high - low <= 10 else 1.0
    # a low-open bound (must be above 0) is checked by Settings when the batch starts
    return w.BoundedFloatText(value=value, min=low, max=high, step=step, **common)


def _optional_number(name: str, text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number or empty, got {text!r}") from None
