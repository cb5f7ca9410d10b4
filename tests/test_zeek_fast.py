"""The shortcuts of ``tcpflow_analyzer.zeek`` against its full path.

``zeek.FAST_PATH.on`` switches the shortcuts: the in-order segment fast path of
``ZeekConn.add`` (``ZeekConn._fast``) and the "no timer due" early returns of
``zeek_starts_new_conn``, ``removed_by`` and ``_run_timers``. Off, every
packet takes the full path. The shortcuts must change nothing but time:

* every capture under ``captures/`` and the shared corpus is split into
  4-tuples and replayed twice in lockstep, one ``ZeekConn`` with the
  shortcuts and one without; the new-connection decision and the complete
  internal state (every attribute of the connection, its endpoints and their
  reassemblers) must agree after every packet;
* the Zeek table of the whole pipeline (``report.zeek_rows``) must be equal
  with the switch on and off;
* crafted conversations check that the fast path is taken for the plain
  in-order segment and *not* taken where the full path has work to do
  (retransmission, zero window, a hole, an ACK of data never seen, a timer
  due, data after a FIN), and that the results still agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import TCP

import tcpflow_analyzer.zeek as zeek
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.reader import CaptureError, CaptureReader
from tcpflow_analyzer.replay import replay
from tcpflow_analyzer.report import zeek_rows
from tcpflow_analyzer.segment import Segment
from tcpflow_analyzer.seq import seq_diff
from tcpflow_analyzer.zeek import ZeekConn, zeek_starts_new_conn

from .craft import Conversation
from .zeek_driver import CORPUS

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
SUFFIXES = (".pcap", ".pcapng", ".trace", ".cap", ".dump", ".gz")


def _capture_files() -> list[Path]:
    found = [
        p
        for root in (CAPTURES, CORPUS)
        for p in root.rglob("*")
        if p.is_file() and p.name.endswith(SUFFIXES)
    ]
    return sorted(found)


ALL_CAPTURES = _capture_files()


def _id(path: Path) -> str:
    for root in (CAPTURES, CORPUS):
        if path.is_relative_to(root):
            return f"{root.name}/{path.relative_to(root)}"
    return str(path)


def _segments(path: Path) -> list[Segment]:
    try:
        with CaptureReader(path) as reader:
            return list(reader)
    except CaptureError:
        return []  # not a capture (a deliberately corrupt file): nothing to compare


def _flows(segs: list[Segment]) -> Iterator[list[tuple[Segment, bool]]]:
    """Each 4-tuple's (+ VLAN) packets in capture order, with ``from_a`` (first sender)."""
    flows: dict[tuple[Any, ...], list[tuple[Segment, bool]]] = {}
    firsts: dict[tuple[Any, ...], tuple[bytes, int]] = {}
    for seg in segs:
        a, b = (seg.src, seg.sport), (seg.dst, seg.dport)
        key = (seg.vlan, *sorted((a, b)))
        first = firsts.setdefault(key, a)
        flows.setdefault(key, []).append((seg, a == first))
    yield from flows.values()


def _state(obj: object) -> object:
    """Every attribute of a ZeekConn, its endpoints and reassemblers, recursively."""
    if isinstance(obj, (list, tuple)):
        return [_state(x) for x in obj]
    if isinstance(obj, (ZeekConn, zeek._Endpoint, zeek._Reassembler)):
        names = list(getattr(obj, "__slots__", ())) + list(getattr(obj, "__dict__", {}))
        return {n: _state(getattr(obj, n)) for n in names}
    return obj


