"""The fast retirement path: the same results as the plain computations, shortcuts included.

``report.add_retired`` (what ``api.analyze_rows`` runs for each finished
connection) reads a connection's trace once (``findings._Trace``) for the
findings and the teardown columns, and the detectors skip what a connection
provably lacks: no FIN, RST or SYN segment, no previous incarnation, no
anomaly, no payload after a FIN, no period held past its threshold. Each test
here sets a fast answer against the plain, unshortened computation (a scan of
the whole trace, the original composition of the detectors, the public
per-connection functions) on every connection of the real captures, the public
corpus, crafted traces and random ones; the coverage test checks that the
detectors behind every shortcut do fire on that material, so that a shortcut
taken where it should not be makes a difference these tests see.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpflow_analyzer import findings as F
from tcpflow_analyzer import segment
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.findings import Code, Finding, TeardownFacts
from tcpflow_analyzer.reader import CaptureError
from tcpflow_analyzer.replay import replay
from tcpflow_analyzer.report import (
    CONNECTION_COLUMNS,
    add_retired,
    anomaly_rows,
    finding_rows,
    summarize,
    transition_rows,
    zeek_rows,
)
from tcpflow_analyzer.segment import Bit, Flags, addr_text
from tcpflow_analyzer.seq import seq_add
from tcpflow_analyzer.states import Event, State
from tcpflow_analyzer.tracker import Connection, Step

from .wire import CLIENT, MS, SECOND, SERVER, Wire

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CONFIG = Config()
ROLES = ("client", "server")

# (connection, previous incarnation, capture end) as api.analyze_rows hands them out.
Case = tuple[Connection, Connection | None, int]


# -- material ---------------------------------------------------------------------------


def _capture_cases(path: Path) -> list[Case]:
    played = replay(path, CONFIG)
    return [
        (c, c.prev, c.retired_ns if c.retired_ns is not None else c.end_ns)
        for c in played.connections
    ]


def _wire_cases(wire: Wire) -> list[Case]:
    tracker = wire.tracker
    tracker.finish()
    by_id = {c.conn_id: c for c in tracker.connections}
    return [
        (c, by_id.get(c.prev_conn_id) if c.prev_conn_id is not None else None, c.retired_ns or 0)
        for c in tracker.connections
    ]


def _crafted() -> list[Case]:
    """Traces with what the real captures lack: every detector fires on one of them."""
    cases: list[Case] = []
    # A FIN moved 10 bytes on; then the server closes.
    w = Wire()
    w.fin_wait_2()
    w.fin(CLIENT, seq=seq_add(w.nxt(CLIENT), 9))
    w.fin(SERVER)
    w.ack(CLIENT)
    cases += _wire_cases(w)
    # An RST reaching the client in TIME_WAIT, and the same RST again.
    w = Wire()
    w.time_wait()
    w.rst(SERVER, ts_ns=w.ts_ns + SECOND)
    w.rst(SERVER)
    cases += _wire_cases(w)
    # An out-of-window RST, data, then a clean close.
    w = Wire()
    w.established()
    w.rst(SERVER, seq=seq_add(w.nxt(SERVER), 10_000_000))
    w.data(CLIENT)
    w.ack(SERVER)
    w.fin(CLIENT)
    w.ack(SERVER)
    w.fin(SERVER)
    w.ack(CLIENT)
    cases += _wire_cases(w)
    # Data after the client's FIN (anomaly data_after_fin), RST answering it.
    w = Wire()
    w.fin_wait_2()
    w.data(CLIENT, seq=seq_add(w.nxt(CLIENT), 0))
    w.data(SERVER, 50)
    w.rst(CLIENT)
    cases += _wire_cases(w)
    # FIN retransmitted, the second copy re-ACKed from TIME_WAIT; then the 4-tuple reused.
    w = Wire()
    w.last_ack()
    fin = w.fin(SERVER, seq=seq_add(w.nxt(SERVER), -1), ts_ns=w.ts_ns + 200 * MS)
    w.ack(CLIENT)
    w.fin(SERVER, seq=fin.seq, ts_ns=w.ts_ns + 400 * MS)
    w.ack(CLIENT)
    w.syn(CLIENT, isn=9_000_000, ts_ns=w.ts_ns + SECOND)
    w.synack(SERVER, isn=7_000_000)
    w.ack(CLIENT)
    w.data(CLIENT, 10)
    w.fin(CLIENT)
    cases += _wire_cases(w)
    # A SYN sent three times, never answered.
    w = Wire()
    w.syn(CLIENT)
    w.syn(CLIENT, ts_ns=w.ts_ns + SECOND)
    w.syn(CLIENT, ts_ns=w.ts_ns + 2 * SECOND)
    cases += _wire_cases(w)
    # The server's ACK a minute after the client entered TIME_WAIT (expired by then:
    # the tracker applies that when the ACK comes), and the client's RST to it.
    w = Wire()
    w.time_wait()
    w.ack(SERVER, ts_ns=w.ts_ns + 61 * SECOND)
    w.rst(CLIENT)
    cases += _wire_cases(w)
    # The client's SYN missed by the capture; the server's SYN-ACK sent twice.
    w = Wire()
    w.syn(CLIENT, seen=False)
    w.synack(SERVER)
    w.synack(SERVER, ts_ns=w.ts_ns + SECOND)
    w.ack(CLIENT)
    cases += _wire_cases(w)
    # CLOSE_WAIT held up to the server's FIN, FIN_WAIT_2 1 ms longer (to the client's
    # ACK of it): at or under the 1 s threshold, just over it (by 1 ns), well over it.
    for held_ns in (SECOND - MS, SECOND - MS + 1, SECOND, SECOND + 1, 3 * SECOND // 2, 5 * SECOND):
        w = Wire()
        w.fin_wait_2()
        w.fin(SERVER, ts_ns=w.ts_ns + held_ns)
        w.ack(CLIENT)
        cases += _wire_cases(w)
    # Half-close: data after the client's FIN, acknowledged; CLOSE_WAIT held 5 minutes.
    w = Wire()
    w.fin_wait_2()
    for _ in range(3):
        w.data(SERVER, 30)
        w.ack(CLIENT)
    w.fin(SERVER, ts_ns=w.ts_ns + 300 * SECOND)
    w.ack(CLIENT)
    cases += _wire_cases(w)
    return cases


def _material() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(CAPTURES.glob("*.pcap*")):
        cases += _capture_cases(path)
    assert CORPUS.is_dir(), f"conformance set missing: {CORPUS}"
    for path in sorted(CORPUS.rglob("*")):
        if path.suffix in (".pcap", ".pcapng") and path.stat().st_size < 2_000_000:
            try:
                cases += _capture_cases(path)
            except CaptureError:  # unreadable files are test_corpus's business
                continue
    return cases + _crafted()


@pytest.fixture(scope="module")
def material() -> list[Case]:
    return _material()


# Random traces, as in test_findings: any flags, sequence numbers off by a little
# or a lot, gaps up to a minute, segments the capture missed.
_FLAGS = st.sampled_from(
    [
        Flags.SYN,
        Flags.SYN | Flags.ACK,
        Flags.ACK,
        Flags.ACK | Flags.PSH,
        Flags.FIN | Flags.ACK,
        Flags.FIN,
        Flags.RST,
        Flags.RST | Flags.ACK,
        Flags.SYN | Flags.FIN,
    ]
)
_SEGMENT = st.tuples(
    st.sampled_from([CLIENT, SERVER]),
    _FLAGS,
    st.sampled_from([0, 0, 0, -1, 1, -100, 70_000]),
    st.sampled_from([0, 0, 10, 1000]),
    st.sampled_from([0, 0, 1, 2_000, 61_000, 400_000]),
    st.booleans(),
)


def _random_cases(segments: list[Any]) -> list[Case]:
    return _wire_cases(Wire(msl=30.0).play(segments))


# -- the oracles: plain computations ------------------------------------------------------


def _detect_plain(conn: Connection, prev: Connection | None, end_ns: int) -> list[Finding]:
    """Every detector, none skipped, in the original order (findings.detect before)."""
    tr = F._Trace(conn)
    found = [
        *F._fin_findings(tr, end_ns),
        *F._rst_findings(tr, prev, CONFIG),
        *F._reuse_findings(conn, prev, CONFIG),
        *F._stale_findings(conn, prev),
        *F._close_findings(tr, CONFIG, end_ns),
        *F._syn_findings(tr, end_ns),
        *F._anomaly_findings(conn),
    ]
    order = list(Code)
    return sorted(
        found, key=lambda f: (f.frame if f.frame is not None else 1 << 62, order.index(f.code))
    )


def _role(step: Step) -> str:
    return "client" if step.from_client else "server"


def _teardown_plain(
    conn: Connection, prev: Connection | None, found: Sequence[Finding], end_ns: int
) -> TeardownFacts:
    """teardown_facts as first written: whole-trace scans, state_seconds per state."""
    tr = F._Trace(conn)
    groups, _ = F._fin_groups(tr)
    retx = {role: sum(len(g.copies) - 1 for g in mine) for role, mine in groups.items()}
    final_seen: bool | None = None
    for mine in groups.values():
        for g in mine:
            if F._is_last_fin(tr, g, groups):
                hi = g.copies[1] if len(g.copies) > 1 else len(tr.steps)
                acks = F._acks_between(tr, F._other(g.role), g.fin_seq, g.copies[0], hi)
                final_seen = bool(acks)
    rst_roles = {_role(s) for s in conn.trace if s.seg.flags & Bit.RST}
    causes: list[str] = []
    for f in found:
        if f.code in F._RST_CODES and f.code.value not in causes:
            causes.append(f.code.value)
    gap = within = None
    if prev is not None:
        gap_ns, _, cut_short = F._reuse_facts(conn, prev)
        gap, within = gap_ns / 1e9, cut_short
    return TeardownFacts(
        client_fin_retransmits=retx["client"],
        server_fin_retransmits=retx["server"],
        final_ack_lost=any(f.code is Code.LOST_FINAL_ACK for f in found),
        final_ack_seen=final_seen,
        rst_count=sum(1 for s in conn.trace if s.seg.flags & Bit.RST),
        rst_from="both" if len(rst_roles) == 2 else (rst_roles.pop() if rst_roles else ""),
        rst_causes=";".join(causes),
        tuple_reused=conn.prev_conn_id is not None,
        reuse_gap_s=gap,
        reuse_within_time_wait=within,
        stale_segments=sum(1 for f in found if f.code is Code.STALE_DUPLICATE),
        close_wait_s=F.state_seconds(conn, State.CLOSE_WAIT, end_ns),
        fin_wait_2_s=F.state_seconds(conn, State.FIN_WAIT_2, end_ns),
        time_wait_s=F.state_seconds(conn, State.TIME_WAIT, end_ns),
    )


def _check_trace_views(conn: Connection, end_ns: int) -> None:
    """_Trace's index lists and derived views against scans of the whole trace."""
    tr = F._Trace(conn)
    steps = list(conn.trace)
    flags = [s.seg.flags for s in steps]
    assert tr.rsts == [i for i, f in enumerate(flags) if f & Bit.RST]
    assert tr.syns == [i for i, f in enumerate(flags) if f & Bit.SYN and not f & Bit.RST]
    assert tr.fins == [
        i for i, f in enumerate(flags) if f & Bit.FIN and not f & (Bit.RST | Bit.SYN)
    ]
    assert tr.roles == [_role(s) for s in steps]
    # States just before each segment and the peer's last segment, as first built:
    # arrays over the whole trace.
    before: list[tuple[State, State]] = []
    last: dict[str, list[int | None]] = {"client": [], "server": []}
    expiries = [(t.endpoint, t.ts_ns) for t in conn.transitions if t.event is Event.TIMEOUT_2MSL]
    prev = (State.CLOSED, State.LISTEN) if conn.roles == "syn" else (State.UNKNOWN,) * 2
    prev_ts: int | None = None
    latest: dict[str, int | None] = {"client": None, "server": None}
    for i, step in enumerate(steps):
        c, s = prev
        for role, ts in expiries:
            if prev_ts is not None and prev_ts <= ts <= step.seg.ts_ns:
                c = State.CLOSED if role == "client" and c is State.TIME_WAIT else c
                s = State.CLOSED if role == "server" and s is State.TIME_WAIT else s
        before.append((c, s))
        prev, prev_ts = (step.client_state, step.server_state), step.seg.ts_ns
        for role in ROLES:
            last[role].append(latest[role])
        latest[_role(step)] = i
    for i in range(len(steps)):
        assert (tr.state_before(i, "client"), tr.state_before(i, "server")) == before[i]
        assert (tr.last_from("client", i), tr.last_from("server", i)) == (
            last["client"][i],
            last["server"][i],
        )
    for role in ROLES:
        data = [
            i
            for i, s in enumerate(steps)
            if _role(s) == role and s.seg.payload_len and not s.seg.flags & Bit.RST
        ]
        for start in range(-1, len(steps) + 1):
            assert tr.data_after(role, start) == any(i > start for i in data)
    # Periods per (role, state) from one pass, against _intervals' loop per pair.
    periods = tr.periods(end_ns)
    for role in ROLES:
        for state in F._HELD:
            assert periods.get((role, state), []) == F._intervals(conn, role, state, end_ns)
    held = F._held_ns(tr, end_ns)
    for state in F._HELD:
        seconds = F.state_seconds(conn, state, end_ns)
        assert (held[state] / 1e9 if state in held else None) == seconds
    groups, _ = F._fin_groups(tr)
    for role in ROLES:
        assert tr.fins_resent[role] == sum(len(g.copies) - 1 for g in groups[role])
        for g in groups[role]:
            peer = F._other(role)
            if len(g.copies) == 1:  # _fin_findings asks nothing more of it
                assert F._reacks(tr, g, peer) == []
            for lo, hi in ((g.copies[0], len(steps)), (-1, len(steps)), (0, g.copies[0])):
                acks = F._acks_between(tr, peer, g.fin_seq, lo, hi)
                assert F._first_ack_between(tr, peer, g.fin_seq, lo, hi) == (
                    acks[0] if acks else None
                )
    # Payload after an index: the shortcut (no payload from role after start) and the scan.
    for role in ROLES:
        for start in range(-1, len(steps)):
            got = F._new_data_after(tr, role, start, len(steps))
            assert got == F._new_data_scan(tr, role, start, len(steps))


