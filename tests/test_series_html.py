"""A rotated capture read as a series equals the unsplit capture; HTML reports are whole."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest

import tcpflow_analyzer
from tcpflow_analyzer.cli import main

SERIES = Path(__file__).resolve().parents[1] / "captures" / "series"
CAPTURES = SERIES.parent


def _parts() -> list[Path]:
    parts = sorted(SERIES.glob("part-*.pcap"))
    assert len(parts) >= 3
    return parts


def test_series_gives_the_connections_of_the_unsplit_capture() -> None:
    whole = tcpflow_analyzer.analyze(SERIES / "whole.pcap")
    # Given in reverse order: files are put in time order by their first segment.
    series = tcpflow_analyzer.analyze(list(reversed(_parts())))
    pd.testing.assert_frame_equal(series.connections, whole.connections)
    pd.testing.assert_frame_equal(series.transitions, whole.transitions)
    pd.testing.assert_frame_equal(series.findings, whole.findings)
    assert series.frames == whole.frames


def test_files_read_separately_split_the_spanning_connections() -> None:
    whole = tcpflow_analyzer.analyze(SERIES / "whole.pcap")
    separate = sum(len(tcpflow_analyzer.analyze(p).connections) for p in _parts())
    assert separate > len(whole.connections)  # halves of connections, counted twice


def test_cli_batch_series(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["batch", *map(str, _parts()), "--series", "--out", str(out)]) == 0
    conns = pd.read_csv(out / "connections.csv")
    whole = tcpflow_analyzer.analyze(SERIES / "whole.pcap").connections
    assert len(conns) == len(whole)
    assert conns["close_type"].tolist() == whole["close_type"].tolist()


def _embedded_pngs(html: str) -> list[bytes]:
    return [
        base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze", str(CAPTURES / "syn_backlog_drop.pcap")],
        ["batch", str(CAPTURES / "refused.pcap"), str(CAPTURES / "client_close.pcap"), "--out"],
        ["census", str(CAPTURES / "client_close.pcap")],
    ],
    ids=["analyze", "batch", "census"],
)
def test_html_report_is_self_contained(tmp_path: Path, argv: list[str]) -> None:
    if argv[-1] == "--out":
        argv = [*argv, str(tmp_path / "out")]
    page = tmp_path / "report.html"
    assert main([*argv, "--html", str(page)]) == 0
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<table>" in html
    # Nothing to fetch: no external stylesheet, script or image.
    assert not re.search(r"(src|href)=\"(?!data:)", html)
    pngs = _embedded_pngs(html)
    assert pngs and all(p.startswith(b"\x89PNG\r\n\x1a\n") for p in pngs)
