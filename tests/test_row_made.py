"""``rows.RowTexts.made`` (a connection's line made with no row dict, cut around the
fields a frozen connection fills in at retirement, and the values of its row the
summary reads) gives what the row dicts give.

For every connection of every capture (``captures/`` and the public corpus) the
parts joined are ``LineFormat.line`` of the row ``add_retired`` makes, byte for
byte; the pieces between the cut fields are ``LineFormat.split`` of that row
around them, and the cut fields ``LineFormat.field``'s of the row's values; the
summary's values are the row's (``freeze.SUMMARY_COLUMNS``), of the same types;
the other texts are ``RowTexts.retired``'s. ``_ns_text`` (a time's field straight
from its nanoseconds) is checked against ``float_text(seconds(ns))``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tcpflow_analyzer.api import TABLES
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.csvtext import float_text, micros_text
from tcpflow_analyzer.findings import (
    TeardownFacts,
    detect_with_teardown,
    detect_with_teardown_values,
    seconds,
)
from tcpflow_analyzer.freeze import SUMMARY_COLUMNS
from tcpflow_analyzer.replay import replay
from tcpflow_analyzer.report import CONNECTION_COLUMNS, SUMMARY_READS, line_format
from tcpflow_analyzer.rows import RowTexts, _ns_text, add_retired
from tcpflow_analyzer.tracker import Connection

from .test_row_texts import CAPTURES

FORMATS = {name: line_format(columns) for name, columns in TABLES.items()}
LINE = FORMATS["connections"]
AT_END = ("client_state_at_end", "server_state_at_end", "time_wait_s")  # rows.LINE_CUTS


def test_summary_columns_are_the_summary_reads_in_column_order() -> None:
    assert sorted(SUMMARY_COLUMNS) == sorted(SUMMARY_READS)
    places = [list(CONNECTION_COLUMNS).index(c) for c in SUMMARY_COLUMNS]
    assert places == sorted(places)


def _check(texts: RowTexts, conn: Connection, config: Config, seen: dict[str, int]) -> None:
    end_ns = conn.end_ns
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    found = add_retired(tables, conn, conn.prev, config, end_ns)
    row = tables["connections"][0]
    summary, fields, got, found_too = texts.made(conn, conn.prev, config, end_ns)
    # The line, cut around AT_END's fields: the pieces between them and those fields.
    assert "".join(fields) == LINE.line(row)
    assert fields[0::2] == LINE.split(row, AT_END)
    assert fields[1::2] == [LINE.field(c, row[c]) for c in AT_END]
    want = tuple(row[c] for c in SUMMARY_COLUMNS)
    assert summary == want
    assert [type(v) for v in summary] == [type(v) for v in want]
    assert found_too == found
    assert got == texts.retired(conn, conn.prev, config, end_ns)[1]
    # The teardown columns as a tuple are the dict's values (and the facts' fields).
    found_3, values = detect_with_teardown_values(conn, conn.prev, config, end_ns)
    _, columns = detect_with_teardown(conn, conn.prev, config, end_ns)
    assert found_3 == found
    assert values == tuple(columns.values())
    assert TeardownFacts(*values) == TeardownFacts(**columns)
    seen["rows"] += 1
    for name in SEEN:
        seen[name] += row[name] not in (None, "", 0, False, 4)


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_made_is_the_row_dicts_text(path: Path) -> None:
    config = Config()
    texts = RowTexts(FORMATS)
    seen = dict.fromkeys(("rows", *SEEN), 0)
    played = replay(path, config, on_retire=lambda conn: _check(texts, conn, config, seen))
    if played.segments:
        assert seen["rows"] > 0


# Columns whose uncommon values (not None, "", 0, False; IPv6) the captures must hold.
SEEN = (
    "vlan",
    "ip_version",
    "prev_conn_id",
    "anomalies",
    "final_ack_seen",
    "rst_causes",
    "reuse_gap_s",
    "reuse_within_time_wait",
    "close_wait_s",
    "fin_wait_2_s",
    "time_wait_s",
)


def test_the_captures_hold_uncommon_values() -> None:
    """The comparison above meets each uncommon value (on the first captures that do)."""
    config = Config()
    texts = RowTexts(FORMATS)
    seen = dict.fromkeys(("rows", *SEEN), 0)
    for path in CAPTURES:
        replay(path, config, on_retire=lambda conn: _check(texts, conn, config, seen))
        if all(seen.values()):
            break
    assert all(seen.values()), seen


def _ns_cases() -> list[int]:
    rng = random.Random(7)
    cases = [0, 1, 999, 1000, 9000, 10_000, 99_000, 100_000, 1_000_000_000, 10**9 + 1000]
    cases += [-1000, -(10**18), 4 * 10**18 - 1000, 4 * 10**18, 4 * 10**18 + 1000, 2**63 - 1]
    for _ in range(20_000):
        scale = rng.choice((10**3, 10**6, 10**9, 10**12, 10**15, 10**18, 4 * 10**18))
        ns = rng.randrange(scale)
        cases += [ns, ns - ns % 1000, ns - ns % 10**6, ns - ns % 10**9]
    return cases


def test_ns_text_is_the_text_of_the_seconds() -> None:
    for ns in _ns_cases():
        assert _ns_text(ns) == float_text(seconds(ns)), ns


def test_micros_text_is_the_float_text_of_the_micros() -> None:
    rng = random.Random(11)
    for micros in [1, 9, 10, 11, 99, 100, 101, 10**6, 10**6 + 1, 4 * 10**15 - 1] + [
        rng.randrange(1, 4 * 10**15) for _ in range(20_000)
    ]:
        assert micros_text(micros) == float_text(micros / 1e6) == repr(micros / 1e6), micros
