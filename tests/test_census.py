"""census: per-host state counts over time, host and port summaries, the plot."""

from __future__ import annotations

from pathlib import Path

import pytest

import tcpflow_analyzer
from tcpflow_analyzer.census import CENSUS_STATES, census, plot
from tcpflow_analyzer.cli import main

from .craft import Conversation


def _three_client_closes(path: Path) -> Path:
    """Three connections from one client, each closed by the client, 1 s apart."""
    conv = Conversation()
    for i in range(3):
        conv.client = ("10.1.0.1", 40000 + i)
        conv.step = 1.0 if i else 0.001
        conv.c("S")
        conv.step = 0.001
        conv.s("SA")
        conv.c("A")
        conv.client_close()
    return conv.write(path)


def test_time_wait_accumulates_on_the_closing_host(tmp_path: Path) -> None:
    a = tcpflow_analyzer.analyze(_three_client_closes(tmp_path / "c.pcap"))
    cen = census(a.connections, a.transitions, interval=0.5)
    client = cen.states[cen.states["host"] == "10.1.0.1"]
    server = cen.states[cen.states["host"] == "10.1.0.2"]
    assert list(cen.states.columns) == ["host", "ts", *CENSUS_STATES]
    # TIME_WAIT lasts 60 s: the count only grows, 1 -> 2 -> 3, and 3 are pending at the end.
    tw = client["TIME_WAIT"].tolist()
    assert tw == sorted(tw) and tw[-1] == 3 and tw[0] == 1
    assert server["TIME_WAIT"].max() == 0
    # The last row per host is the capture's end.
    assert client["ts"].iloc[-1] == pytest.approx(a.connections["end_ts"].max())
    host = cen.hosts.set_index("host").loc["10.1.0.1"]
    assert (host.peak_time_wait, host.time_wait_at_end, host.closed_first) == (3, 3, 3)
    assert host.as_client == 3 and host.ephemeral_ports_used == 3
    ports = cen.ports.set_index("server_port").loc[80]
    assert (ports.connections, ports.client_closed_first) == (3, 3)


def test_short_msl_lets_time_wait_expire(tmp_path: Path) -> None:
    a = tcpflow_analyzer.analyze(_three_client_closes(tmp_path / "c.pcap"), msl=0.25)
    cen = census(a.connections, a.transitions, interval=0.1, msl=0.25)
    client = cen.states[cen.states["host"] == "10.1.0.1"]
    assert client["TIME_WAIT"].max() == 1  # each expires 0.5 s after it began
    # The last close happens at the capture's last packet: its TIME_WAIT is still pending.
    assert client["TIME_WAIT"].iloc[-1] == 1
    # Each endpoint entering CLOSED is counted once, in the interval it closed in:
    # three servers (LAST_ACK -> CLOSED) and the two client TIME_WAITs that ran out.
    assert int(cen.states["CLOSED"].sum()) == 5


def test_host_filter_and_plot(tmp_path: Path) -> None:
    a = tcpflow_analyzer.analyze(_three_client_closes(tmp_path / "c.pcap"))
    cen = census(a.connections, a.transitions, interval=0.5, host="10.1.0.2")
    assert set(cen.states["host"]) == {"10.1.0.2"}
    assert cen.hosts["host"].tolist() == ["10.1.0.2"]
    png = tmp_path / "c.png"
    # The server holds nothing at any interval's end (each connection lives 7 ms):
    # nothing to draw for it; the client holds TIME_WAIT.
    assert plot(cen.states, str(png)) == []
    both = census(a.connections, a.transitions, interval=0.5)
    assert plot(both.states, str(png)) == ["10.1.0.1"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_census_writes_tables_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pcap = _three_client_closes(tmp_path / "c.pcap")
    assert main(["census", str(pcap), "--interval", "0.5", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "10.1.0.1" in out
    for name in ("census.csv", "census_hosts.csv", "census_ports.csv", "census.png"):
        assert (tmp_path / "o" / name).stat().st_size > 0