class _Spy:
    """Records, per frame, whether ``ZeekConn._fast`` handled the packet."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.taken: dict[int, bool] = {}
        real = ZeekConn._fast

        def spy(zc: ZeekConn, seg: Segment, from_first: bool) -> bool:
            took = real(zc, seg, from_first)
            self.taken[seg.frame] = took
            return took

        monkeypatch.setattr(ZeekConn, "_fast", spy)


def _lockstep(packets: list[tuple[Segment, bool]], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replay one 4-tuple with and without the shortcuts; return the differences."""
    fast: ZeekConn | None = None
    full: ZeekConn | None = None
    first_is_a = True
    diffs: list[str] = []
    for seg, from_a in packets:
        if fast is not None and full is not None:
            monkeypatch.setattr(zeek.FAST_PATH, "on", True)
            new_fast = zeek_starts_new_conn(fast, seg, from_a == first_is_a)
            monkeypatch.setattr(zeek.FAST_PATH, "on", False)
            new_full = zeek_starts_new_conn(full, seg, from_a == first_is_a)
            if new_fast != new_full:
                diffs.append(f"frame {seg.frame}: new connection {new_fast} != {new_full}")
                return diffs
            if new_fast:
                fast = full = None
        if fast is None or full is None:
            fast, full = ZeekConn(), ZeekConn()
            first_is_a = from_a
        monkeypatch.setattr(zeek.FAST_PATH, "on", True)
        fast.add(seg, from_a == first_is_a)
        monkeypatch.setattr(zeek.FAST_PATH, "on", False)
        full.add(seg, from_a == first_is_a)
        a, b = _state(fast), _state(full)
        if a != b:
            assert isinstance(a, dict) and isinstance(b, dict)
            keys = [k for k in a if a[k] != b[k]]
            diffs.append(f"frame {seg.frame}: {keys}: {[a[k] for k in keys]} != {b}")
            return diffs
    monkeypatch.setattr(zeek.FAST_PATH, "on", True)
    return diffs


def test_the_switch_is_on_by_default() -> None:
    assert zeek.FAST_PATH.on is True


def test_the_switch_turns_the_fast_path_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off, ``_fast`` is never asked (so the lockstep replays compare two paths)."""
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(zeek.FAST_PATH, "on", False)
    conns = replay(CAPTURES / "client_close.pcap", Config()).connections
    assert conns and spy.taken == {}
    monkeypatch.setattr(zeek.FAST_PATH, "on", True)
    replay(CAPTURES / "client_close.pcap", Config())
    assert any(spy.taken.values())


def _relative_reference(cur: int, last: int, start: int, wraps: int) -> tuple[int, bool]:
    """``_Endpoint.relative`` as defined with seq_diff (it inlines the arithmetic)."""
    delta = seq_diff(cur, last)
    if delta < 0:
        if wraps and cur > last:
            wraps -= 1
    elif delta > 0 and cur < last:
        wraps += 1
    if wraps == 0:
        d = seq_diff(cur, start)
        return d & (2**64 - 1), d < 0
    return ((wraps << 32) + cur - start) & (2**64 - 1), False


def _relative(cur: int, last: int, start: int, wraps: int) -> tuple[int, bool]:
    ep = zeek._Endpoint(is_orig=True, is_first=True)
    ep.start_seq = start
    return ep.relative(cur, last, wraps)


_EDGES = [0, 1, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1]


def test_relative_matches_its_definition_at_the_edges() -> None:
    for cur in _EDGES:
        for last in _EDGES:
            for start in _EDGES:
                for wraps in range(3):
                    got = _relative(cur, last, start, wraps)
                    assert got == _relative_reference(cur, last, start, wraps), (cur, last, start)


_U32 = st.integers(min_value=0, max_value=2**32 - 1)


@given(cur=_U32, last=_U32, start=_U32, wraps=st.integers(min_value=0, max_value=3))
def test_relative_matches_its_definition(cur: int, last: int, start: int, wraps: int) -> None:
    assert _relative(cur, last, start, wraps) == _relative_reference(cur, last, start, wraps)


@pytest.mark.parametrize("path", ALL_CAPTURES, ids=_id)
def test_lockstep_state_agrees_on_every_capture(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for packets in _flows(_segments(path)):
        assert _lockstep(packets, monkeypatch) == [], path


def test_the_captures_exercise_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparisons above are not vacuous: most packets take the fast path."""
    spy = _Spy(monkeypatch)
    taken = total = 0
    for path in ALL_CAPTURES:
        spy.taken.clear()
        for packets in _flows(_segments(path)):
            _lockstep(packets, monkeypatch)
        taken += sum(spy.taken.values())
        total += len(spy.taken)
    assert total > 5_000
    assert taken > total // 2


