"""The streamed analysis (the command line's ``analyze``) writes what ``Analysis.to_csv`` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import tcpflow_analyzer
from tcpflow_analyzer.api import analyze_rows, load_tables
from tcpflow_analyzer.cli import main
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.report import text_summary
from tcpflow_analyzer.stream import OutputError, analyze_to_csv

from .craft import Conversation

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CAPTURES = sorted(
    [
        *ROOT.glob("captures/*.pcap*"),
        ROOT / "captures" / "crawler" / "crawler.pcap",
        *CORPUS.rglob("*.pcap"),
        *CORPUS.rglob("*.pcapng"),
    ]
)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in ("conn_id", "frame", "ts") if c in frame.columns]
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def _same_tables(streamed: Path, reference: Path) -> None:
    got, want = load_tables(streamed), load_tables(reference)
    assert sorted(got) == sorted(want)
    for name in want:
        pd.testing.assert_frame_equal(_sorted(got[name]), _sorted(want[name]), obj=name)


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_streamed_tables_and_summary_equal_analysis(path: Path, tmp_path: Path) -> None:
    """Batches of 7 connections: several flushes, the same rows and the same summary."""
    result = tcpflow_analyzer.analyze(path)
    result.to_csv(tmp_path / "ref")
    streamed = analyze_to_csv(path, Config(), tmp_path / "out", batch=7)
    _same_tables(tmp_path / "out", tmp_path / "ref")
    assert streamed.summary == result.summary()
    assert streamed.connections == len(result.connections)
    assert streamed.findings == len(result.findings)
    assert (streamed.frames, streamed.segments) == (result.frames, result.segments)


FREEZING = {
    "freeze-at-once": Config(freeze_after_s=0.0),
    "freeze-at-once-short-timers": Config(freeze_after_s=0.0, msl=0.05, late_segment_s=0.1),
    "freeze-after-10ms-msl-1s": Config(freeze_after_s=0.01, msl=1.0, late_segment_s=0.5),
}


@pytest.mark.parametrize("config", FREEZING.values(), ids=FREEZING.keys())
@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_frozen_connections_give_the_same_tables(
    path: Path, config: Config, tmp_path: Path
) -> None:
    """Freezing closed connections early (rows made at once, thawed by late segments)."""
    result = tcpflow_analyzer.analyze(path, config=config)
    result.to_csv(tmp_path / "ref")
    streamed = analyze_to_csv(path, config, tmp_path / "out", batch=5)
    _same_tables(tmp_path / "out", tmp_path / "ref")
    assert streamed.summary == result.summary()


def _swap_records(src: Path, dst: Path, every: int) -> Path:
    """Copy a pcap with every ``every``-th pair of adjacent records swapped (time goes back)."""
    import dpkt

    with open(src, "rb") as f:
        reader = dpkt.pcap.Reader(f)
        records = list(reader)
        linktype = reader.datalink()
    for i in range(0, len(records) - 1, every):
        records[i], records[i + 1] = records[i + 1], records[i]
    with open(dst, "wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=linktype, nano=True)
        for ts, buf in records:
            writer.writepkt(buf, ts=ts)
    return dst


@pytest.mark.parametrize(
    "name",
    [
        "final_ack_lost_after_capture.pcap",
        "tuple_reuse.pcap",
        "stale_duplicate.pcap",
        "fin_never_acked.pcap",
        "crawler/crawler.pcap",
    ],
)
@pytest.mark.parametrize("config", FREEZING.values(), ids=FREEZING.keys())
def test_freezing_with_time_going_backwards(name: str, config: Config, tmp_path: Path) -> None:
    path = _swap_records(ROOT / "captures" / name, tmp_path / "swapped.pcap", every=3)
    result = tcpflow_analyzer.analyze(path, config=config)
    assert result.out_of_order > 0
    result.to_csv(tmp_path / "ref")
    streamed = analyze_to_csv(path, config, tmp_path / "out", batch=5)
    _same_tables(tmp_path / "out", tmp_path / "ref")
    assert streamed.summary == result.summary()
    if name.startswith("crawler"):
        assert streamed.frozen > 100


def test_freezing_happens_and_late_segments_thaw() -> None:
    """The paths above are taken: connections freeze, and some thaw on a late segment."""
    frozen = thawed = 0
    for path in CAPTURES:
        streamed = analyze_to_csv(path, FREEZING["freeze-at-once"], None)
        frozen += streamed.frozen
        thawed += streamed.thawed
        if path.name == "final_ack_lost_after_capture.pcap":
            # The server's FIN comes again after the client's last ACK: a thaw.
            assert streamed.thawed >= 1
    assert frozen > 300
    assert thawed > 5


def test_summary_lists_the_first_connections_worth_a_look_in_conn_id_order(
    tmp_path: Path,
) -> None:
    """More flagged connections than the limit: the lowest conn_ids are listed, in order."""
    from scapy.utils import wrpcap

    from .craft import CLIENT

    packets = []
    for i in range(30):  # 30 connections aborted by the server: each is worth a look
        conv = Conversation(client=(CLIENT[0], 41000 + i))
        conv._t = i * 0.01
        conv.handshake()
        conv.s("R")
        packets.extend(conv.packets)
    packets.sort(key=lambda p: float(p.time))
    capture = wrpcap(str(tmp_path / "aborts.pcap"), packets) or tmp_path / "aborts.pcap"
    result = tcpflow_analyzer.analyze(capture)
    assert "connections worth a look: 30" in result.summary()
    for limit in (0, 1, 5, 29, 30, 31):
        streamed = analyze_to_csv(capture, Config(), None, batch=4, limit=limit)
        want = text_summary(
            result.source,
            result.connections,
            result.skipped,
            result.frames,
            result.segments,
            result.warnings,
            limit=limit,
            findings=result.finding_records,
            duplicates=result.duplicates,
        )
        assert streamed.summary == want
        listed = [line.split()[0] for line in want.splitlines() if line.startswith("  #")]
        assert listed == [f"#{i}" for i in range(1, min(limit, 30) + 1)]


def test_rows_are_written_as_connections_retire(tmp_path: Path) -> None:
    """A connection replaced by a new incarnation is written before an older one still open."""
    from scapy.utils import wrpcap

    from .craft import CLIENT

    open_one = Conversation(client=(CLIENT[0], 40001)).handshake()  # conn 1, never closed
    reused = Conversation(client=(CLIENT[0], 40000))
    reused._t = 0.01
    reused.handshake().client_close()  # conn 2
    reused.cseq = (reused.cseq + 100_000) % 2**32
    reused.handshake()  # conn 3: a new ISN on the 4-tuple retires conn 2 at once
    packets = sorted([*open_one.packets, *reused.packets], key=lambda p: float(p.time))
    wrpcap(str(tmp_path / "reuse.pcap"), packets)
    analyze_to_csv(tmp_path / "reuse.pcap", Config(), tmp_path / "out")
    written = pd.read_csv(tmp_path / "out" / "connections.csv")["conn_id"].tolist()
    assert written == [2, 1, 3]
    _same_tables(tmp_path / "out", _reference(tmp_path / "reuse.pcap", tmp_path / "ref"))


def _reference(path: Path, directory: Path) -> Path:
    tcpflow_analyzer.analyze(path).to_csv(directory)
    return directory


def test_unwritable_directory_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputError, match="cannot write to"):
        analyze_to_csv(ROOT / "captures" / "client_close.pcap", Config(), blocker / "out")


def test_cli_analyze_streams_to_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = ROOT / "captures" / "tuple_reuse.pcap"
    assert main(["analyze", str(path), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(tcpflow_analyzer.analyze(path).summary())
    tcpflow_analyzer.analyze(path).to_csv(tmp_path / "ref")
    _same_tables(tmp_path / "out", tmp_path / "ref")


def test_collector_is_off_during_the_replay_and_back_on_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No cycle collection during the replay; the collector is on again after it,
    after a capture that cannot be read too."""
    import gc

    from tcpflow_analyzer import stream
    from tcpflow_analyzer.reader import CaptureError

    during: list[bool] = []
    real = stream.replay

    def watched(*args: Any, **kwargs: Any) -> Any:
        during.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(stream, "replay", watched)
    assert gc.isenabled()
    analyze_to_csv(ROOT / "captures" / "crawler" / "crawler.pcap", Config(), None)
    assert during == [False]
    assert gc.isenabled()
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    with pytest.raises(CaptureError):
        analyze_to_csv(bad, Config(), None)
    assert gc.isenabled()


