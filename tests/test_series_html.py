"""A rotated capture read as a series equals the unsplit capture; HTML reports are whole."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import io
import json
import os
import re
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

import tcpflow_analyzer
from tcpflow_analyzer.cli import AUTO_JOBS_BYTES, AUTO_JOBS_MAX, auto_jobs, main
from tcpflow_analyzer.reader import CaptureReader, ReadStats
from tcpflow_analyzer.segment import Segment

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


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "record-walk"])
@pytest.mark.parametrize(
    "name", ["series/part-01.pcap", "pcapng_two_ifaces.pcapng", "client_close.pcap.gz"]
)
def test_frame_offset_numbers_the_segments_on(tmp_path: Path, name: str, fast: bool) -> None:
    """A series' file numbers its segments on from the files before it; its statistics
    and warnings stay its own."""
    path = CAPTURES / name
    if name.endswith(".gz"):  # gzip: the record walk, whatever ``fast`` says
        path = tmp_path / name
        path.write_bytes(gzip.compress((CAPTURES / name.removesuffix(".gz")).read_bytes()))

    def read(offset: int) -> tuple[list[Segment], ReadStats]:
        with CaptureReader(path, fast=fast, frame_offset=offset) as reader:
            return list(reader), reader.stats

    plain, stats = read(0)
    moved, moved_stats = read(1000)
    assert plain and moved_stats == stats
    assert moved == [dataclasses.replace(seg, frame=seg.frame + 1000) for seg in plain]


def test_a_series_with_standard_input_among_its_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Standard input cannot be read twice: it is read once, from its first segment on."""
    whole = tcpflow_analyzer.analyze(SERIES / "whole.pcap")
    first, *rest = _parts()
    stdin = types.SimpleNamespace(buffer=io.BytesIO(first.read_bytes()))
    monkeypatch.setattr(sys, "stdin", stdin)
    series = tcpflow_analyzer.analyze([*map(str, reversed(rest)), "-"])
    pd.testing.assert_frame_equal(series.connections, whole.connections)
    pd.testing.assert_frame_equal(series.transitions, whole.transitions)
    assert series.frames == whole.frames


def test_files_read_separately_split_the_spanning_connections() -> None:
    whole = tcpflow_analyzer.analyze(SERIES / "whole.pcap")
    separate = sum(len(tcpflow_analyzer.analyze(p).connections) for p in _parts())
    assert separate > len(whole.connections)  # halves of connections, counted twice


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_cli_analyze_several_files_is_the_rotated_capture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: str
) -> None:
    """``analyze PART...``: the files (given out of order) read as one capture, streamed,
    by one process or by the workers: the unsplit capture's rows."""
    parts = [str(p) for p in reversed(_parts())]
    assert main(["analyze", str(SERIES / "whole.pcap"), "--out", str(tmp_path / "whole")]) == 0
    capsys.readouterr()
    assert main(["analyze", *parts, "--out", str(tmp_path / "parts"), "--jobs", jobs]) == 0
    out = capsys.readouterr().out
    assert out.startswith("capture: " + " + ".join(parts))
    for name in ("connections", "transitions", "findings", "zeek_conn"):
        whole = (tmp_path / "whole" / f"{name}.csv").read_text().splitlines()
        got = (tmp_path / "parts" / f"{name}.csv").read_text().splitlines()
        assert got[0] == whole[0]
        # The workers append whole connections in the order they retire them.
        assert sorted(got[1:]) == sorted(whole[1:])
        assert len(whole) > 1 or name == "findings"  # (the series has no finding)
        if jobs == "1":
            assert got == whole


@pytest.mark.parametrize("command", [["analyze"], ["show", "--conn", "1"]])
def test_cli_reads_standard_input_alone(
    capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    assert main([*command, "-", str(_parts()[0])]) == 2
    assert "standard input (-) is read alone" in capsys.readouterr().err


def test_cli_show_a_connection_spanning_the_files(capsys: pytest.CaptureFixture[str]) -> None:
    spanning = json.loads((SERIES / "NOTE.json").read_text())["spanning"]  # port: its files
    port = next(p for p, files in spanning.items() if len(files) >= 3)
    conn = f"10.4.2.1:{port}-10.4.2.2:80"
    assert main(["show", str(SERIES / "whole.pcap"), "--conn", conn]) == 0
    whole = capsys.readouterr().out
    assert main(["show", *map(str, reversed(_parts())), "--conn", conn]) == 0
    assert capsys.readouterr().out == whole and "FIN" in whole


def test_default_jobs_count_the_files_of_a_series_together(tmp_path: Path) -> None:
    halves = [tmp_path / "a.pcap", tmp_path / "b.pcap"]
    for half in halves:
        with half.open("wb") as f:
            f.truncate(AUTO_JOBS_BYTES // 2)  # sparse: the size is all the default looks at
    assert auto_jobs(str(halves[0])) == 1
    assert auto_jobs(*map(str, halves)) == min(len(os.sched_getaffinity(0)), AUTO_JOBS_MAX)
    assert auto_jobs(str(halves[0]), "-") == 1


def test_default_jobs_count_a_gzip_file_by_its_data(tmp_path: Path) -> None:
    cores = min(len(os.sched_getaffinity(0)), AUTO_JOBS_MAX)
    small = tmp_path / "small.pcap.gz"
    small.write_bytes(gzip.compress(b"\0" * 1000))
    big = tmp_path / "big.pcap.gz"
    # A gzip trailer claiming 64 MiB of data (as a well-compressed capture's does).
    big.write_bytes(gzip.compress(b"\0" * 1000)[:-4] + AUTO_JOBS_BYTES.to_bytes(4, "little"))
    assert auto_jobs(str(small)) == 1 and auto_jobs(str(big)) == cores


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
