"""``rows.RowTexts`` (the streamed tables' lines made with no row dicts) writes what
``csvtext.LineFormat`` writes for the row dicts.

``LineFormat`` is tied to pandas' ``to_csv`` by tests/test_frame_csv.py; here the
direct lines are compared with ``LineFormat.line`` of the rows ``add_retired``
makes, byte for byte, for every connection of every capture (``captures/`` and
the public corpus), with findings, anomalies and Zeek records of every kind
those hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tcpflow_analyzer.api import TABLES
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.csvtext import EOL
from tcpflow_analyzer.replay import replay
from tcpflow_analyzer.report import line_format
from tcpflow_analyzer.rows import RowTexts, add_retired, record_rows
from tcpflow_analyzer.tracker import Connection

from .readable import readable

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
SUFFIXES = {".pcap", ".pcapng", ".gz", ".trace", ".cap", ".dump"}
CAPTURES = readable(
    sorted(
        p
        for p in [*(ROOT / "captures").rglob("*"), *CORPUS.rglob("*")]
        if p.is_file() and p.suffix in SUFFIXES
    )
)
FORMATS = {name: line_format(columns) for name, columns in TABLES.items()}


def test_there_are_captures() -> None:
    assert len(CAPTURES) > 100


def _text(table: str, rows: list[dict[str, Any]]) -> str:
    line = FORMATS[table].line
    return EOL.join([line(row) for row in rows])


def _check(texts: RowTexts, conn: Connection, config: Config, counts: dict[str, int]) -> None:
    """The direct texts of ``conn`` are the lines of its row dicts."""
    end_ns = conn.end_ns
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    found = add_retired(tables, conn, conn.prev, config, end_ns)
    row, got, found_too = texts.retired(conn, conn.prev, config, end_ns)
    assert row == tables["connections"][0]
    assert found_too == found
    want = {name: _text(name, rows) for name, rows in tables.items() if rows}
    del want["connections"]
    assert got == want
    # Some of its transitions (a frozen connection's TIME_WAIT expiry).
    for records in (conn.transitions[-1:], conn.transitions[1::2], []):
        assert texts.transitions(conn, records) == _text("transitions", record_rows(conn, records))
    for name, rows in tables.items():
        counts[name] += len(rows)


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_texts_are_the_lines_of_the_rows(path: Path) -> None:
    config = Config()
    texts = RowTexts(FORMATS)
    counts = dict.fromkeys(TABLES, 0)
    played = replay(path, config, on_retire=lambda conn: _check(texts, conn, config, counts))
    if played.segments:
        assert counts["connections"] > 0


def test_the_captures_hold_every_table() -> None:
    """The comparison above meets rows of every table (on the first captures that do)."""
    config = Config()
    texts = RowTexts(FORMATS)
    counts = dict.fromkeys(TABLES, 0)
    for path in CAPTURES:
        replay(path, config, on_retire=lambda conn: _check(texts, conn, config, counts))
        if all(counts.values()):
            break
    assert all(counts.values()), counts