@pytest.mark.parametrize(
    "config", [Config(), *FREEZING.values()], ids=["default", *FREEZING.keys()]
)
@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_a_streamed_analysis_leaves_nothing_for_the_cycle_collector(
    path: Path, config: Config, tmp_path: Path
) -> None:
    """What makes it safe to replay with the collector off: every object a streamed
    analysis makes (connections, segments, traces, frozen and thawed connections,
    rows, the sink and its freezer) is freed by reference counting."""
    import gc

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept, to be named
    try:
        analyze_to_csv(path, config, tmp_path / "out", batch=7)
        found = gc.collect()
        kinds = sorted({type(o).__qualname__ for o in gc.garbage})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert found == 0, kinds


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_summary_prefilter_keeps_every_row_worth_a_look(path: Path) -> None:
    """The column-wise prefilter of the summary never drops a row the full test flags."""
    from tcpflow_analyzer.report import _may_be_worth_a_look, _worth_a_look

    frame = tcpflow_analyzer.analyze(path).connections
    flagged = [bool(_worth_a_look(row)) for row in frame.to_dict("records")]
    kept = list(_may_be_worth_a_look(frame))
    assert all(k for f, k in zip(flagged, kept, strict=True) if f)


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_summary_from_rows_equals_summary_from_the_frame(path: Path) -> None:
    """SummaryBuilder.add_rows (the streamed path) says what add says of the typed frame.

    In batches of 7 connections, with a limit small enough to drop lines; the rows
    hold only the columns of ``SUMMARY_READS`` (as a frozen connection's do), and
    its row prefilter never drops a row the full test flags.
    """
    from tcpflow_analyzer.report import (
        CONNECTION_COLUMNS,
        SUMMARY_READS,
        SummaryBuilder,
        _may_flag,
        _worth_a_look,
        typed_frame,
    )

    rows = analyze_rows(path, Config())
    connections, found = rows.tables["connections"], rows.finding_records
    by_rows, by_frame = SummaryBuilder(limit=3, examples=2), SummaryBuilder(limit=3, examples=2)
    for at in range(0, max(len(connections), 1), 7):
        batch = connections[at : at + 7]
        mine = [f for f in found if any(f.conn_id == r["conn_id"] for r in batch)]
        by_rows.add_rows([{c: row[c] for c in SUMMARY_READS} for row in batch], mine)
        by_frame.add(typed_frame(batch, CONNECTION_COLUMNS), mine)
    args = ("x", rows.skipped, rows.frames, rows.segments, rows.warnings)
    assert by_rows.text(*args) == by_frame.text(*args)
    assert by_rows._n_flagged == by_frame._n_flagged
    typed = typed_frame(connections, CONNECTION_COLUMNS).to_dict("records")
    for row, typed_row in zip(connections, typed, strict=True):
        if _worth_a_look(typed_row):
            assert _may_flag(row)


