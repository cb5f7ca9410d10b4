"""``analyze(path).zeek`` against Zeek's own conn.log, row by row.

For every corpus capture with a ``NAME.conn.log`` beside it, rows are matched
by unordered endpoint pair and then start order, and every column the baseline
logs (originator, ``conn_state``, ``history``, packet and byte counters,
duration) is compared. The one difference that is right is stated below with
the reason and tested for what it is.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import tcpflow_analyzer

from .zeek_driver import CORPUS, baselines, read_conn_log

# Right differences: the analyzer keys connections by 4-tuple + VLAN on purpose;
# Zeek's default conn key ignores VLAN and merges the three contexts into one row.
KEYED_BY_VLAN = {"zeek/vlan-collisions.pcap"}

# Compared columns: every one of these that the baseline logs.
COLUMNS = (
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "conn_state",
    "history",
    "orig_pkts",
    "orig_ip_bytes",
    "resp_pkts",
    "resp_ip_bytes",
    "orig_bytes",
    "resp_bytes",
    "missed_bytes",
    "duration",
)


def _text(value: object, column: str) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if column == "duration":
        return f"{float(value):.6f}"  # type: ignore[arg-type]
    return str(value) or "-"


def _ours(path: Path) -> list[dict[str, str]]:
    """Our Zeek view (Analysis.zeek), one row per record Zeek would log."""
    df: pd.DataFrame = tcpflow_analyzer.analyze(path).zeek
    rows = []
    for _, r in df.sort_values(["ts", "conn_id"]).iterrows():
        row = {f"id.{k}": _text(r[k], k) for k in ("orig_h", "orig_p", "resp_h", "resp_p")}
        row.update({c: _text(r[c], c) for c in COLUMNS if not c.startswith("id.")})
        if row["duration"] == "0.000000":
            row["duration"] = "-"  # Zeek leaves a zero duration unset
        rows.append(row)
    return rows


def _pair(row: dict[str, str]) -> frozenset[tuple[str, str]] | tuple[str, str]:
    if "id.orig_p" not in row:  # a cut log that kept only the responder
        return (row["id.resp_h"], row["id.resp_p"])
    return frozenset({(row["id.orig_h"], row["id.orig_p"]), (row["id.resp_h"], row["id.resp_p"])})


def _same(
    key: frozenset[tuple[str, str]] | tuple[str, str],
    ours: frozenset[tuple[str, str]] | tuple[str, str],
) -> bool:
    return key == ours if isinstance(key, frozenset) else key in ours


def _differences(path: Path) -> list[str]:
    ours = _ours(path)
    out = []
    for n, exp in enumerate(read_conn_log(Path(str(path) + ".conn.log")), 1):
        key = _pair(exp)
        match = next((o for o in ours if _same(key, _pair(o))), None)
        if match is None:
            out.append(f"row {n}: no connection for {sorted(key)}")
            continue
        ours.remove(match)
        for col in COLUMNS:
            if col in exp and exp[col] != match[col]:
                out.append(f"row {n} {col}: zeek {exp[col]!r}, ours {match[col]!r}")
    out.extend(f"extra connection {o['id.orig_h']}:{o['id.orig_p']}" for o in ours)
    return out


def _params() -> list[object]:
    params: list[object] = []
    for path in baselines():
        name = str(path.relative_to(CORPUS))
        if name not in KEYED_BY_VLAN:
            params.append(pytest.param(path, id=name))
    return params


@pytest.mark.parametrize("path", _params())
def test_conn_state_and_history_match_zeek(path: Path) -> None:
    assert _differences(path) == []


def test_vlan_contexts_are_three_connections_where_zeek_logs_one() -> None:
    path = CORPUS / "zeek" / "vlan-collisions.pcap"
    df = tcpflow_analyzer.analyze(path).connections
    (zeek_row,) = read_conn_log(Path(str(path) + ".conn.log"))
    assert len(df) == 3
    assert set(df["conn_state"]) == {"SF"}
    assert set(df["history"]) == {"ShADadFf"}
    # Zeek's single merged row counts every packet of the three contexts.
    assert int(zeek_row["orig_pkts"]) == int(df["client_pkts"].sum())
    assert int(zeek_row["resp_pkts"]) == int(df["server_pkts"].sum())
