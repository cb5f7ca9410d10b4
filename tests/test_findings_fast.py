"""The detectors' record readers against the steps they stand in for, on every capture.

``findings._Trace`` reads a packed trace's numbers straight from its records
(``compact.Trace.seq_ack_len``, ``numbers``, ``flags_directions``) and folds the
periods of each state without listing them (``findings._state_held``). Each is
set here against the plain reading (the materialized steps, ``_intervals``) on
every connection of ``captures/`` and ``../shared/corpus``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpflow_analyzer import findings as F
from tcpflow_analyzer.compact import Trace
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.reader import CaptureError
from tcpflow_analyzer.replay import replay
from tcpflow_analyzer.tracker import Connection

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CONFIG = Config()


def _connections() -> list[tuple[Connection, int]]:
    paths = sorted(CAPTURES.glob("*.pcap*"))
    paths += sorted(
        p
        for p in CORPUS.rglob("*")
        if p.suffix in (".pcap", ".pcapng") and p.stat().st_size < 2_000_000
    )
    out = []
    for path in paths:
        try:
            played = replay(path, CONFIG)
        except CaptureError:
            continue
        for c in played.connections:
            out.append((c, c.retired_ns if c.retired_ns is not None else c.end_ns))
    return out


@pytest.fixture(scope="module")
def connections() -> list[tuple[Connection, int]]:
    return _connections()


def test_record_readers_match_the_steps(connections: list[tuple[Connection, int]]) -> None:
    packed = 0
    for conn, _ in connections:
        trace = conn.trace
        assert isinstance(trace, Trace)
        steps = trace.steps()
        segs = [s.seg for s in steps]
        flags, directions = trace.flags_directions()
        assert (flags, directions) == (trace.flags(), trace.directions())
        assert list(flags) == [s.flags for s in segs]
        assert list(directions) == [int(s.from_client) for s in steps]
        seqs, acks, lens = trace.numbers()
        assert list(seqs) == [s.seq for s in segs]
        assert list(acks) == [s.ack for s in segs]
        assert list(lens) == [s.payload_len for s in segs]
        for i, s in enumerate(segs):
            assert trace.seq_ack_len(i) == (s.seq, s.ack, s.payload_len)
        for bad in (-1, len(segs)):
            with pytest.raises(IndexError):
                trace.seq_ack_len(bad)
        tr = F._Trace(conn)
        assert tr.numbers() == (seqs, acks, lens)
        for i, s in enumerate(segs):
            assert tr.seg_len(i, s.payload_len) == s.seg_len
        trace.release()
        packed += 1
    assert packed > 50


def test_state_held_folds_the_intervals(connections: list[tuple[Connection, int]]) -> None:
    held_any = 0
    for conn, end_ns in connections:
        for state in (F._CLOSE_WAIT, F._FIN_WAIT_2, F._TIME_WAIT):
            per_role = []
            for role in ("client", "server"):
                spans = [b - a for a, b, *_ in F._intervals(conn, role, state, end_ns)]
                got = F._state_periods(conn, role, state, end_ns)
                assert got == (len(spans), sum(spans), max(spans) if spans else 0)
                if spans:
                    per_role.append((max(spans), sum(spans)))
            held, longest, total = F._state_held(conn, state, end_ns)
            assert held == bool(per_role)
            if per_role:
                held_any += 1
                assert longest == max(top for top, _ in per_role)
                assert total == max(t for _, t in per_role)
    assert held_any > 50
