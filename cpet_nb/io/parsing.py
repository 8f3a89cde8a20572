"""Cell parsers vendor readers share: times, numbers as written in exports, unit scaling.

Every parser returns float and leaves a cell it cannot read missing (NaN), never 0, so the
reader can report those cells (``result.isna() & values.notna()``). Text cells are parsed with
vectorised regular expressions (``Series.str``); only cells that are neither text nor missing
(Excel times, numbers in a mixed column) are looked at one by one.
"""

from __future__ import annotations

import datetime as dt
import numbers
import re
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd

from ..record import CANONICAL_UNITS

#: Source units each canonical column may come in, and the factor to its canonical unit
#: (:data:`~cpet_nb.record.CANONICAL_UNITS`). Units are matched by :func:`to_canonical`'s rules.
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "t": {"s": 1.0, "ms": 1e-3, "min": 60.0, "day": 86400.0},
    "VO2": {"mL/min": 1.0, "L/min": 1000.0},
    "VCO2": {"mL/min": 1.0, "L/min": 1000.0},
    "VE": {"L/min": 1.0, "mL/min": 1e-3},
    "PetO2": {"mmHg": 1.0, "Torr": 1.0, "kPa": 760 / 101.325},
    "PetCO2": {"mmHg": 1.0, "Torr": 1.0, "kPa": 760 / 101.325},
    "VT": {"L": 1.0, "mL": 1e-3},
    "speed": {"km/h": 1.0, "mph": 1.609344, "m/s": 3.6},
}

#: An unsigned number: ASCII digits with at most one decimal point or comma, optional exponent.
_UNSIGNED = r"(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?"
#: Unit text after a number: a first word starting with a letter (not an exponent's ``e``),
#: ``%``, ``°`` or ``/`` and a letter, then words not starting with a digit, sign or separator.
_UNIT = r"(?![eE][+-]?[0-9])(?:[^\W\d_]|[%°]|/[^\W\d_])\S*(?:\s+[^\s0-9+\-.,]\S*)*"
_NUMBER_CELL = re.compile(rf"\A\s*(?P<number>[+-]?{_UNSIGNED})\s*(?P<unit>{_UNIT})?\s*\Z")
#: The same with only the number captured, for ``Series.str.extract``.
_NUMBER_ONLY = re.compile(rf"\A\s*([+-]?{_UNSIGNED})\s*(?:{_UNIT})?\s*\Z")
_PLAIN_NUMBER = re.compile(rf"\A\s*([+-]?{_UNSIGNED})\s*\Z")
#: ``h:mm:ss`` or ``m:ss`` with an optional fraction; the lookahead makes hours need ``mm:``.
_CLOCK = re.compile(r"\A\s*(?:(?P<h>[0-9]+):(?=[0-5][0-9]:))?(?P<m>[0-9]+)"
                    r":(?P<s>[0-5][0-9](?:[.,][0-9]+)?)\s*\Z")
#: :data:`UNIT_FACTORS` keyed by lower-case unit, for matching.
_UNIT_KEYS = {quantity: {unit.lower(): factor for unit, factor in units.items()}
              for quantity, units in UNIT_FACTORS.items()}


