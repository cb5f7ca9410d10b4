"""The library surface: analyze() returns fixed-column DataFrames and honours msl."""

from __future__ import annotations

import struct
from pathlib import Path

import pandas as pd

import tcpflow_analyzer
from tcpflow_analyzer.report import ANOMALY_COLUMNS, CONNECTION_COLUMNS, TRANSITION_COLUMNS

from .craft import Conversation, clean_close_pcap


def _dtypes(df: pd.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in df.dtypes.items()}


def test_frames_have_documented_columns_and_dtypes(tmp_path: Path) -> None:
    result = tcpflow_analyzer.analyze(clean_close_pcap(tmp_path / "c.pcap"))
    assert _dtypes(result.connections) == CONNECTION_COLUMNS
    assert _dtypes(result.transitions) == TRANSITION_COLUMNS
    assert _dtypes(result.anomalies) == ANOMALY_COLUMNS


def test_empty_capture_gives_empty_frames_with_columns(tmp_path: Path) -> None:
    header_only = tmp_path / "empty.pcap"
    header_only.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    result = tcpflow_analyzer.analyze(header_only)
    assert result.frames == 0
    assert result.connections.empty and _dtypes(result.connections) == CONNECTION_COLUMNS
    assert result.transitions.empty and _dtypes(result.transitions) == TRANSITION_COLUMNS


def test_clean_close_summary_row(tmp_path: Path) -> None:
    row = tcpflow_analyzer.analyze(clean_close_pcap(tmp_path / "c.pcap")).connections.iloc[0]
    assert (row.client_ip, row.client_port, row.server_ip, row.server_port) == (
        "10.1.0.1",
        40000,
        "10.1.0.2",
        80,
    )
    assert row.handshake == "complete"
    assert row.active_closer == "client"
    assert row.close_type == "fin"
    assert row.client_state_at_end == "TIME_WAIT"
    assert row.server_state_at_end == "CLOSED"
    assert row.first_frame == 1 and row.last_frame == 10 and row.packets == 10
    assert row.client_bytes == len(b"GET / HTTP/1.0\r\n\r\n")


def _close_then_later_packet(path: Path, later: float) -> Path:
    """A client-first close, then an unrelated packet ``later`` seconds after the close."""
    conv = Conversation().handshake().client_close()
    other = Conversation(client=("10.1.0.3", 41000), t0=conv.t0)
    other.c("S", at=conv._t + later)
    conv.packets.extend(other.packets)
    return conv.write(path)


def test_time_wait_lasts_two_msl(tmp_path: Path) -> None:
    pcap = _close_then_later_packet(tmp_path / "tw.pcap", later=10.0)
    default = tcpflow_analyzer.analyze(pcap)  # msl 30 s: TIME_WAIT lasts 60 s
    short = tcpflow_analyzer.analyze(pcap, msl=4.0)  # 8 s: expired 10 s later
    assert default.connections.iloc[0].client_state_at_end == "TIME_WAIT"
    assert short.connections.iloc[0].client_state_at_end == "CLOSED"
    expiry = short.transitions[short.transitions.event == "timeout_2msl"]
    assert len(expiry) == 1 and pd.isna(expiry.iloc[0].frame)
    entered = short.transitions[short.transitions.to_state == "TIME_WAIT"].iloc[0].ts
    assert abs(expiry.iloc[0].ts - entered - 8.0) < 1e-6


def test_to_csv_round_trips(tmp_path: Path) -> None:
    result = tcpflow_analyzer.analyze(clean_close_pcap(tmp_path / "c.pcap"))
    paths = result.to_csv(tmp_path / "out")
    assert sorted(p.name for p in paths) == [
        "anomalies.csv",
        "connections.csv",
        "findings.csv",
        "transitions.csv",
        "zeek_conn.csv",
    ]
    back = pd.read_csv(tmp_path / "out" / "transitions.csv")
    assert back["to_state"].tolist() == result.transitions["to_state"].tolist()
    assert back["ts"].tolist() == result.transitions["ts"].tolist()


def test_bad_checksums_are_counted_per_side_and_still_analyzed(tmp_path: Path) -> None:
    conv = Conversation().handshake()
    conv.c("PA", b"hello")
    conv.packets[-1]["TCP"].chksum = 0x1234  # as a sender's capture with offload shows it
    conv.s("A")
    conv.client_close()
    result = tcpflow_analyzer.analyze(conv.write(tmp_path / "bad.pcap"))
    row = result.connections.iloc[0]
    assert (row.client_bad_checksums, row.server_bad_checksums) == (1, 0)
    assert row.client_bytes == 5  # the segment was analyzed all the same
    assert row.close_type == "fin"
    assert "1 bad checksum(s)" in result.summary()


def test_one_direction_capture_is_said_so(tmp_path: Path) -> None:
    conv = Conversation()
    conv.s("SA")  # only the server's side of the connection was captured
    conv.s("PA", b"banner")
    conv.s("FA")
    result = tcpflow_analyzer.analyze(conv.write(tmp_path / "one.pcap"))
    row = result.connections.iloc[0]
    assert (row.client_pkts, row.server_pkts) == (0, 3)
    assert "one direction only: no client packets in the capture" in result.summary()


def test_frames_captured_twice_are_counted_and_change_nothing(tmp_path: Path) -> None:
    conv = Conversation().handshake()
    conv.c("PA", b"GET /")
    conv.s("PA", b"200 OK")
    conv.client_close()
    once = tcpflow_analyzer.analyze(conv.write(tmp_path / "once.pcap"))
    twice = Conversation()
    for pkt in conv.packets:  # each frame seen on two interfaces, 10 us apart
        copy = pkt.copy()
        copy.time = pkt.time + 0.00001
        twice.packets.extend([pkt, copy])
    result = tcpflow_analyzer.analyze(twice.write(tmp_path / "twice.pcap"))
    assert result.duplicates == len(conv.packets)
    assert f"duplicate frames: {len(conv.packets)}" in result.summary()
    assert result.findings.empty and once.findings.empty
    same = ["close_type", "active_closer", "client_state_at_end", "server_state_at_end"]
    assert result.connections[same].equals(once.connections[same])
