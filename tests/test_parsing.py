import datetime as dt
import math
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cpet_nb.io.parsing import (
    UNIT_FACTORS,
    parse_number,
    parse_number_with_unit,
    parse_time_s,
    to_canonical,
)
from cpet_nb.record import CANONICAL_UNITS

#: A leading number as the parsers define it, written out independently for the properties.
LEADING_NUMBER = re.compile(r"\s*([+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?)")
TEXT_DTYPES = [object, "str", "string"]


def time_s(cell, unit=None):
    return parse_time_s(pd.Series([cell], dtype=object), unit).iloc[0]


def number(cell):
    return parse_number(pd.Series([cell], dtype=object)).iloc[0]


# --- parse_time_s: text ---------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [
    ("12", 12.0), ("12.5", 12.5), ("12,5", 12.5), ("+12", 12.0), ("1e3", 1000.0),
    ("1:02:03", 3723.0), ("01:02:03", 3723.0), ("100:00:00", 360000.0),  # h, hh, hhh:mm:ss
    ("02:03", 123.0), ("2:03", 123.0), ("75:30", 4530.0),  # mm:ss, m:ss, minutes past 59
    ("00:01:02,5", 62.5), ("00:01:02.5", 62.5), ("1:02,25", 62.25),  # Cortex fraction
    (" 00:56", 56.0), ("00:56 ", 56.0), ("\t0:00:00\n", 0.0),  # Vyntus padding; a real 0
])
def test_time_text(text, seconds):
    assert time_s(text) == seconds


@pytest.mark.parametrize("text", [
    "1:2:3:4", "ab:cd", "1:60:00", "1:00:60", "0:60", "1:2", "1:2:03", ":30", "1:", "1::00",
    "-0:30", "1:02:03,", "01:02:03.5.5", "2023-05-04 10:00:00", "12 s", "1 2", "12,5,1",
    "", " ", "-", "--", "n/a", "nan", "inf", "1e999",
])
def test_time_text_unreadable_is_nan_not_zero(text):
    assert math.isnan(time_s(text))


@pytest.mark.parametrize(("cell", "unit", "seconds"), [
    (1500, "ms", 1.5), ("1500", "ms", 1.5), (0.52, "min", 31.2), ("0,52", "min", 31.2),
    (0.5, "day", 43200.0), ("0.25", "day", 21600.0), (12, "s", 12.0), (12, "[S]", 12.0),
    ("00:01:02", "min", 62.0),  # the unit is for plain numbers only
])
def test_time_units_of_plain_numbers(cell, unit, seconds):
    assert time_s(cell, unit) == pytest.approx(seconds, rel=1e-12)


def test_time_unknown_unit_raises():
    with pytest.raises(ValueError, match=r"'h'.*s, ms, min, day"):
        parse_time_s(pd.Series(["1"]), unit="h")


# --- parse_time_s: Excel and other objects --------------------------------------------------

@pytest.mark.parametrize(("cell", "seconds"), [
    (dt.time(0, 1, 2, 500000), 62.5),
    (dt.time(23, 59, 59), 86399.0),
    (dt.datetime(1899, 12, 30, 0, 1, 2), 62.0),  # Excel serial epoch
    (dt.datetime(1899, 12, 31, 0, 1, 2), 62.0),  # xlrd's day 0 for serials below 60
    (dt.datetime(1900, 1, 1, 0, 1, 2), 62.0),  # strptime's default date
    (pd.Timestamp("1904-01-01 00:01:02.25"), 62.25),  # 1904 date system
    (dt.datetime(2024, 5, 4, 10, 0, 1), 36001.0),  # wall clock: seconds since midnight
    (dt.timedelta(hours=25, milliseconds=500), 90000.5),  # [h]:mm:ss
    (pd.Timedelta("62.5s"), 62.5),
    (62, 62.0), (np.float32(1.5), 1.5),
])
def test_time_objects(cell, seconds):
    assert time_s(cell) == seconds