def _retired(
    conn: Connection, prev: Connection | None, end_ns: int
) -> tuple[list[Finding], dict[str, list[dict[str, Any]]]]:
    tables: dict[str, list[dict[str, Any]]] = {
        name: [] for name in ("connections", "transitions", "anomalies", "zeek_conn", "findings")
    }
    return add_retired(tables, conn, prev, CONFIG, end_ns), tables


def _check(case: Case) -> dict[str, int]:
    """Every fast answer for one connection against its plain computation.

    Returns how often each shortcut's detector had something to say (for coverage).
    """
    conn, prev, end_ns = case
    _check_trace_views(conn, end_ns)
    plain = _detect_plain(conn, prev, end_ns)
    assert F.detect(conn, prev, CONFIG, end_ns) == plain
    found, teardown = F.detect_with_teardown(conn, prev, CONFIG, end_ns)
    assert found == plain
    facts = _teardown_plain(conn, prev, plain, end_ns)
    assert TeardownFacts(**teardown) == facts == F.teardown_facts(conn, prev, plain, end_ns)
    assert list(teardown) == list(CONNECTION_COLUMNS)[-len(teardown) :]
    tr = F._Trace(conn)
    linger = F._lingering(tr, CONFIG, end_ns)
    assert F._linger_findings(tr, CONFIG, end_ns) == linger
    # What api.analyze_rows keeps, against the public functions one by one.
    mine, rows = _retired(conn, prev, end_ns)
    assert mine == plain
    expected = {
        "connections": [summarize(conn, prev=prev, findings=plain, capture_end_ns=end_ns)],
        "transitions": transition_rows([conn]),
        "anomalies": anomaly_rows([conn]),
        "zeek_conn": zeek_rows([conn]),
        "findings": finding_rows(plain),
    }
    assert rows == expected
    assert [list(r) for r in rows["connections"]] == [list(CONNECTION_COLUMNS)]
    codes = {f.code for f in plain}
    return {
        "fin": int(bool(codes & {Code.FIN_MOVED, Code.FIN_RETRANSMIT, Code.LOST_FINAL_ACK})),
        "reack": int(Code.TIME_WAIT_REACK in codes),
        "rst": int(bool(codes & F._RST_CODES)),
        "rst_again": int(len(tr.rsts) > 1 and bool(codes & F._RST_CODES)),
        "reuse": int(Code.TUPLE_REUSE in codes),
        "stale": int(Code.STALE_DUPLICATE in codes),
        "syn": int(bool(codes & {Code.SYN_RETRANSMIT, Code.SYN_UNANSWERED})),
        "anomaly": int(any(f.code.value in {a.value for a in F.Anomaly} for f in plain)),
        "half_close": int(Code.HALF_CLOSE in codes),
        "data_after_close": int(Code.RST_DATA_AFTER_CLOSE in codes),
        "linger": int(bool(linger)),
        "time_wait_s": int(facts.time_wait_s is not None),
        "final_ack_seen": int(facts.final_ack_seen is True),
        "final_ack_unseen": int(facts.final_ack_seen is False),
        "expired_before": sum(
            tr.state_before(i, role) is not tr.state_after(i - 1, role)
            for i in range(1, len(tr.steps))
            for role in ROLES
        ),
    }