def test_records_spilled_to_disk_are_fetched_in_batches_at_the_end(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The crawler (real kernel, 300 connections, nearly all still in TIME_WAIT at the
    capture's end) with every frozen record written to spill files: the connections
    retired at the end have their records fetched 50 at a time (``Spill.fetch``),
    in few reads, and the tables are the analysis's."""
    import functools
    import os

    from tcpflow_analyzer import freeze, tracker

    path = ROOT / "captures" / "crawler" / "crawler.pcap"
    spill_class = freeze.Spill
    monkeypatch.setattr(
        freeze, "Spill", functools.partial(spill_class, file_bytes=200_000, buffer_bytes=1)
    )
    monkeypatch.setattr(tracker, "_FETCH_EVERY", 50)
    reads: list[int] = []
    fetched: list[int] = []
    pread, fetch = os.pread, spill_class.fetch

    def counted(fd: int, n: int, offset: int) -> bytes:
        reads.append(n)
        return pread(fd, n, offset)

    def counted_fetch(spill: freeze.Spill, refs: list[tuple[int, int]]) -> None:
        fetched.append(len(refs))
        fetch(spill, refs)

    monkeypatch.setattr(freeze.os, "pread", counted)
    monkeypatch.setattr(spill_class, "fetch", counted_fetch)
    config = Config(freeze_after_s=0.0)
    streamed = analyze_to_csv(path, config, tmp_path / "out", batch=7)
    result = tcpflow_analyzer.analyze(path, config=config)
    result.to_csv(tmp_path / "ref")
    _same_tables(tmp_path / "out", tmp_path / "ref")
    assert streamed.spilled_bytes > 3 * 200_000  # several files
    assert streamed.frozen > 200
    assert sum(fetched) > 200 and max(fetched) <= 50
    assert len(reads) * 20 < streamed.frozen
