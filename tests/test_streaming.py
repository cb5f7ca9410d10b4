"""Connections are retired as they finish: same results, bounded memory, floods counted."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import tcpflow_analyzer
from tcpflow_analyzer.api import connection_rows
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.findings import Finding, detect
from tcpflow_analyzer.replay import replay
from tcpflow_analyzer.report import connections_frame, summarize
from tcpflow_analyzer.segment import Segment
from tcpflow_analyzer.tracker import Connection, Tracker

from .craft import Conversation

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CAPTURES = sorted(
    [*ROOT.glob("captures/*.pcap*"), *CORPUS.rglob("*.pcap"), *CORPUS.rglob("*.pcapng")]
)


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_streaming_analysis_equals_keeping_everything(path: Path) -> None:
    """analyze() retires connections as they finish; the reference keeps all to the end."""
    cfg = Config()
    kept = replay(path, cfg)
    rows = []
    for conn in kept.connections:
        prev = kept.previous(conn)
        end = conn.retired_ns
        assert end is not None
        mine = detect(conn, prev, cfg, end)
        rows.append(summarize(conn, prev=prev, findings=mine, capture_end_ns=end))
    reference = connections_frame(rows)
    pd.testing.assert_frame_equal(tcpflow_analyzer.analyze(path).connections, reference)


def _syn(i: int, ts_s: float) -> Segment:
    return Segment(
        frame=i + 1,
        ts_ns=int(ts_s * 1e9),
        vlan=(),
        src=struct.pack("!I", 0x0A000000 + i),
        dst=b"\x0a\xff\x00\x01",
        sport=1024 + i % 60000,
        dport=80,
        seq=(i * 7919) % 2**32,
        ack=0,
        flags=0x02,
        window=65535,
        payload_len=0,
        ip_len=40,
    )


def test_syn_flood_memory_is_bounded_and_counted() -> None:
    retired: list[Connection] = []
    cfg = Config(max_connections=500)
    tracker = Tracker(cfg, on_retire=retired.append)
    tracemalloc.start()
    for i in range(20_000):
        tracker.add(_syn(i, 1.0 + i * 1e-5))
        if i == 2_000:
            early, _ = tracemalloc.get_traced_memory()
    late, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracker.finish()
    # Memory after 20,000 spoofed SYNs is what it was after 2,000: bounded by the limit.
    assert late < early * 1.3
    dropped = sum(tracker.expired.values())
    assert tracker.expired == {"SYN_SENT/LISTEN": dropped}
    assert dropped + len(retired) == 20_000 and len(retired) <= cfg.max_connections


def test_flood_warning_reaches_the_analysis(tmp_path: Path) -> None:
    conv = Conversation()
    for i in range(30):
        conv.client = ("10.2.0.1", 20000 + i)
        conv.c("S")
    result = tcpflow_analyzer.analyze(
        conv.write(tmp_path / "f.pcap"), config=Config(max_connections=10)
    )
    assert sum(result.expired.values()) + len(result.connections) == 30
    assert sum(result.expired.values()) > 0
    assert any("half-open connection(s)" in w for w in result.warnings)


def test_closed_connection_is_retired_after_two_msl_and_numbering_continues(
    tmp_path: Path,
) -> None:
    """Reopened 10 s after a close with MSL 1 s: the old one was retired, the new one is #2."""
    conv = Conversation().handshake().client_close()
    conv.cseq += 100_000
    conv.step = 10.0
    conv.c("S")
    conv.step = 0.001
    conv.s("SA")
    conv.c("A")
    result = tcpflow_analyzer.analyze(conv.write(tmp_path / "r.pcap"), msl=1.0)
    conns = result.connections
    assert conns["incarnation"].tolist() == [1, 2]
    assert conns["prev_conn_id"].tolist()[1] == 1
    assert conns["client_state_at_end"].tolist()[0] == "CLOSED"  # TIME_WAIT ran out


def test_idle_open_connection_is_retired(tmp_path: Path) -> None:
    conv = Conversation().handshake()
    other = Conversation(client=("10.1.0.9", 41000), t0=conv.t0)
    other.c("S", at=conv._t + 50.0)
    conv.packets.extend(other.packets)
    retired: list[Connection] = []
    tracker = Tracker(Config(idle_timeout=10.0), on_retire=retired.append)
    for seg in tcpflow_analyzer.reader.CaptureReader(conv.write(tmp_path / "i.pcap")):
        tracker.add(seg)
        if seg.frame == 4:  # the unrelated SYN 50 s later retires the idle connection
            assert [c.conn_id for c in retired] == [1]
            assert retired[0].retired_ns == seg.ts_ns
    tracker.finish()
    assert [c.conn_id for c in retired] == [1, 2]


class _SweepEverySegment(Tracker):
    """The reference for the sweep schedule: look for due retirements at every segment."""

    def add(self, seg: Segment) -> None:
        self._sweep_at = 0
        super().add(seg)