@pytest.mark.parametrize("cell", [True, np.bool_(False), dt.date(2024, 5, 4), None, np.nan,
                                  pd.NaT, float("inf"), object()])
def test_time_objects_unreadable_is_nan(cell):
    assert math.isnan(time_s(cell))


def test_time_mixed_column_keeps_index_name_and_order():
    values = pd.Series(["0:01:00", 30, dt.time(0, 2), None, "x"], index=list("abcde"),
                       name="Time", dtype=object)
    out = parse_time_s(values, unit="s")
    expected = pd.Series([60.0, 30.0, 120.0, np.nan, np.nan], index=list("abcde"), name="Time")
    pd.testing.assert_series_equal(out, expected)


def test_time_typed_columns():
    stamps = pd.Series(pd.to_datetime(["2024-03-31 10:00:01.5", None]))
    assert parse_time_s(stamps).tolist()[0] == 36001.5
    # the daylight-saving day: wall clock, not time elapsed since midnight
    berlin = stamps.dt.tz_localize("Europe/Berlin")
    assert parse_time_s(berlin).iloc[0] == 36001.5
    deltas = pd.Series(pd.to_timedelta(["00:01:02.5", None]))
    assert parse_time_s(deltas).iloc[0] == 62.5
    assert parse_time_s(deltas).isna().iloc[1]
    ints = parse_time_s(pd.Series([1, None], dtype="Int64"), unit="min")
    assert ints.iloc[0] == 60.0 and ints.isna().iloc[1]
    assert parse_time_s(pd.Series([1.0, np.inf])).isna().tolist() == [False, True]
    assert parse_time_s(pd.Series([True, False])).isna().all()
    assert parse_time_s(pd.Series([], dtype=object)).dtype == float


@pytest.mark.parametrize("dtype", TEXT_DTYPES)
def test_time_text_dtypes_agree(dtype):
    values = pd.Series(["00:01:02,5", "12,5", None, "x"], dtype=dtype)
    assert parse_time_s(values).fillna(-1).tolist() == [62.5, 12.5, -1, -1]


# --- parse_number ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("74,8", 74.8), ("1.5", 1.5), ("74,8kg", 74.8), ("178 cm", 178.0), ("+3", 3.0),
    ("-3", -3.0), ("-0,5", -0.5), ("1e3", 1000.0), ("1,5E-3", 0.0015), ("2.5e+2", 250.0),
    (".5", 0.5), ("5.", 5.0), (" 7 ", 7.0), ("35 mL/min/kg", 35.0), ("20 °C", 20.0),
    ("50 %", 50.0), ("120 /min", 120.0), ("1,5 L/min BTPS", 1.5), ("4 µg", 4.0),
    ("1,234", 1.234),  # one separator is always the decimal one
])
def test_number_text(text, value):
    assert number(text) == value


@pytest.mark.parametrize("text", [
    "1,234.5", "1.234,5", "1 234", "1.234.567",  # thousands separators are not guessed
    "-", "", "--", "n/a", "N/A", " ", "nan", "inf", "-inf", "1e999",
    "3 x 2", "5/6", "12:30", "2023-05-04", "1.2.3", "12 kg -5", "kg 12", "e5", "++1",
    "1E1:", "1e5/6",  # an exponent is never the start of a unit
    "\u0663", "\u00bd",  # an Arabic-Indic three and a vulgar half are not ASCII numbers
])
def test_number_text_unreadable_is_nan(text):
    assert math.isnan(number(text))


def test_number_numeric_input_unchanged():
    values = pd.Series([1, 2.5, -np.inf, np.nan], index=[3, 1, 2, 0], name="VO2")
    pd.testing.assert_series_equal(parse_number(values), values.astype(float))
    ints = parse_number(pd.Series([1, None], dtype="Int64"))
    assert ints.iloc[0] == 1.0 and ints.isna().iloc[1]
    assert parse_number(pd.Series([True, False])).isna().all()