def parse_time_s(values: pd.Series, unit: str | None = None) -> pd.Series:
    """Times as vendors write them, in seconds.

    Parameters
    ----------
    values : pandas.Series
        Cells of a time column: text, numbers, or Excel time values.
    unit : str, optional
        Unit of plain numbers: ``"s"`` (the default), ``"ms"``, ``"min"`` (decimal minutes,
        e.g. Parvo) or ``"day"`` (Excel day fractions), matched like :func:`to_canonical`'s
        units. It applies to numbers only, never to clock text or time objects.

    Returns
    -------
    pandas.Series
        Float seconds with ``values``' index and name; NaN where a cell cannot be read.

    Raises
    ------
    ValueError
        If ``unit`` is not one of the above.

    Notes
    -----
    Text, after surrounding whitespace is stripped, is read as:

    - a plain number in ``unit``: optional sign, at most one ``.`` or ``,`` as decimal
      separator, optional exponent (``"12"``, ``"12.5"``, ``"12,5"``, ``"1e3"``);
    - clock time ``h:mm:ss`` (any number of hour digits; minutes and seconds two digits,
      each below 60) or ``m:ss`` (any number of minute digits, so ``"75:30"`` is 4530 s;
      seconds two digits below 60), either with an optional fraction of a second after ``.``
      or ``,`` (``"00:01:02,5"`` is 62.5 s) and without a sign.

    Anything else is NaN: more or fewer fields (``"1:2:3:4"``, ``"1:2"``), letters
    (``"ab:cd"``, ``"12 s"``), minutes or seconds of 60 or more in ``h:mm:ss``, seconds of 60
    or more in ``m:ss``, missing markers.

    Other cells:

    - numbers (numeric columns, or numbers in a mixed column) are in ``unit``; booleans are
      not times (NaN);
    - ``datetime.time`` gives seconds since midnight;
    - ``datetime.datetime`` and ``pandas.Timestamp`` (also ``datetime64`` columns) give
      seconds since midnight of their own day, from the wall clock (a time zone is ignored).
      Excel stores a time as a day fraction, and a reader that returns it as a datetime adds
      a day-0 date: 1899-12-30 (the serial epoch), 1899-12-31 (xlrd and other readers that
      undo the 1900 leap-year bug for serials below 60), 1900-01-01 (``strptime``'s default
      and some readers' day 0) or 1904-01-01 (1904 date system). The offset from that epoch
      is the time of day, so no date needs a special case. A duration of 24 h or more stored
      with a time-of-day format wraps, as Excel itself displays it; openpyxl reads
      ``[h]:mm:ss`` cells as timedeltas, which are exact;
    - ``datetime.timedelta`` and ``pandas.Timedelta`` (also ``timedelta64`` columns) give
      their total seconds;
    - anything else (dates without a time, other objects) is NaN.

    Times are exact to the microsecond. A result that is not finite (``"1e999"``, ``inf``)
    is NaN.

    Examples
    --------
    >>> parse_time_s(pd.Series(["12,5", "00:01:02,5", " 00:56", "1:60", None])).tolist()
    [12.5, 62.5, 56.0, nan, nan]
    >>> parse_time_s(pd.Series([0.52]), unit="min").round(6).tolist()
    [31.2]
    """
    scale = 1.0 if unit is None else _factor("t", unit)
    if pd.api.types.is_bool_dtype(values):
        seconds = pd.Series(np.nan, index=values.index, name=values.name)
    elif pd.api.types.is_numeric_dtype(values):
        seconds = values.astype(float) * scale
    elif pd.api.types.is_datetime64_any_dtype(values):
        seconds = (values.dt.hour * 3600 + values.dt.minute * 60 + values.dt.second
                   + values.dt.microsecond / 1e6).astype(float)
    elif pd.api.types.is_timedelta64_dtype(values):
        seconds = values.dt.total_seconds()
    else:
        seconds = _by_cell_type(values, lambda text: _text_time_s(text, scale),
                                lambda cell: _object_time_s(cell, scale))
    return seconds.where(np.isfinite(seconds))


