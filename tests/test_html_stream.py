"""analyze --html from the streamed analysis: the report of the kept analysis, exactly.

The command line now runs the streamed analysis and reads the three tables the
report shows back (in ``conn_id`` order); the report must be the one
``html.analysis_report`` makes of the library's ``analyze()`` (which keeps every
connection), byte for byte, with one process and with two workers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpflow_analyzer import analyze
from tcpflow_analyzer.cli import main
from tcpflow_analyzer.html import analysis_report

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = sorted((ROOT / "captures").glob("*.pcap"))
CRAWLER = ROOT / "captures" / "crawler" / "crawler.pcap"
SERIES = sorted((ROOT / "captures" / "series").glob("*.pcap"))


def _kept(sources: list[Path], path: Path) -> str:
    source = str(sources[0]) if len(sources) == 1 else [str(p) for p in sources]
    analysis_report(analyze(source), path)
    return path.read_text()


def _streamed(sources: list[Path], path: Path, *extra: str) -> str:
    assert main(["analyze", *map(str, sources), "--html", str(path), *extra]) == 0
    return path.read_text()


def test_there_are_captures() -> None:
    assert len(CAPTURES) > 20 and len(SERIES) > 1


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_the_report_is_the_kept_analysis_report(tmp_path: Path, path: Path) -> None:
    kept = _kept([path], tmp_path / "kept.html")
    assert _streamed([path], tmp_path / "one.html", "--jobs", "1") == kept


@pytest.mark.parametrize("sources", [[CRAWLER], SERIES], ids=["crawler", "series"])
def test_the_report_over_two_workers(tmp_path: Path, sources: list[Path]) -> None:
    kept = _kept(sources, tmp_path / "kept.html")
    assert "<img" in kept  # the states-over-time image is there to compare
    assert _streamed(sources, tmp_path / "two.html", "--jobs", "2") == kept


def test_the_report_with_out_writes_the_streamed_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    html = tmp_path / "r.html"
    assert main(["analyze", str(CRAWLER), "--out", str(out), "--html", str(html)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {html}" in printed and str(out / "connections.csv") in printed
    # the tables analyze --out writes (streamed: the same lines as without --html)
    plain = tmp_path / "plain"
    assert main(["analyze", str(CRAWLER), "--out", str(plain), "--jobs", "1"]) == 0
    for name in ("connections", "transitions", "findings", "zeek_conn", "anomalies"):
        a = sorted((out / f"{name}.csv").read_text().splitlines())
        assert a == sorted((plain / f"{name}.csv").read_text().splitlines()), name
