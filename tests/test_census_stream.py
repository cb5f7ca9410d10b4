"""census on the command line: from the streamed analysis's tables (census.of_capture).

The census made from the columns read back from the streamed analysis must be
the census of the kept analysis (every connection replayed and kept whole, as
the command line made it before) on every capture, with one process and with
two workers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tcpflow_analyzer.census import census, of_capture
from tcpflow_analyzer.cli import main
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.replay import replay
from tcpflow_analyzer.report import (
    connections_frame,
    summarize,
    transition_rows,
    transitions_frame,
)

from .test_frame_csv import CAPTURES

ROOT = Path(__file__).resolve().parents[1]
SERIES = sorted((ROOT / "captures" / "series").glob("*.pcap"))


def _kept_census(source: str | list[str], config: Config, interval: float) -> object:
    result = replay(source, config)
    conns = connections_frame([summarize(c) for c in result.connections])
    trans = transitions_frame(transition_rows(result.connections))
    end_ts = result.capture_end_ns / 1e9 if result.connections else None
    return census(conns, trans, interval=interval, msl=config.msl, end_ts=end_ts)


def _same(made: object, kept: object) -> None:
    for part in ("states", "hosts", "ports"):
        pd.testing.assert_frame_equal(getattr(made, part), getattr(kept, part), obj=part)


def test_there_are_captures() -> None:
    assert len(CAPTURES) > 100


@pytest.mark.parametrize("path", CAPTURES, ids=[str(p.relative_to(p.parents[1])) for p in CAPTURES])
def test_census_of_the_streamed_tables_is_the_kept_census(path: Path) -> None:
    config = Config(msl=30.0)
    try:
        kept = _kept_census(str(path), config, 0.5)
    except Exception as exc:  # an unreadable capture: the streamed one fails alike
        with pytest.raises(type(exc)):
            of_capture(str(path), config, interval=0.5)
        return
    made, done = of_capture(str(path), config, interval=0.5)
    _same(made, kept)
    assert done.connections == int(kept.hosts["connections"].sum() // 2) or len(kept.hosts) < 2


@pytest.mark.parametrize("jobs", [1, 2])
def test_census_of_a_series_over_two_workers(jobs: int) -> None:
    config = Config(msl=30.0)
    sources = [str(p) for p in SERIES]
    made, done = of_capture(sources, config, interval=1.0, jobs=jobs)
    _same(made, _kept_census(sources, config, 1.0))
    assert done.connections > 0


def test_census_of_a_real_capture_over_two_workers_one_host() -> None:
    crawler = ROOT / "captures" / "crawler" / "crawler.pcap"
    config = Config(msl=30.0)
    kept = _kept_census(str(crawler), config, 0.25)
    host = str(kept.hosts["host"].iloc[0])
    made, _ = of_capture(str(crawler), config, interval=0.25, host=host, jobs=2)
    full, _ = of_capture(str(crawler), config, interval=0.25, jobs=2)
    _same(full, kept)
    assert set(made.states["host"]) == {host}
    pd.testing.assert_frame_equal(
        made.states.reset_index(drop=True),
        full.states[full.states["host"] == host].reset_index(drop=True),
    )


def test_cli_census_leaves_no_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR read again
    crawler = ROOT / "captures" / "crawler" / "crawler.pcap"
    assert main(["census", str(crawler), "--out", str(tmp_path / "out")]) == 0
    assert "census of" in capsys.readouterr().out
    assert list((tmp_path / "tmp").iterdir()) == []
    assert (tmp_path / "out" / "census.csv").stat().st_size > 100


def test_a_census_of_too_many_intervals_is_refused_with_the_interval_that_would_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two connections a year apart: at 1 s, 31.5 million intervals per host (the
    corpus has such a capture, whose times jump by years): a clear error naming the
    interval that would do, at once, not billions of rows; that interval works."""
    from scapy.utils import wrpcap

    from .craft import CLIENT, Conversation

    early = Conversation(t0=1_700_000_000.0).handshake().client_close()
    other = (CLIENT[0], CLIENT[1] + 1)
    late = Conversation(client=other, t0=1_700_000_000.0 + 365 * 86400).handshake()
    path = tmp_path / "year.pcap"
    wrpcap(str(path), early.packets + late.client_close().packets)
    assert main(["census", str(path)]) == 2
    err = capsys.readouterr().err
    assert "more than 1,000,000 intervals" in err and "at least 31.5 s" in err
    assert "Traceback" not in err
    assert main(["census", str(path), "--interval", "40"]) == 0
    assert "2 connections" in capsys.readouterr().out