def parse_number(values: pd.Series) -> pd.Series:
    """Numbers as vendors write them, as float.

    Parameters
    ----------
    values : pandas.Series
        Cells of a numeric column, or metadata values.

    Returns
    -------
    pandas.Series
        Float with ``values``' index and name; NaN where a cell is not a number.

    Notes
    -----
    Text, after surrounding whitespace is stripped, is an optional ``+`` or ``-``, ASCII digits
    with at most one ``.`` or ``,`` as decimal separator, decided per cell (``"74,8"`` is 74.8,
    ``"1.5"`` is 1.5, and ``"1,234"`` is 1.234), and an optional exponent (``"1,5e-3"``). A unit
    may follow, glued or after spaces (``"74,8kg"``, ``"178 cm"``, ``"35 mL/min/kg"``): its
    first word starts with a letter, ``%``, ``°`` or ``/`` and a letter, but not with what
    reads as an exponent (``"1E1:"`` is NaN, not 1 in unit ``E1:``); any further word must
    not start with a digit, sign or separator.

    Everything else is NaN, in particular thousands separators, which are never guessed
    (``"1,234.5"``, ``"1.234,5"``, ``"1 234"``), several numbers (``"3 x 2"``, ``"5/6"``),
    dates and times (``"2023-05-04"``, ``"12:30"``), missing markers (``""``, ``"-"``,
    ``"--"``, ``"n/a"``), ``"inf"``/``"nan"`` and text that overflows (``"1e999"``).

    Numeric columns pass through unchanged (as float); boolean columns and cells are not
    numbers (NaN). In a mixed column, real numbers are converted with ``float`` and other
    objects are NaN.

    Examples
    --------
    >>> parse_number(pd.Series(["74,8kg", "178 cm", "1,234.5", "-", "+1.5e3"])).tolist()
    [74.8, 178.0, nan, nan, 1500.0]
    """
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(np.nan, index=values.index, name=values.name)
    if pd.api.types.is_numeric_dtype(values):
        return values.astype(float)
    return _by_cell_type(values, _text_number, _object_number)


def parse_number_with_unit(text: str) -> tuple[float, str | None]:
    """A number and the unit written after it, by :func:`parse_number`'s rules.

    Returns
    -------
    number : float
        NaN when ``text`` is not a number (then the unit is ``None`` too).
    unit : str or None
        The text after the number, stripped; ``None`` when there is none.

    Examples
    --------
    >>> parse_number_with_unit("74,8 kg")
    (74.8, 'kg')
    >>> parse_number_with_unit("n/a")
    (nan, None)
    """
    match = _NUMBER_CELL.match(text)
    if match is None:
        return float("nan"), None
    number = float(match["number"].replace(",", "."))
    if not np.isfinite(number):
        return float("nan"), None
    return number, match["unit"].strip() if match["unit"] else None


def to_canonical(values: pd.Series | npt.ArrayLike, quantity: str, unit: str) -> pd.Series:
    """Numbers in a vendor's unit converted to the canonical unit of ``quantity``.

    Parameters
    ----------
    values : pandas.Series or array-like
        Numbers (parse text with :func:`parse_number` first).
    quantity : str
        A canonical column name with conversions in :data:`UNIT_FACTORS`.
    unit : str
        The unit as the export writes it. It is compared case-insensitively after spaces
        and brackets are removed and a trailing ``STPD`` or ``BTPS`` is dropped, so
        ``"[L/min]"``, ``"l/min"`` and ``"L/min (STPD)"`` are all ``L/min``. VO2 and VCO2
        are STPD by definition; VE is canonical at BTPS, so a VE unit marked STPD is
        refused (the reader must convert it with the file's STPD-to-BTPS factor, as the Parvo
        reader does).

    Returns
    -------
    pandas.Series
        Float, with ``values``' index when it is a Series.

    Raises
    ------
    ValueError
        If ``quantity`` has no conversions or ``unit`` is not accepted for it; the message
        names the quantity, the unit seen and the accepted units.

    Notes
    -----
    ============  ======================================================  ==========
    quantity      accepted units (factor)                                 canonical
    ============  ======================================================  ==========
    t             s, ms (0.001), min (60), day (86400)                    s
    VO2, VCO2     mL/min, L/min (1000)                                    mL/min
    VE            L/min, mL/min (0.001)                                   L/min
    PetO2/PetCO2  mmHg, Torr (1), kPa (760/101.325 = 7.50062)             mmHg
    VT            L, mL (0.001)                                           L
    speed         km/h, mph (1.609344), m/s (3.6)                         km/h
    ============  ======================================================  ==========

    Examples
    --------
    >>> to_canonical(pd.Series([1.5]), "VO2", "[L/min STPD]").tolist()
    [1500.0]
    """
    return pd.Series(values, dtype=float) * _factor(quantity, unit)


