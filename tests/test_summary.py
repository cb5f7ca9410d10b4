"""The summary without pandas says what the frames say (report.SummaryBuilder).

``add_rows`` gives ``_worth_a_look`` the rows it may flag as the typed frame's
records hold them (``_as_typed``), and the counted columns are counted with
no frame: both checked against pandas on every connection of every capture.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tcpflow_analyzer.api import analyze_rows
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.report import (
    _FLAGGED_READS,
    _SUMMARY_COUNTED,
    CONNECTION_COLUMNS,
    SummaryBuilder,
    _as_typed,
    typed_frame,
)

from .test_summary_reads import CAPTURES

ROOT = Path(__file__).resolve().parents[1]


def _typed(value: Any) -> tuple[type, Any]:
    return type(value), value


def _same_as_the_frame(rows: list[dict[str, Any]]) -> None:
    records = typed_frame(rows, CONNECTION_COLUMNS).to_dict("records")
    for row, record in zip(rows, records, strict=True):
        want = {c: _typed(record[c]) for c in _FLAGGED_READS}
        got = {c: _typed(v) for c, v in _as_typed(row).items()}
        assert got == want


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_rows_are_typed_as_the_frame_types_them(path: Path) -> None:
    _same_as_the_frame(analyze_rows(path, Config()).tables["connections"])


def test_missing_values_are_typed_as_the_frame_types_them() -> None:
    row = dict.fromkeys(CONNECTION_COLUMNS)
    rows = [row, {**row, **{c: "" for c, t in CONNECTION_COLUMNS.items() if t == "string"}}]
    _same_as_the_frame(rows)


def _value_counts(frame: pd.DataFrame, column: str) -> str:
    """What the summary printed when it counted with pandas (frame in conn_id order)."""
    counts = frame.sort_values("conn_id", kind="stable")[column].fillna("-").value_counts()
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_counts_are_pandas_value_counts(path: Path) -> None:
    """In any order of the rows (they retire out of conn_id order), in batches, merged."""
    rows = analyze_rows(path, Config()).tables["connections"]
    frame = typed_frame(rows, CONNECTION_COLUMNS)
    shuffled = random.Random(path.name).sample(rows, len(rows))
    by_rows, other, by_frame = SummaryBuilder(), SummaryBuilder(), SummaryBuilder()
    half = len(shuffled) // 2
    for at in range(0, len(shuffled), 5):
        (by_rows if at < half else other).add_rows(shuffled[at : at + 5])
    by_rows.merge(other)
    by_frame.add(frame)
    for column in _SUMMARY_COUNTED:
        want = _value_counts(frame, column)
        assert by_rows._counts(column) == want, column
        assert by_frame._counts(column) == want, column
    assert by_rows.connections == by_frame.connections == len(rows)


def test_ties_are_listed_in_order_of_first_conn_id() -> None:
    rows = analyze_rows(ROOT / "captures" / "crawler" / "crawler.pcap", Config())
    template = rows.tables["connections"][0]
    # Ties of two; conn_ids fall as the rows come, so the lowest conn_id of a value is
    # its second one: d 90, c 91, b 92, a 93. A missing value ("" and None alike) and
    # "-" are counted together.
    values = ["b", "a", "", "c", "d", "-", None, "a", "b", "c", "d", "x"]
    made = [{**template, "conn_id": 100 - k, "active_closer": v} for k, v in enumerate(values)]
    frame = typed_frame(made, CONNECTION_COLUMNS)
    builder = SummaryBuilder()
    builder.add_rows(made)
    assert builder._counts("active_closer") == _value_counts(frame, "active_closer")
    assert builder._counts("active_closer") == "- 3, d 2, c 2, b 2, a 2, x 1"