def test_number_mixed_column():
    values = pd.Series(["1,5", 2, np.float32(0.5), True, None, dt.time(1), "x"], dtype=object)
    assert parse_number(values).fillna(-1).tolist() == [1.5, 2.0, 0.5, -1, -1, -1, -1]


@pytest.mark.parametrize("dtype", TEXT_DTYPES)
def test_number_text_dtypes_agree(dtype):
    values = pd.Series(["74,8kg", None, "-", "1.5"], dtype=dtype)
    assert parse_number(values).fillna(-1).tolist() == [74.8, -1, -1, 1.5]


@pytest.mark.parametrize(("text", "expected"), [
    ("74.8 kg", (74.8, "kg")), ("74,8kg", (74.8, "kg")), ("178", (178.0, None)),
    (" 1,5 L/min BTPS ", (1.5, "L/min BTPS")), ("-2 %", (-2.0, "%")),
])
def test_number_with_unit(text, expected):
    assert parse_number_with_unit(text) == expected


@pytest.mark.parametrize("text", ["n/a", "", "1,234.5", "1e999", "kg"])
def test_number_with_unit_unreadable(text):
    value, unit = parse_number_with_unit(text)
    assert math.isnan(value) and unit is None


# --- to_canonical ---------------------------------------------------------------------------

@pytest.mark.parametrize(("quantity", "unit", "value", "expected"), [
    ("VO2", "L/min", 1.5, 1500.0), ("VO2", "mL/min", 1500.0, 1500.0),
    ("VCO2", "L/min", 1.2, 1200.0), ("VE", "L/min", 30.0, 30.0), ("VE", "mL/min", 30000, 30.0),
    ("PetO2", "mmHg", 100.0, 100.0), ("PetO2", "kPa", 1.0, 7.50062),
    ("PetCO2", "kPa", 5.3, 5.3 * 7.50062), ("PetCO2", "Torr", 40.0, 40.0),
    ("VT", "L", 1.2, 1.2), ("VT", "mL", 500.0, 0.5),
    ("speed", "km/h", 10.0, 10.0), ("speed", "mph", 10.0, 16.09344), ("speed", "m/s", 1.0, 3.6),
    ("t", "s", 12.0, 12.0), ("t", "ms", 1500.0, 1.5), ("t", "min", 1.5, 90.0),
])
def test_to_canonical_table(quantity, unit, value, expected):
    assert to_canonical([value], quantity, unit).iloc[0] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("unit", ["[L/min]", "l/min", "L/min (STPD)", "L/MIN BTPS",
                                  " L / min ", "{l/min}stpd", "(L/min)"])
def test_to_canonical_unit_spelling(unit):
    assert to_canonical([1.0], "VO2", unit).iloc[0] == 1000.0


def test_to_canonical_keeps_index():
    values = pd.Series([1.0, 2.0], index=[5, 7], name="VT")
    pd.testing.assert_series_equal(to_canonical(values, "VT", "mL"),
                                   pd.Series([0.001, 0.002], index=[5, 7], name="VT"))


@pytest.mark.parametrize(("quantity", "unit", "pattern"), [
    ("VO2", "mL/kg/min", r"VO2.*'mL/kg/min'.*mL/min, L/min"),
    ("PetCO2", "%", r"PetCO2.*'%'.*mmHg, Torr, kPa"),
    ("speed", "ATPS", r"speed.*'ATPS'.*km/h, mph, m/s"),
    ("HR", "bpm", r"'HR'.*VO2"),
])
def test_to_canonical_unknown_raises_with_what_is_accepted(quantity, unit, pattern):
    with pytest.raises(ValueError, match=pattern):
        to_canonical([1.0], quantity, unit)


def test_unit_table_targets_are_the_canonical_units():
    for quantity, units in UNIT_FACTORS.items():
        assert units[CANONICAL_UNITS[quantity]] == 1.0


# --- properties -----------------------------------------------------------------------------

clock_parts = st.tuples(
    st.integers(0, 199), st.integers(0, 59), st.integers(0, 59),
    st.text("0123456789", max_size=6), st.sampled_from(".,"), st.booleans(),
)