def _factor(quantity: str, unit: str) -> float:
    """Factor from ``unit`` to the canonical unit of ``quantity``, or a ValueError."""
    if quantity not in UNIT_FACTORS:
        raise ValueError(f"no unit conversions for quantity {quantity!r}; "
                         f"known quantities: {', '.join(UNIT_FACTORS)}")
    key = re.sub(r"[\s()\[\]{}]", "", unit).lower()
    conditions = re.search(r"(stpd|btps)\Z", key)
    if quantity == "VE" and conditions and conditions.group(1) == "stpd":
        raise ValueError(f"VE: unit {unit!r} is STPD; canonical VE is BTPS, so it needs the "
                         "export's STPD-to-BTPS factor, not a unit conversion")
    key = key[: conditions.start()] if conditions else key
    factor = _UNIT_KEYS[quantity].get(key)
    if factor is None:
        raise ValueError(f"{quantity}: unit {unit!r} is not accepted; accepted units: "
                         f"{', '.join(UNIT_FACTORS[quantity])} "
                         f"(canonical {CANONICAL_UNITS[quantity]})")
    return factor


def _by_cell_type(values: pd.Series, text_parser: Callable[[pd.Series], np.ndarray],
                  object_parser: Callable[[object], float]) -> pd.Series:
    """Text cells through a vectorised parser, other non-missing cells one by one."""
    result = np.full(len(values), np.nan)
    kind = pd.api.types.infer_dtype(values, skipna=True)
    if kind == "string":
        result[:] = text_parser(values)
    elif kind != "empty":
        cells = values.to_numpy(dtype=object)
        is_text = np.array([isinstance(cell, str) for cell in cells], dtype=bool)
        if is_text.any():
            result[is_text] = text_parser(values.iloc[is_text])
        other = ~is_text & values.notna().to_numpy()
        result[other] = [object_parser(cell) for cell in cells[other]]
    return pd.Series(result, index=values.index, name=values.name)


def _floats(text: pd.Series) -> np.ndarray:
    """Strings of digits (decimal comma allowed) or missing, as float."""
    return text.str.replace(",", ".", regex=False).to_numpy(dtype=float, na_value=np.nan)


def _text_number(text: pd.Series) -> np.ndarray:
    """:func:`parse_number` on text cells."""
    number = _floats(text.str.extract(_NUMBER_ONLY, expand=False))
    return np.where(np.isfinite(number), number, np.nan)


def _text_time_s(text: pd.Series, scale: float) -> np.ndarray:
    """:func:`parse_time_s` on text cells, plain numbers multiplied by ``scale``."""
    seconds = np.full(len(text), np.nan)
    is_clock = text.str.contains(":", regex=False).to_numpy(dtype=bool, na_value=False)
    if not is_clock.all():
        plain = text.iloc[~is_clock].str.extract(_PLAIN_NUMBER, expand=False)
        seconds[~is_clock] = _floats(plain) * scale
    if is_clock.any():
        parts = text.iloc[is_clock].str.extract(_CLOCK)
        hours, minutes = (parts[name].to_numpy(dtype=float, na_value=np.nan) for name in "hm")
        seconds[is_clock] = np.nan_to_num(hours) * 3600 + minutes * 60 + _floats(parts["s"])
    return seconds


def _object_number(cell: object) -> float:
    """:func:`parse_number` on a cell that is neither text nor missing."""
    if isinstance(cell, numbers.Real) and not isinstance(cell, bool):
        return float(cell)
    return np.nan


def _object_time_s(cell: object, scale: float) -> float:
    """:func:`parse_time_s` on a cell that is neither text nor missing."""
    if isinstance(cell, (dt.datetime, dt.time)):
        return cell.hour * 3600 + cell.minute * 60 + cell.second + cell.microsecond / 1e6
    if isinstance(cell, dt.timedelta):
        return cell.total_seconds()
    return _object_number(cell) * scale
