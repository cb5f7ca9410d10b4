"""``report.frame_csv`` writes exactly what ``DataFrame.to_csv(index=False)`` writes,
and ``csvtext.LineFormat`` (the streamed tables' lines, made from row dicts with no
frame) exactly what ``frame_csv`` writes for the typed frame of those rows.

On every table of every capture (``captures/`` and the public corpus), on
crafted rows with the values CSV makes awkward (quotes, commas, line breaks,
missing values in every nullable column, extreme and signed-zero floats), on
random rows of each table's columns, and on frames it leaves to ``to_csv``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tcpflow_analyzer
from tcpflow_analyzer.api import TABLES, analyze_rows
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.report import frame_csv, line_format, typed_frame

from .readable import readable

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
SUFFIXES = {".pcap", ".pcapng", ".gz", ".trace", ".cap", ".dump"}
CAPTURES = sorted(
    p
    for p in [*(ROOT / "captures").rglob("*"), *CORPUS.rglob("*")]
    if p.is_file() and p.suffix in SUFFIXES
)

CAPTURES = readable(CAPTURES)


def _same_csv(frame: pd.DataFrame) -> None:
    for header in (True, False):
        assert frame_csv(frame, header) == frame.to_csv(index=False, header=header)


def _same_lines(rows: list[dict[str, Any]], columns: dict[str, str]) -> None:
    """LineFormat's lines and header are frame_csv's text for the typed frame of ``rows``."""
    form = line_format(columns)
    frame = typed_frame(rows, columns)
    lines = "".join(form.line(row) + os.linesep for row in rows)
    assert lines == frame_csv(frame, False)
    assert form.header == frame_csv(typed_frame([], columns), True)


def test_there_are_captures() -> None:
    assert len(CAPTURES) > 100


@pytest.mark.parametrize("path", CAPTURES, ids=[str(p.relative_to(p.parents[1])) for p in CAPTURES])
def test_every_table_of_every_capture(path: Path) -> None:
    result = tcpflow_analyzer.analyze(path)
    frames = result.frames_by_name()
    assert set(frames) == set(TABLES)
    for frame in frames.values():
        _same_csv(frame)
        # A streamed analysis writes batches: a slice too (an index not from 0).
        _same_csv(frame.iloc[len(frame) // 3 :])
    rows = analyze_rows(path, Config()).tables
    for name, columns in TABLES.items():
        _same_lines(rows[name], columns)


AWKWARD_TEXTS = [
    None,
    "",
    "plain",
    "a,b",
    'say "hi"',
    '"',
    '""',
    ",",
    "line\nbreak",
    "carriage\rreturn",
    "both\r\nends",
    "\n",
    " leading and trailing ",
    "tab\there",
    "semi;colon",
    "unicode: é ✓ 𝄞",
    'quote, comma and\nnewline: "x"',
    "#comment",
    "NaN",
    "None",
]
AWKWARD_INTS = [None, 0, 1, -1, 2**63 - 1, -(2**63), 65535, 10**18]
AWKWARD_FLOATS = [
    None,
    math.nan,
    math.inf,
    -math.inf,
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    1e16,
    9999999999999998.0,
    1e-4,
    9.999999999999999e-05,
    0.1 + 0.2,
    1795246741.785305,
    1e22,
    123456789.0,
    -1.5,
]
AWKWARD_BOOLS = [None, True, False]

AWKWARD = {"string": AWKWARD_TEXTS, "Int64": AWKWARD_INTS, "float64": AWKWARD_FLOATS}
AWKWARD["boolean"] = AWKWARD_BOOLS


def _awkward_rows(columns: dict[str, str]) -> list[dict[str, Any]]:
    """Rows that take every awkward value of each column's dtype, and a row all missing."""
    longest = max(len(AWKWARD[dtype]) for dtype in columns.values())
    rows = [
        {
            name: AWKWARD[dtype][(i + k) % len(AWKWARD[dtype])]
            for k, (name, dtype) in enumerate(columns.items())
        }
        for i in range(longest)
    ]
    rows.append(dict.fromkeys(columns))
    return rows


@pytest.mark.parametrize("table", list(TABLES))
def test_awkward_values(table: str) -> None:
    columns = TABLES[table]
    rows = _awkward_rows(columns)
    frame = typed_frame(rows, columns)
    # The rows go round each dtype's awkward values: a missing one in every column.
    for name in columns:
        assert frame[name].isna().any(), name
    _same_csv(frame)
    _same_csv(typed_frame(rows[:1], columns))
    _same_csv(typed_frame(rows[-1:], columns))  # a row of missing values only
    _same_csv(typed_frame([], columns))  # header only, or nothing
    _same_lines(rows, columns)


def test_awkward_values_in_every_dtype_side_by_side() -> None:
    """One column per dtype, every awkward value of it in turn."""
    n = max(len(values) for values in AWKWARD.values())
    columns = {f"{dtype} column": dtype for dtype in AWKWARD}
    rows = [
        {f"{dtype} column": values[i % len(values)] for dtype, values in AWKWARD.items()}
        for i in range(n)
    ]
    frame = typed_frame(rows, columns)
    _same_csv(frame)
    text = frame_csv(frame, True)
    assert '"say ""hi"""' in text and ",-0.0," in text  # (it has quoting and -0.0 to get right)