def _retirements(tracker: Tracker, segments: list[Segment]) -> list[tuple[int, int | None, int]]:
    out: list[tuple[int, int | None, int]] = []
    tracker._on_retire = lambda c: out.append((c.conn_id, c.retired_ns, c.incarnation))
    for seg in segments:
        tracker.add(seg)
    tracker.finish()
    return out


@pytest.mark.parametrize(
    "config",
    [Config(), Config(msl=0.05, idle_timeout=0.2, late_segment_s=0.0)],
    ids=["default", "short-timers"],
)
@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_sweep_schedule_retires_exactly_when_sweeping_every_segment(
    path: Path, config: Config
) -> None:
    from tcpflow_analyzer.reader import CaptureReader

    with CaptureReader(path) as reader:
        segments = list(reader)
    # The same segments with time running backwards every few segments (adjacent
    # pairs swapped, as a capture from several NIC queues has them): the heads
    # are then not always the earliest, and the schedule must still be exact.
    shuffled = list(segments)
    for i in range(0, len(shuffled) - 1, 5):
        shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
    for segs in (segments, shuffled):
        want = _retirements(_SweepEverySegment(config), segs)
        got = _retirements(Tracker(config), segs)
        assert got == want


class _CheckedHeads(Tracker):
    """After every segment: the heads noted are the heads, none due before ``_sweep_at``."""

    def add(self, seg: Segment) -> None:
        super().add(seg)
        tables = (self._closed, self._open, self._to_freeze)
        assert self._heads == tuple(next(iter(table), 0) for table in tables)
        dues = []
        if self._closed:
            dues.append(next(iter(self._closed.values())).end_ns + self._closed_hold_ns + 1)
        if self._open:
            dues.append(next(iter(self._open.values())).end_ns + self._idle_ns + 1)
        if self._to_freeze:
            head = next(iter(self._to_freeze.values()))
            dues.append(max(head.end_ns + self._freeze_ns + 1, self._freeze_check_at))
        assert self._sweep_at <= min(dues, default=self._sweep_at)


def _replay_checking_heads(segments: list[Segment], config: Config) -> tuple[int, int]:
    """Replay with a freezer and time running backwards; (connections frozen, thawed)."""
    from tcpflow_analyzer.freeze import SUMMARY_COLUMNS, RowFreezer

    segments = list(segments)
    for i in range(0, len(segments) - 1, 5):
        segments[i], segments[i + 1] = segments[i + 1], segments[i]

    def made(conn: Connection) -> tuple[tuple[Any, ...], list[str], dict[str, str], list[Finding]]:
        rows, found = connection_rows(conn, config)
        return tuple(rows["connections"][0][c] for c in SUMMARY_COLUMNS), [], {}, found

    freezer = RowFreezer(made, None, None, lambda row, texts, found: None)
    tracker = _CheckedHeads(config, on_retire=lambda conn: None, freezer=freezer)
    try:
        for seg in segments:
            tracker.add(seg)
        tracker.finish()
    finally:
        freezer.close()
    return freezer.frozen, freezer.thawed


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_heads_noted_only_when_they_move_are_the_heads(path: Path) -> None:
    """``_hold`` notes the heads only when one may have moved: they are always current."""
    from tcpflow_analyzer.reader import CaptureReader

    with CaptureReader(path) as reader:
        segments = list(reader)
    config = Config(msl=0.001, late_segment_s=0.0, idle_timeout=0.5, freeze_after_s=0.0)
    _replay_checking_heads(segments, config)


@pytest.mark.parametrize("seed", range(4))
def test_heads_stay_current_with_many_connections_closing_in_turn(
    tmp_path: Path, seed: int
) -> None:
    """Connections closing at random while others stay open, TIME_WAIT ones frozen.

    The closed table then often holds frozen connections while the one of those
    waiting to be frozen is empty, and the connection closing next is not the
    oldest open one: it fills that table without having been a head. Some get a
    segment again once frozen (thawed).
    """
    import random

    from tcpflow_analyzer.reader import CaptureReader

    rng = random.Random(seed)
    packets = []
    for k in range(40):
        conv = Conversation(client=("10.1.0.1", 41000 + k), t0=1_700_000_000.0 + k * 0.01)
        conv.handshake()
        conv.c("PA", b"x", at=rng.uniform(0.5, 1.0))
        conv.step = rng.uniform(0.001, 0.02)
        conv._t = rng.uniform(1.0, 2.0)
        conv.client_close()
        if k % 3 == 0:  # the final ACK again, to a connection frozen by then
            conv.c("A", at=conv._t + 0.3)
        packets.extend(conv.packets)
    packets.sort(key=lambda p: float(p.time))
    path = tmp_path / "turns.pcap"
    Conversation(packets=packets).write(path)
    with CaptureReader(path) as reader:
        segments = list(reader)
    config = Config(msl=1.0, idle_timeout=60.0, freeze_after_s=0.05)
    frozen, thawed = _replay_checking_heads(segments, config)
    assert frozen > 10 and thawed > 3