# -- the tests ---------------------------------------------------------------------------


def test_fast_path_matches_the_plain_one_on_every_connection(material: list[Case]) -> None:
    fired: dict[str, int] = {}
    for case in material:
        for name, n in _check(case).items():
            fired[name] = fired.get(name, 0) + n
    # Each shortcut guards a detector that does fire on this material: had one
    # been taken where it should not, the comparisons above would have seen it.
    assert all(fired.values()), fired


@settings(max_examples=200, deadline=None)
@given(st.lists(_SEGMENT, min_size=1, max_size=30))
def test_fast_path_matches_the_plain_one_on_random_traces(segments: list[Any]) -> None:
    for case in _random_cases(segments):
        _check(case)


class _ReadOnlyTrace(Sequence[Step]):
    """A trace that only answers len(), indexing, slicing and iteration (a lazy one may)."""

    def __init__(self, steps: list[Step]) -> None:
        self._steps = steps

    def __len__(self) -> int:
        return len(self._steps)

    @overload
    def __getitem__(self, i: int) -> Step: ...

    @overload
    def __getitem__(self, i: slice) -> list[Step]: ...

    def __getitem__(self, i: int | slice) -> Step | list[Step]:
        return self._steps[i]

    def __iter__(self) -> Iterator[Step]:
        return iter(self._steps)