@pytest.mark.parametrize("table", list(TABLES))
def test_typed_frames_are_not_left_to_pandas(table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tables' frames take the fast path (to_csv is not called), awkward values and all."""
    frame = typed_frame(_awkward_rows(TABLES[table]), TABLES[table])
    want = frame.to_csv(index=False)

    def no_to_csv(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("frame_csv fell back to to_csv")

    monkeypatch.setattr(pd.DataFrame, "to_csv", no_to_csv)
    assert frame_csv(frame, True) == want


# Values of other types than the rows hold, which the frames convert: LineFormat hands
# them to the frame path (report.csv_field) and writes the same.
ODD = {
    "Int64": [np.int64(7), np.int32(-3), 4.0, np.float64(2.0), True, np.nan, pd.NA],
    "float64": [np.float64(1.25), np.float32(0.1), np.int64(3), 7, True, False, np.nan],
    "boolean": [np.bool_(True), np.bool_(False), 1, 0, pd.NA, np.nan],
    "string": [np.str_("x,y"), np.str_(""), 5, 2.5, True, np.nan],
}


@pytest.mark.parametrize("dtype", list(ODD))
def test_odd_values_written_as_the_frame_writes_them(dtype: str) -> None:
    columns = {"n": "Int64", "x": dtype}
    for i, value in enumerate(ODD[dtype]):  # one frame each: some do not mix in a column
        _same_lines([{"n": i, "x": value}], columns)


def test_labels_needing_quotes() -> None:
    frame = typed_frame(
        [{"a,b": 1, 'say "x"': "y", "line\nbreak": 1.5}],
        {"a,b": "Int64", 'say "x"': "string", "line\nbreak": "float64"},
    )
    _same_csv(frame)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"only": pd.array([None, "x"], dtype="string")}),  # one column
        pd.DataFrame({"obj": [1, "a", None], "n": pd.array([1, 2, None], dtype="Int64")}),
        pd.DataFrame({"f32": np.array([0.1, 1e-8, np.nan], dtype=np.float32), "i": [1, 2, 3]}),
        pd.DataFrame({1: [1.5, 2.5], 2: pd.array([True, None], dtype="boolean")}),
        pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])),
        pd.DataFrame({"when": pd.to_datetime(["2024-01-01", None]), "n": [1, 2]}),
        pd.DataFrame({"a": pd.array([], dtype="Int64"), "b": pd.array([], dtype="string")}),
    ],
    ids=["one-column", "object", "float32", "int-labels", "multiindex", "datetime", "empty"],
)
def test_other_frames_are_left_to_pandas(frame: pd.DataFrame) -> None:
    _same_csv(frame)


def _value(dtype: str) -> st.SearchStrategy[Any]:
    if dtype == "Int64":
        return st.none() | st.integers(-(2**63), 2**63 - 1)
    if dtype == "float64":
        return st.none() | st.floats(allow_nan=True, allow_infinity=True)
    if dtype == "boolean":
        return st.none() | st.booleans()
    # Texts with the characters CSV quoting is about, and any other a text can be written
    # in UTF-8 with (no lone surrogate: pandas keeps "string" columns in pyarrow when it
    # is installed, which refuses them; the analysis makes none).
    other = st.characters(blacklist_categories=("Cs",))
    return st.none() | st.text(st.sampled_from(',"\r\n ab;\t\x00é') | other, max_size=12)


@st.composite
def _table_rows(draw: st.DrawFn) -> tuple[dict[str, str], list[dict[str, Any]]]:
    columns = TABLES[draw(st.sampled_from(list(TABLES)))]
    row = st.fixed_dictionaries({name: _value(dtype) for name, dtype in columns.items()})
    return columns, draw(st.lists(row, max_size=6))


@settings(max_examples=300, deadline=None)
@given(_table_rows())
def test_random_rows(table: tuple[dict[str, str], list[dict[str, Any]]]) -> None:
    columns, rows = table
    _same_csv(typed_frame(rows, columns))
    _same_lines(rows, columns)


@st.composite
def _row_with_holes(
    draw: st.DrawFn,
) -> tuple[dict[str, str], dict[str, Any], list[str], dict[str, Any]]:
    """A random row of a table, some of its columns (in order), new values for them."""
    columns = TABLES[draw(st.sampled_from(list(TABLES)))]
    row = draw(st.fixed_dictionaries({name: _value(dtype) for name, dtype in columns.items()}))
    holes = [name for name in columns if draw(st.booleans())]
    new = {name: draw(_value(columns[name])) for name in holes}
    return columns, row, holes, new


@settings(max_examples=300, deadline=None)
@given(_row_with_holes())
def test_a_line_split_around_columns_is_filled_back_to_the_line_with_new_values(
    case: tuple[dict[str, str], dict[str, Any], list[str], dict[str, Any]],
) -> None:
    """``split`` and ``fill`` (a frozen connection's row with its end values left open)
    give the line of the row with any values put in its holes."""
    columns, row, holes, new = case
    form = line_format(columns)
    pieces = form.split(row, holes)
    assert len(pieces) == len(holes) + 1
    assert form.fill(pieces, [form.field(h, row[h]) for h in holes]) == form.line(row)
    changed = {**row, **new}
    assert form.fill(pieces, [form.field(h, new[h]) for h in holes]) == form.line(changed)
    _same_lines([changed], columns)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=50))
def test_floats_from_any_bit_pattern(bits: list[int]) -> None:
    """Any float64 (subnormal, huge, either zero, any NaN) is written as pandas writes it."""
    values = np.array(bits, dtype=np.uint64).view(np.float64)
    frame = pd.DataFrame({"x": values, "y": values[::-1].copy()})
    _same_csv(frame)