def clock_text(parts):
    hours, minutes, seconds, fraction, separator, padded = parts
    text = f"{hours:02d}" if padded else str(hours)
    text += f":{minutes:02d}:{seconds:02d}"
    return text + (separator + fraction if fraction else "")


def clock_value(parts):
    hours, minutes, seconds, fraction = parts[:4]
    return hours * 3600 + minutes * 60 + seconds + (int(fraction) / 10 ** len(fraction)
                                                    if fraction else 0)


@given(st.lists(clock_parts, min_size=1, max_size=20))
def test_property_clock_round_trip(parts):
    out = parse_time_s(pd.Series([clock_text(p) for p in parts]))
    np.testing.assert_allclose(out, [clock_value(p) for p in parts], rtol=0, atol=1e-6)


@given(st.lists(st.tuples(st.integers(0, 999), st.integers(0, 59)), min_size=1, max_size=20))
def test_property_minutes_seconds_round_trip(parts):
    out = parse_time_s(pd.Series([f"{m}:{s:02d}" for m, s in parts]))
    assert out.tolist() == [m * 60.0 + s for m, s in parts]


finite_floats = st.floats(allow_nan=False, allow_infinity=False)


@given(st.lists(finite_floats, min_size=1, max_size=20))
def test_property_decimal_comma_equals_point(values):
    point = pd.Series([repr(v) for v in values])
    comma = point.str.replace(".", ",", regex=False)
    assert parse_number(point).tolist() == values
    assert parse_number(comma).tolist() == values
    assert parse_time_s(comma).tolist() == parse_time_s(point).tolist() == values


units = st.sampled_from(["kg", "cm", "mL/min", "L/min", "%", "bpm", "mmHg", "°C", "W", "km/h",
                         "µg", "/min", "mL/min/kg"]) | st.text(
    st.characters(categories=("Lu", "Ll")), min_size=1, max_size=8)


@given(st.lists(st.tuples(finite_floats, st.sampled_from(["", " ", "  "]), units),
                min_size=1, max_size=20))
def test_property_numbers_glued_to_units(cells):
    texts = [f"{value!r}{space}{unit}" for value, space, unit in cells]
    assert parse_number(pd.Series(texts)).tolist() == [value for value, _, _ in cells]
    for text, (value, _, unit) in zip(texts, cells, strict=True):
        assert parse_number_with_unit(text) == (value, unit)


@given(st.lists(st.text(st.characters(exclude_characters="0123456789")), max_size=20))
def test_property_text_without_digits_is_never_a_number(texts):
    values = pd.Series(texts, dtype=object)
    assert parse_number(values).isna().all()
    assert parse_time_s(values).isna().all()


near_misses = st.text("0123456789:.,+-eE /kg", max_size=12)


@given(st.lists(st.none() | st.text() | near_misses, max_size=20))
def test_property_arbitrary_text_never_raises_and_finite_means_a_leading_number(texts):
    values = pd.Series(texts, dtype=object)
    numbers, seconds = parse_number(values), parse_time_s(values)
    assert numbers.dtype == seconds.dtype == float
    assert len(numbers) == len(seconds) == len(texts)
    for text, value, time in zip(texts, numbers, seconds, strict=True):
        if math.isfinite(value):
            leading = LEADING_NUMBER.match(text)
            assert leading and value == float(leading[1].replace(",", "."))
        if math.isfinite(time):
            assert any(c in "0123456789" for c in text)


def test_ve_at_stpd_is_refused_not_silently_taken_as_btps():
    with pytest.raises(ValueError, match="STPD-to-BTPS"):
        to_canonical(pd.Series([10.0]), "VE", "L/min STPD")
    assert to_canonical(pd.Series([10.0]), "VE", "L/min (BTPS)").tolist() == [10.0]
    assert to_canonical(pd.Series([1.0]), "VO2", "L/min STPD").tolist() == [1000.0]