def _with_read_only_trace(conn: Connection) -> Connection:
    twin = copy.copy(conn)
    twin.trace = _ReadOnlyTrace(list(conn.trace))  # type: ignore[assignment]
    return twin


def test_add_retired_reads_the_trace_as_a_sequence_only(material: list[Case]) -> None:
    checked = 0
    for conn, prev, end_ns in material:
        if prev is None and not conn.anomalies and len(conn.trace) < 4:
            continue
        frozen = _with_read_only_trace(conn)
        frozen_prev = _with_read_only_trace(prev) if prev is not None else None
        assert _retired(frozen, frozen_prev, end_ns) == _retired(conn, prev, end_ns)
        checked += 1
    assert checked > 100


def test_summarize_keeps_its_column_order(material: list[Case]) -> None:
    conn, prev, end_ns = material[0]
    assert list(summarize(conn, prev=prev, capture_end_ns=end_ns)) == list(CONNECTION_COLUMNS)


@given(st.binary(min_size=4, max_size=4) | st.binary(min_size=16, max_size=16))
def test_addr_text_is_ipaddress_text(addr: bytes) -> None:
    assert addr_text(addr) == str(ipaddress.ip_address(addr))
    assert addr_text(addr) == str(ipaddress.ip_address(addr))  # again, from the cache


@pytest.mark.parametrize("bad", [b"", b"\x01\x02\x03", b"\x00" * 5, b"\x00" * 17])
def test_addr_text_rejects_other_lengths(bad: bytes) -> None:
    with pytest.raises(ValueError):
        addr_text(bad)


def test_addr_text_keeps_a_bounded_cache() -> None:
    """The texts kept are emptied when full: the texts stay right, the cache bounded."""
    for i in range(segment._ADDR_TEXTS_KEPT + 100):
        addr = i.to_bytes(4, "big")
        assert addr_text(addr) == str(ipaddress.ip_address(addr))
        assert len(segment._ADDR_TEXTS) <= segment._ADDR_TEXTS_KEPT
    assert addr_text(b"\x00" * 16) == "::"