@pytest.mark.parametrize("path", ALL_CAPTURES, ids=_id)
def test_zeek_table_is_the_same_without_the_shortcuts(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def rows(fast: bool) -> list[dict[str, Any]] | str:
        monkeypatch.setattr(zeek.FAST_PATH, "on", fast)
        try:
            return zeek_rows(replay(path, Config()).connections)
        except CaptureError as e:
            return str(e)

    assert rows(True) == rows(False)


# ---------------------------------------------------------------- crafted cases


def _run(
    conv: Conversation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[int, bool], list[ZeekConn]]:
    """Write ``conv``, replay it in lockstep (must agree); which frames took the fast path."""
    segs = _segments(conv.write(tmp_path / "conv.pcap"))
    assert len(segs) == len(conv.packets)
    spy = _Spy(monkeypatch)
    (packets,) = list(_flows(segs))
    assert _lockstep(packets, monkeypatch) == []
    return spy.taken, zeek.replay(packets)


def _frame(conv: Conversation) -> int:
    """The frame number of the packet just added."""
    return len(conv.packets)


def _established(step: float = 0.001) -> Conversation:
    conv = Conversation(step=step).handshake()
    conv.c("PA", b"GET / HTTP/1.0\r\n\r\n")
    conv.s("A")
    conv.s("PA", b"HTTP/1.0 200 OK\r\n\r\n")
    conv.c("A")
    return conv


def test_plain_in_order_segments_take_the_fast_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conv = _established()
    conv.c("PA", b"more")
    conv.s("A")
    taken, (zc,) = _run(conv, tmp_path, monkeypatch)
    # The handshake's ACK and everything after it (data and pure ACKs, both ways).
    assert [f for f, t in sorted(taken.items()) if t] == [3, 4, 5, 6, 7, 8, 9]
    assert zc.history() == "ShADad"
    assert zc.conn_state() == "S1"


def test_retransmission_is_not_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conv = _established()
    seq = conv.cseq
    conv.c("PA", b"again")
    conv.c("PA", b"again", seq=seq)  # the same payload once more
    retransmitted = _frame(conv)
    conv.s("A")
    taken, (zc,) = _run(conv, tmp_path, monkeypatch)
    assert taken[retransmitted] is False
    assert taken[retransmitted - 1] is True
    assert taken[retransmitted + 1] is True
    assert "T" in zc.history()


def test_zero_window_is_not_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conv = _established()
    conv.c("PA", b"fill")
    conv.s("A")[TCP].window = 0
    zero = _frame(conv)
    conv.s("A")
    taken, (zc,) = _run(conv, tmp_path, monkeypatch)
    assert taken[zero] is False
    assert taken[zero + 1] is True
    assert zc.history().endswith("w")


def test_hole_and_ack_of_unseen_data_are_not_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conv = _established()
    conv.c("PA", b"x" * 100, seq=conv.cseq + 50)  # 50 bytes never captured before it
    after_hole = _frame(conv)
    conv.cseq = (conv.cseq + 150) % 2**32
    conv.s("A")  # acks the 50 bytes it never saw go by
    unseen_ack = _frame(conv)
    conv.c("PA", b"tail")
    conv.s("A")
    taken, (zc,) = _run(conv, tmp_path, monkeypatch)
    assert taken[after_hole] is False
    assert taken[unseen_ack] is False
    assert taken[unseen_ack + 1] is True
    assert taken[unseen_ack + 2] is True
    assert "G" in zc.history()
    assert zc.missed_bytes == 50


def test_ack_of_data_never_seen_at_all_is_not_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conv = _established()
    conv.s("A", ack=conv.cseq + 1000)  # the client's 1000 bytes are not in the capture
    unseen_ack = _frame(conv)
    taken, (zc,) = _run(conv, tmp_path, monkeypatch)
    assert taken[unseen_ack] is False
    assert zc.missed_bytes == 1000


def test_timer_due_skips_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conv = _established()
    conv.c("PA", b"late", at=6.0)  # past tcp_SYN_timeout: the first expire timer is due
    late = _frame(conv)
    conv.s("A")
    taken, (zc,) = _run(conv, tmp_path, monkeypatch)
    assert late not in taken  # the timers ran, then the full path
    assert taken[late + 1] is True
    assert zc.orig_pkts == 5  # the expire timer did not remove the live connection


def test_inactivity_timer_due_starts_a_new_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conv = _established()
    conv.c("PA", b"much later", at=400.0)  # idle past tcp_inactivity_timeout
    late = _frame(conv)
    taken, conns = _run(conv, tmp_path, monkeypatch)
    assert late not in taken  # the first packet of a new connection
    assert len(conns) == 2
    assert conns[1].history() == "D"  # a partial connection, no handshake in it


def test_data_after_fin_is_not_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conv = _established()
    conv.c("FA")
    fin = _frame(conv)
    conv.c("PA", b"after the FIN")
    after = _frame(conv)
    conv.s("A")  # the server's ACK: its peer sent a FIN
    conv.s("PA", b"the server may still talk")
    taken, (zc,) = _run(conv, tmp_path, monkeypatch)
    assert taken[fin] is False
    assert taken[after] is False
    assert taken[after + 1] is False
    assert taken[after + 2] is False
    assert zc.conn_state() == "S2"
