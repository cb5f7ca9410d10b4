"""Zeek's view of one TCP connection: conn.log ``conn_state``, ``history`` and counters.

Every rule that moves this emulation lives in this file. It reproduces the
behaviour of Zeek's TCP analysis as of Zeek 8.1/8.2 (master, 2025-2026), read
from ``TCPSessionAdapter.cc``, ``TCP_Endpoint.cc``, ``TCP_Reassembler.cc``,
``Reassem.cc``, ``TCP.cc``, ``IPBasedAnalyzer.cc``, ``Conn.cc`` and
``base/protocols/conn/main.zeek``; it is our own code, written from those
semantics, not a translation.

Theory of operation
-------------------
**Roles.** The caller only knows which endpoint sent a connection's first
packet (``from_first``). Zeek names the endpoints originator and responder:

* At creation (``WantConnection``) a first packet that is a SYN without ACK
  makes its sender the originator. Any other first packet makes a *partial*
  connection, flipped when its source port is a likely server port and the
  destination port is not, or when both are and the packet is not a SYN-ACK
  and the source port is the lower one. ``likely_server_ports`` is the union
  of the ports of Zeek's base protocol scripts (:data:`DEFAULT_LIKELY_SERVER_PORTS`).
* A connection whose first packet was an unflipped SYN-ACK is flipped when the
  next ACK or data segment (either direction, no SYN/FIN/RST) arrives (Zeek
  5.1, zeek/zeek#2191); the SYN-ACK sender becomes an established responder,
  exactly as if the flip had happened at creation.
* A SYN from the responder carrying the responder's initial sequence number
  while the originator sits in SYN_ACK_SENT is a SYN/SYN-ACK reversal and
  flips the roles (``UpdateInactiveState``).

A flip records ``^``. As Zeek 8.1's conn.log shows for late flips, letters
recorded before the flip are rewritten for the new roles: the history becomes
``^`` + the old history with its case swapped, and the per-direction "seen"
bits are swapped with it. Packet and byte counters follow the endpoint that
sent each packet (the ConnSize fix of zeek/zeek#5047).

**Endpoints.** Each endpoint holds Zeek's ``TCP_Endpoint`` state (INACTIVE,
SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET), start/last/ack
sequence numbers with wrap counts, FIN/RST counts and the sequence numbers of
the last SYN/FIN/RST seen for history repeats. A packet is processed in
Zeek's order: initialise the endpoint, relative sequence number, history
letter, zero-window check, ack bookkeeping, last-sequence update (which
counts retransmissions: payload that does not advance the last sequence
number), the per-state transition function, the ack handed to the peer's
reassembler, the payload handed to this endpoint's reassembler, EOF check,
close handling.

**History.** ``S h A D F R I Q`` (``I``: FIN+RST, ``Q``: other multi-flag)
are recorded once per direction, except that S/H, F and R repeat when their
relative sequence number differs from the last one of that kind. ``T`` (a
retransmission), ``W`` (zero window, unless RST, after own RST or after the
peer's FIN) and ``G`` (content gap) are scaled: recorded at the 1st, 10th,
100th ... occurrence. Upper case is the originator.

**Gaps** come from a model of Zeek's reassembler per endpoint: received
payload blocks, the delivered edge and the trim edge. When the peer's ACK
moves past data never seen, the hole is a gap; it counts (``G``, and
``missed_bytes``) only while both endpoints are ESTABLISHED or cleanly
closing (CLOSED after ESTABLISHED). Snap-length-cut payload is not
reassembled (it becomes a gap), as in Zeek. The reassembler also decides when
a FIN "closes" (no data pending), which drives Zeek's close timers.

**Connection records.** ``conn_state()`` is main.zeek's ``conn_state``
function of the two endpoint states, sizes and history. ``orig_bytes`` and
``resp_bytes`` are the endpoint sizes from sequence numbers, logged only when
the duration is positive (``None`` otherwise, Zeek's ``-``).

When Zeek starts a NEW connection on the same 4-tuple
----------------------------------------------------------
A packet belongs to a new connection record (a new conn.log row) when either

1. the old connection was **removed by a timer** that fired at or before the
   packet's time (Zeek expires timers before it looks the packet up):

   * *close*: once one endpoint's close completes (it sent RST, or both
     sides closed, or the peer never sent anything), ``tcp_close_delay`` (5 s)
     after the connection's last activity. A FIN whose data is still pending
     in the reassembler defers the close.
   * *reset*: a RST after a FIN while the peer is not CLOSED: ``tcp_reset_delay``
     (5 s) after the RST.
   * *attempt*: ``tcp_attempt_delay`` (5 s) after the originator's first SYN,
     if the originator is still SYN_SENT/SYN_ACK_SENT and the responder
     INACTIVE (so unanswered SYN retransmissions after 5 s start new S0 rows).
   * *expire*: a timer first due ``tcp_SYN_timeout`` (5 s) after creation and
     then every ``tcp_session_timer`` (6 s) after it fires, stopped once the
     connection reported finished/reset; it removes the connection when it
     has been idle more than ``tcp_connection_linger`` (5 s) and either an
     endpoint closed and (both closed, or one is RESET or INACTIVE), or both
     endpoints are INACTIVE.
   * *inactivity*: idle for ``tcp_inactivity_timeout`` (5 min) once an
     endpoint has left the handshake states, before that
     ``udp_inactivity_timeout`` (1 min; Zeek's TCP analyzer sets it first).

2. or the packet is a **reuse** (``IsReuse``): a SYN (or, while the
   originator is still INACTIVE, a SYN-ACK) when either endpoint has already
   closed, or, with neither closed, a SYN whose sequence number differs from
   the originator's initial one (for a SYN-ACK: the responder's) unless it is
   the SYN of a SYN/SYN-ACK reversal.

:func:`zeek_starts_new_conn` applies both rules. Timers are evaluated lazily
at the next packet of the same 4-tuple, as if that packet were the next one
in the capture: exact for the close/reset/attempt/inactivity deadlines; the
expire timer's 6 s cadence really depends on when other traffic advances
Zeek's clock, so with other traffic in between it may fire earlier than here.
Zeek keys connections by the 4-tuple only (not VLAN) by default.

Speed
-----
This runs for every packet, so two shortcuts skip work that provably does
nothing; each is derived from the full path and falls back to it whenever a
condition is not met. ``ZeekConn`` keeps the earliest due time of its timers,
so ``zeek_starts_new_conn``, ``removed_by`` and ``_run_timers`` return at once
when no timer (and no inactivity timeout) is due (``ZeekConn.add_unless_new``,
the tracker's one call per packet, looks once for both steps). ``ZeekConn._fast`` handles
the overwhelmingly common segment (in order, ACK set, no SYN/FIN/RST, nonzero
window, both endpoints ESTABLISHED or PARTIAL, no gap) with inlined
bookkeeping; the reassembler keeps its last block in two integer attributes
(``_Reassembler``), so such a segment makes no object. The module switch
``FAST_PATH.on = False`` turns both off; the tests replay every capture both
ways and require identical state after every packet.

Not emulated
------------
Bad checksums (``C``/``c``: Zeek drops such packets; segments carry no
checksum verdict), frames whose TCP header the snap length cut (Zeek creates
the connection but ignores the packet; the decoder skips them), the
``connection_partial_close`` timer (no handler in default scripts), the
``max_timer_expires`` per-packet cap, DPD's ``Skipping`` and
``tcp_max_old_segments``. ``x``/``X`` letters never arise for TCP here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .segment import Bit, Segment
from .seq import seq_diff

__all__ = [
    "DEFAULT_LIKELY_SERVER_PORTS",
    "EndpointState",
    "ZeekConfig",
    "ZeekConn",
    "replay",
    "zeek_starts_new_conn",
]

_M32: Final = (1 << 32) - 1
_M64: Final = (1 << 64) - 1
_MOD: Final = 1 << 32
_HALF: Final = 1 << 31
_TOO_LARGE_SEQ_DELTA: Final = 1048576  # TCPSessionAdapter.cc
_SEC: Final = 1_000_000_000
_NEVER: Final = 1 << 64  # a due time no timestamp reaches (ts_ns fits a signed 64-bit integer)


class _Switch:
    """A switch: an attribute of a Final object, which compiled code reads at once.

    (A plain module variable that may change is looked up in the module's dict
    on every read in the compiled build, twice a segment here.)
    """

    __slots__ = ("on",)

    def __init__(self, on: bool) -> None:
        self.on = on


# Module switch for the shortcuts (the in-order segment fast path of ZeekConn.add and
# the "no timer due" early returns). Off, every packet takes the full path; the
# tests replay captures both ways and require identical results.
FAST_PATH: Final = _Switch(True)

# TCP ports that Zeek's base protocol scripts add to ``likely_server_ports``
# (ftp, ssh, smtp, dns, http, krb, dce_rpc, smb, imap, ldap, ssl, modbus,
# socks, mysql, rdp, xmpp, postgresql, redis, irc, dnp3).
DEFAULT_LIKELY_SERVER_PORTS: frozenset[int] = frozenset(
    {
        21, 22, 25, 53, 80, 81, 88, 135, 139, 143, 389, 443, 445, 502, 563, 585,
        587, 614, 631, 636, 989, 990, 992, 993, 995, 1080, 1434, 2811, 3128, 3268,
        3306, 3389, 5222, 5223, 5269, 5432, 6379, 6666, 6667, 6668, 6669, 8000,
        8080, 8888, 20000,
    }
)  # fmt: skip


class EndpointState(StrEnum):
    """Zeek's TCP endpoint states, named as in Zeek scripts (``c$orig$state``)."""

    INACTIVE = "TCP_INACTIVE"  # nothing seen from this side
    SYN_SENT = "TCP_SYN_SENT"  # SYN seen, no ack
    SYN_ACK_SENT = "TCP_SYN_ACK_SENT"  # SYN-ACK seen from the originator, no SYN
    PARTIAL = "TCP_PARTIAL"  # data seen, but no SYN
    ESTABLISHED = "TCP_ESTABLISHED"  # SYN-ACK seen (or implied)
    CLOSED = "TCP_CLOSED"  # FIN seen
    RESET = "TCP_RESET"  # RST seen


# Module constants for the hot paths: an enum member or class attribute lookup
# (``EndpointState.CLOSED``, ``Bit.SYN``) costs many times a global's.
_INACTIVE: Final = EndpointState.INACTIVE
_SYN_SENT: Final = EndpointState.SYN_SENT
_SYN_ACK_SENT: Final = EndpointState.SYN_ACK_SENT
_PARTIAL: Final = EndpointState.PARTIAL
_ESTABLISHED: Final = EndpointState.ESTABLISHED
_CLOSED: Final = EndpointState.CLOSED
_RESET: Final = EndpointState.RESET
_HANDSHAKE: Final = frozenset({_INACTIVE, _SYN_SENT, _SYN_ACK_SENT})
_SYN: Final = Bit.SYN  # (each Final: a tuple assignment made them dict lookups compiled)
_FIN: Final = Bit.FIN
_RST: Final = Bit.RST
_ACK: Final = Bit.ACK
_SYN_FIN_RST: Final = _SYN | _FIN | _RST

# History "seen" masks (TCP_Endpoint.h); the responder's are shifted left 16.
_HIST_SYN: Final = 0x1
_HIST_FIN: Final = 0x2
_HIST_RST: Final = 0x4
_HIST_FIN_RST: Final = 0x8
_HIST_DATA: Final = 0x10
_HIST_ACK: Final = 0x20
_HIST_MULTI_FLAG: Final = 0x40

_RSTOS0: Final = re.compile(r"\^?S[^HAFGIQ]*R.*")  # main.zeek's conn_state pattern


@dataclass(frozen=True, slots=True)
class ZeekConfig:
    """Zeek's tunables that matter here, with Zeek's defaults (init-bare.zeek)."""

    likely_server_ports: frozenset[int] = DEFAULT_LIKELY_SERVER_PORTS
    tcp_syn_timeout_ns: int = 5 * _SEC
    tcp_session_timer_ns: int = 6 * _SEC
    tcp_connection_linger_ns: int = 5 * _SEC
    tcp_attempt_delay_ns: int = 5 * _SEC
    tcp_close_delay_ns: int = 5 * _SEC
    tcp_reset_delay_ns: int = 5 * _SEC
    tcp_inactivity_timeout_ns: int = 300 * _SEC
    udp_inactivity_timeout_ns: int = 60 * _SEC  # a new TCP connection's first timeout
    tcp_max_initial_window: int = 16384
    tcp_max_above_hole_without_any_acks: int = 16384
    tcp_excessive_data_without_further_acks: int = 10 * 1024 * 1024


_DEFAULT_CONFIG: Final = ZeekConfig()  # frozen: one instance serves every connection


def _u64(n: int) -> int:
    """``n`` as an unsigned 64-bit integer (``n & (2**64 - 1)``, as Zeek's arithmetic wraps).

    Compiled, ``& (2**64 - 1)`` takes the slow path of a long integer even for the
    small non-negative ``n`` it leaves alone; ``n >> 64`` is a machine shift then.
    """
    return n if n >> 64 == 0 else n & _M64


class _Reassembler:
    """Zeek's per-endpoint reassembler reduced to sequence bookkeeping.

    Its blocks are disjoint, sorted ``[lo, hi)`` ranges of relative sequence
    numbers received and not yet trimmed by an ACK (delivered or not)
    (:meth:`ranges`); ``lrs`` is the delivered edge (last_reassem_seq), ``trim``
    the trim edge. The last block is held in ``lo`` and ``hi`` (no block when
    they are equal: a block is never empty), the ones before it in ``blocks``.
    The common case, one block that grows at its end as data comes in order and
    is dropped when acked, then makes no object per segment (a tuple and its
    integers for each new end, a list for each ack).
    """

    __slots__ = ("blocks", "did_eof", "hi", "lo", "lrs", "skip", "trim")

    def __init__(self) -> None:
        self.blocks: list[tuple[int, int]] = []  # the blocks before the last one
        self.lo = 0  # the last block (none when lo == hi)
        self.hi = 0
        self.lrs = 1
        self.trim = 1
        self.skip = False  # Zeek's skip_deliveries
        self.did_eof = False

    def ranges(self) -> list[tuple[int, int]]:
        """Every block, in order."""
        if self.hi == self.lo:
            return []
        return [*self.blocks, (self.lo, self.hi)]

    def set_ranges(self, ranges: list[tuple[int, int]]) -> None:
        """Make ``ranges`` (disjoint, sorted, none empty) the blocks."""
        if ranges:
            self.lo, self.hi = ranges[-1]
            self.blocks = ranges[:-1]
        else:
            self.clear()

    def clear(self) -> None:
        """Drop every block."""
        if self.blocks:
            self.blocks = []
        self.lo = self.hi = 0

    def first_lo(self) -> int:
        """Where the first block starts (there is one)."""
        return self.blocks[0][0] if self.blocks else self.lo

    def drop_through(self, seq: int) -> None:
        """Drop the blocks that end at or before ``seq``."""
        if self.hi <= seq:
            self.clear()  # the last block ends there: so do the others
        elif self.blocks:
            self.blocks = [b for b in self.blocks if b[1] > seq]

    def insert(self, lo: int, hi: int) -> None:
        merged: list[tuple[int, int]] = []
        for b in self.ranges():
            if b[1] < lo or b[0] > hi:
                merged.append(b)
            else:
                lo, hi = min(lo, b[0]), max(hi, b[1])
        merged.append((lo, hi))
        merged.sort()
        self.set_ranges(merged)

    def deliver(self) -> bool:
        """Advance the delivered edge through a block that now covers it."""
        if self.lo <= self.lrs < self.hi:
            self.lrs = self.hi
            return True
        for lo, hi in self.blocks:
            if lo <= self.lrs < hi:
                self.lrs = hi
                return True
        return False

    def data_size(self) -> int:
        size = self.hi - self.lo
        if self.blocks:
            size += sum(hi - lo for lo, hi in self.blocks)
        return size

    def undelivered_bytes(self) -> int:
        if self.hi == self.lo:
            return 0
        return _u64(self.hi - self.lrs)  # unsigned, as in Zeek


class _Endpoint:
    """One side of the connection: Zeek's ``TCP_Endpoint`` plus its packet counters."""

    __slots__ = (
        "ack_seq",
        "ack_wraps",
        "did_close",
        "fin_cnt",
        "fin_seq",
        "gap_cnt",
        "gap_thresh",
        "hist_last_fin",
        "hist_last_rst",
        "hist_last_syn",
        "ip_bytes",
        "is_first",
        "is_orig",
        "last_seq",
        "pkts",
        "prev_state",
        "reasm",
        "rst_cnt",
        "rxmt_cnt",
        "rxmt_thresh",
        "seq_wraps",
        "start_seq",
        "state",
        "win0_cnt",
        "win0_thresh",
    )

    def __init__(self, is_orig: bool, is_first: bool) -> None:
        self.is_orig = is_orig
        self.is_first = is_first  # sent the connection's first packet
        self.state = _INACTIVE
        self.prev_state = _INACTIVE
        self.start_seq = 0
        self.last_seq = 0
        self.ack_seq = 0
        self.seq_wraps = 0
        self.ack_wraps = 0
        self.fin_cnt = 0
        self.rst_cnt = 0
        self.fin_seq = 0
        self.did_close = False
        self.hist_last_syn = 0
        self.hist_last_fin = 0
        self.hist_last_rst = 0
        self.rxmt_cnt = self.win0_cnt = self.gap_cnt = 0
        self.rxmt_thresh = self.win0_thresh = self.gap_thresh = 1
        self.pkts = 0
        self.ip_bytes = 0
        self.reasm = _Reassembler()

    def full_last(self) -> int:
        return (self.seq_wraps << 32) + self.last_seq

    def full_ack(self) -> int:
        return (self.ack_wraps << 32) + self.ack_seq

    def init_seqs(self, start: int, last: int) -> None:
        self.start_seq = start & _M32
        self.ack_seq = start & _M32
        self.last_seq = last & _M32

    def update_last_seq(self, seq: int) -> None:
        if seq < self.last_seq:
            self.seq_wraps += 1
        self.last_seq = seq

    def update_ack_seq(self, seq: int) -> None:
        if seq < self.ack_seq:
            self.ack_wraps += 1
        self.ack_seq = seq

    def no_data_acked(self) -> bool:
        ack = self.full_ack()
        return ack in (self.start_seq, self.start_seq + 1)

    def size(self, peer: _Endpoint) -> int:
        """Payload bytes from sequence numbers (``TCP_Endpoint::Size``)."""
        if (
            self.prev_state is _SYN_SENT
            and self.state is _RESET
            and peer.state is _INACTIVE
            and not self.no_data_acked()
        ):
            return 0
        last, ack = self.full_last(), self.full_ack()
        size = _u64((last if last > ack else ack) - self.start_seq)
        if size:
            size -= 1  # the SYN octet
        if self.fin_cnt > 0 and size:
            size -= 1  # the FIN octet
        return size

    def relative(self, cur: int, last: int, wraps: int) -> tuple[int, bool]:
        """Zeek's ``get_relative_seq``: 64-bit sequence relative to start, and underflow."""
        # seq_diff(cur, last) and seq_diff(cur, start) inlined: this runs for most packets.
        d = (cur - last) & _M32
        if d >= _HALF:  # cur before last
            if wraps and cur > last:
                wraps -= 1
        elif d and cur < last:
            wraps += 1
        if wraps == 0:
            d = (cur - self.start_seq) & _M32
            return (d, False) if d < _HALF else (_u64(d - _MOD), True)
        return _u64((wraps << 32) + cur - self.start_seq), False


class ZeekConn:
    """One Zeek connection record, fed every packet of it in capture order.

    ``add(seg, from_first)``: ``from_first`` says the packet was sent by the
    endpoint that sent this connection's first packet. Before feeding a packet
    of an existing 4-tuple, ask :func:`zeek_starts_new_conn` whether Zeek
    would log it under a new connection instead (``add_unless_new`` does both).
    """

    __slots__ = (
        "_cfg",
        "_close_deferred",
        "_deferred_gen_event",
        "_first_packet_seen",
        "_hist_seen",
        "_history",
        "_inactivity_ns",
        "_is_active",
        "_is_partial",
        "_last_ns",
        "_missed_bytes",
        "_next_due",
        "_orig",
        "_removed_at",
        "_resp",
        "_start_ns",
        "_synack_flip_pending",
        "_timers",
    )

    def __init__(self, config: ZeekConfig | None = None) -> None:
        self._cfg = config or _DEFAULT_CONFIG
        first = _Endpoint(is_orig=True, is_first=True)
        other = _Endpoint(is_orig=False, is_first=False)
        self._orig = first
        self._resp = other
        self._hist_seen = 0
        self._history: list[str] = []
        self._is_partial = False
        self._first_packet_seen = 0  # bit 1: orig, bit 2: resp (TCPSessionAdapter)
        self._is_active = True
        self._close_deferred = False
        self._deferred_gen_event = False
        self._synack_flip_pending = False
        self._missed_bytes = 0
        self._start_ns: int | None = None
        self._last_ns = 0  # Zeek's Connection last_time
        self._inactivity_ns = self._cfg.udp_inactivity_timeout_ns
        # Analyzer timers: (due_ns, kind). Kinds: attempt, expire, reset, delete.
        self._timers: list[tuple[int, str]] = []
        self._next_due = _NEVER  # the earliest due time in _timers
        self._removed_at: int | None = None

    # ------------------------------------------------------------------ API

    @property
    def orig_is_first(self) -> bool:
        """True when Zeek's originator is the endpoint that sent the first packet."""
        return self._orig.is_first

    @property
    def orig_state(self) -> EndpointState:
        return self._orig.state

    @property
    def resp_state(self) -> EndpointState:
        return self._resp.state

    @property
    def orig_prev_state(self) -> EndpointState:
        return self._orig.prev_state

    @property
    def resp_prev_state(self) -> EndpointState:
        return self._resp.prev_state

    @property
    def start_ns(self) -> int | None:
        return self._start_ns

    @property
    def duration_ns(self) -> int:
        """Zeek's duration: last activity (not counting packets after both closed) - start."""
        return 0 if self._start_ns is None else self._last_ns - self._start_ns

    @property
    def orig_pkts(self) -> int:
        return self._orig.pkts

    @property
    def resp_pkts(self) -> int:
        return self._resp.pkts

    @property
    def orig_ip_bytes(self) -> int:
        return self._orig.ip_bytes

    @property
    def resp_ip_bytes(self) -> int:
        return self._resp.ip_bytes

    @property
    def orig_bytes(self) -> int | None:
        """Originator payload size from sequence numbers; None where Zeek logs '-'."""
        return self._orig.size(self._resp) if self.duration_ns > 0 else None

    @property
    def resp_bytes(self) -> int | None:
        """Responder payload size from sequence numbers; None where Zeek logs '-'."""
        return self._resp.size(self._orig) if self.duration_ns > 0 else None

    @property
    def missed_bytes(self) -> int:
        """Bytes in content gaps reported while the connection was cleanly established."""
        return self._missed_bytes

    def history(self) -> str:
        """Zeek's history string ('' where conn.log shows '-')."""
        return "".join(self._history)

    def conn_state(self) -> str:
        """main.zeek's ``conn_state`` for TCP."""
        os_, rs = self._orig.state, self._resp.state
        o_inactive = os_ in (_INACTIVE, _PARTIAL)
        r_inactive = rs in (_INACTIVE, _PARTIAL)
        if rs is _RESET:
            if os_ in (_SYN_SENT, _SYN_ACK_SENT) or (
                os_ is _RESET
                and self._orig.size(self._resp) == 0
                and self._resp.size(self._orig) == 0
            ):
                return "REJ"
            return "RSTRH" if o_inactive else "RSTR"
        if os_ is _RESET:
            if r_inactive:
                return "RSTOS0" if _RSTOS0.fullmatch(self.history()) else "OTH"
            return "RSTO"
        if rs is _CLOSED and os_ is _CLOSED:
            return "SF"
        if os_ is _CLOSED:
            return "SH" if r_inactive else "S2"
        if rs is _CLOSED:
            return "SHR" if o_inactive else "S3"
        if os_ is _SYN_SENT and rs is _INACTIVE:
            return "S0"
        if os_ is _ESTABLISHED and rs is _ESTABLISHED:
            return "S1"
        return "OTH"

    def removed_by(self, now_ns: int) -> bool:
        """Whether one of Zeek's timers removed this connection at or before ``now_ns``."""
        if self._start_ns is None:
            return False
        if self._removed_at is not None:
            return True
        if self._nothing_due(now_ns):
            return False  # _run_timers would not change a thing
        saved = (list(self._timers), self._is_active, self._next_due)
        removed = self._run_timers(now_ns)
        self._timers, self._is_active, self._next_due = saved
        self._removed_at = None
        return removed

    def is_reuse(self, seg: Segment, from_first: bool) -> bool:
        """Zeek's ``IsReuse``: does this SYN (or SYN-ACK) start a new connection?"""
        if self._start_ns is None or not seg.flags & _SYN:
            return False
        conn_orig = self._orig
        if seg.flags & _ACK:
            if self._orig.state is not _INACTIVE:
                return False  # not a half connection
            conn_orig = self._resp
        if not (self._orig.did_close or self._resp.did_close):
            if seg.seq == conn_orig.start_seq:
                return False
            return not (
                not seg.flags & _ACK
                and conn_orig.state is _SYN_ACK_SENT
                and self._resp.state is _INACTIVE
                and seg.seq == self._resp.start_seq
            )  # else a SYN/SYN-ACK reversal, handled as a flip
        return True

    def add_unless_new(self, seg: Segment, from_first: bool) -> bool:
        """``add(seg, from_first)``, unless Zeek would log ``seg`` under a new connection.

        Then (:func:`zeek_starts_new_conn`) nothing changes and the answer is
        False. The two steps in one: the timers' due times are looked at once.
        """
        t = seg.ts_ns
        if self._start_ns is not None and self._removed_at is None and self._nothing_due(t):
            # Only a reuse (a SYN) can start a new connection.
            if seg.flags & _SYN:
                if self.is_reuse(seg, from_first):
                    return False
            elif self._fast(seg, from_first):
                return True
            self._process(seg, from_first)
            return True
        if self._start_ns is not None and zeek_starts_new_conn(self, seg, from_first):
            return False
        self.add(seg, from_first)
        return True

    def add(self, seg: Segment, from_first: bool) -> None:
        """Process one packet of this connection (Zeek's ``TCPSessionAdapter::Process``)."""
        t = seg.ts_ns
        if self._start_ns is None:
            self._create(seg)
        elif not self._nothing_due(t):
            self._run_timers(t)
        elif self._fast(seg, from_first):
            return
        self._process(seg, from_first)

    def _fast(self, seg: Segment, from_first: bool) -> bool:
        """``_process`` for the common segment, or False (nothing changed) if it is not one.

        The common segment: ACK set, no SYN/FIN/RST, nonzero window, starting
        exactly at its sender's last sequence number (not a retransmission, no
        hole before it), both endpoints ESTABLISHED or PARTIAL without a FIN,
        the sender's first packet already seen, no SYN-ACK flip pending, and an
        ack that does not reach past the data the peer's reassembler has seen
        (no gap). For such a segment ``_process`` moves no state and arms no
        timer, and its EOF checks are moot (no FIN, no CLOSED/RESET endpoint);
        what is left is done here in the same order, inlined, calling the full
        methods for anything beyond growing the last reassembly block, trimming
        delivered data and the skip check (the initial-window trim, a block out
        of order).
        """
        f = seg.flags
        if f & _SYN_FIN_RST or not f & _ACK or not seg.window or self._synack_flip_pending:
            return False
        o = self._orig
        if from_first == o.is_first:
            ep, peer, bit = o, self._resp, 1
        else:
            ep, peer, bit = self._resp, o, 2
        seq = seg.seq
        length = seg.payload_len
        st, pst = ep.state, peer.state
        if (
            seq != ep.last_seq
            or not (st is _ESTABLISHED or st is _PARTIAL)
            or not (pst is _ESTABLISHED or pst is _PARTIAL)
            or ep.fin_cnt
            or peer.fin_cnt
            or not self._first_packet_seen & bit
            or length >= _HALF
        ):
            return False

        # The ack relative to the peer's start (_Endpoint.relative against its ack_seq).
        ack_seq = seg.ack
        pa = peer.ack_seq
        delta_ack = (ack_seq - pa) & _M32
        if delta_ack >= _HALF:
            delta_ack -= _MOD
        wraps = peer.ack_wraps
        if delta_ack < 0:
            if wraps and ack_seq > pa:
                wraps -= 1
        elif delta_ack > 0 and ack_seq < pa:
            wraps += 1
        ack_ok = True
        if wraps == 0:
            rel_ack = (ack_seq - peer.start_seq) & _M32
            if rel_ack >= _HALF:
                rel_ack, ack_ok = 0, False  # underflow: no ack bookkeeping
        else:
            rel_ack = _u64((wraps << 32) + ack_seq - peer.start_seq)
        r = peer.reasm
        if rel_ack > r.trim and rel_ack > r.lrs:
            return False  # acks data never seen: gaps are for the full path

        # Nothing above changed a thing; from here on this is the packet's processing.
        # _update_history: D or A, once per direction.
        if length:
            mask = _HIST_DATA if bit == 1 else _HIST_DATA << 16
            if not self._hist_seen & mask:
                self._hist_seen |= mask
                self._history.append("D" if bit == 1 else "d")
        else:
            mask = _HIST_ACK if bit == 1 else _HIST_ACK << 16
            if not self._hist_seen & mask:
                self._hist_seen |= mask
                self._history.append("A" if bit == 1 else "a")
        if not (o.did_close and self._resp.did_close):
            self._last_ns = seg.ts_ns
        if ack_ok and delta_ack > 0 and not (ack_seq == 0 and delta_ack > _TOO_LARGE_SEQ_DELTA):
            if ack_seq < pa:
                peer.ack_wraps += 1
            peer.ack_seq = ack_seq

        rel_seq = 0
        underflow = False
        if length:
            # The relative sequence number (_Endpoint.relative with cur == last).
            seq_wraps = ep.seq_wraps
            if seq_wraps == 0:
                rel_seq = (seq - ep.start_seq) & _M32
                underflow = rel_seq >= _HALF
            else:
                rel_seq = _u64((seq_wraps << 32) + seq - ep.start_seq)
            # _update_last_seq: new data always advances (0 < length < 2**31).
            one_past = (seq + length) & _M32
            if one_past < seq:
                ep.seq_wraps = seq_wraps + 1
            ep.last_seq = one_past

        # _ack_received(peer, rel_ack): no FIN from the peer to clamp to, nothing
        # acked beyond the delivered edge (so no gap), the peer's EOF check is moot.
        if rel_ack > r.trim:
            if r.hi != r.lo:
                r.drop_through(rel_ack)
                if r.hi != r.lo and r.first_lo() == r.lrs:
                    self._block_inserted(peer)
            r.trim = rel_ack

        # _data_sent(ep, rel_seq, length)
        if length and not underflow and not seg.caplen_short:
            r = ep.reasm
            if not r.skip:
                start = ep.start_seq
                acked = (ep.ack_wraps << 32) + ep.ack_seq
                no_data_acked = acked == start or acked == start + 1
                hi = rel_seq + length
                trim = r.trim
                if hi > trim:
                    lo = rel_seq if rel_seq > trim else trim
                    if r.hi == r.lo:
                        r.lo, r.hi = lo, hi  # the only block
                    elif r.hi < lo:
                        r.blocks.append((r.lo, r.hi))  # beyond every block
                        r.lo, r.hi = lo, hi
                    elif r.lo <= lo:
                        if hi > r.hi:  # starts inside or right after the last block
                            r.hi = hi
                    else:
                        r.insert(lo, hi)
                    # _block_inserted(ep)
                    if r.lo <= r.lrs < r.hi:
                        r.lrs = r.hi  # what deliver() finds
                        if no_data_acked:
                            self._initial_window_trim(ep, peer)
                    else:
                        self._block_inserted(ep)
                # _check_skip(ep)
                cfg = self._cfg
                limit = cfg.tcp_max_above_hole_without_any_acks
                excessive = cfg.tcp_excessive_data_without_further_acks
                if (no_data_acked and limit and r.undelivered_bytes() > limit) or (
                    excessive and (r.hi - r.lo if not r.blocks else r.data_size()) > excessive
                ):
                    r.clear()
                    r.skip = True
        ep.pkts += 1
        ep.ip_bytes += seg.ip_len
        return True

    # ------------------------------------------------------------- creation

    def _create(self, seg: Segment) -> None:
        self._start_ns = self._last_ns = seg.ts_ns
        self._add_timer(seg.ts_ns + self._cfg.tcp_syn_timeout_ns, "expire")
        syn, ack = bool(seg.flags & _SYN), bool(seg.flags & _ACK)
        if syn and not ack:
            return
        # A partial connection (no SYN, or a SYN-ACK): guess the server by port.
        likely = self._cfg.likely_server_ports
        flip = False
        if seg.sport in likely:
            flip = (not syn and seg.sport < seg.dport) if seg.dport in likely else True
        if flip and seg.dst != b"\xff\xff\xff\xff":
            self._flip()
        elif syn:
            self._synack_flip_pending = True

    # ----------------------------------------------------------- processing

    def _process(self, seg: Segment, from_first: bool) -> None:
        f = seg.flags
        syn, fin, rst, ack = f & _SYN != 0, f & _FIN != 0, f & _RST != 0, f & _ACK != 0
        length = seg.payload_len
        if self._synack_flip_pending and not syn:
            self._synack_flip_pending = False
            if (
                not fin
                and not rst
                and (ack or length > 0)
                and self._orig.state is _SYN_ACK_SENT
                and self._resp.state is _INACTIVE
            ):
                # zeek/zeek#2191: a SYN-ACK followed by an ACK or data was the
                # responder's; redo the creation-time flip.
                self._flip()
                self._set_state(self._resp, _ESTABLISHED)

        is_orig = from_first == self._orig.is_first
        endpoint = self._orig if is_orig else self._resp
        peer = self._resp if is_orig else self._orig
        t = seg.ts_ns

        if not self._first_packet_seen & (1 if is_orig else 2):
            self._set_partial_status(syn, ack, is_orig)  # a no-op once the side was seen
        seg_len = length + syn + fin - (length if rst else 0)
        base_seq, ack_seq = seg.seq, seg.ack
        one_past = (base_seq + seg_len) & _M32
        if syn or endpoint.state is _INACTIVE:
            self._init_endpoint(endpoint, syn, base_seq, one_past)  # a no-op otherwise
        rel_seq, underflow = endpoint.relative(base_seq, endpoint.last_seq, endpoint.seq_wraps)
        self._update_history(endpoint, syn, fin, rst, ack, rel_seq, length)
        if (
            seg.window == 0
            and not rst
            and peer.state is not _CLOSED
            and endpoint.state is not _RESET
        ):
            self._scaled(endpoint, "W")
        if not (self._orig.did_close and self._resp.did_close):
            self._last_ns = t
        if fin:
            endpoint.fin_cnt += 1
            endpoint.fin_seq = _u64(rel_seq + seg_len)
        if rst:
            endpoint.rst_cnt += 1

        rel_ack = 0
        if ack:
            if peer.state is _INACTIVE:
                rel_ack = 1
                peer.init_seqs(ack_seq - 1, ack_seq - 1)
            else:
                rel_ack, ack_underflow = peer.relative(ack_seq, peer.ack_seq, peer.ack_wraps)
                if ack_underflow:
                    rel_ack = 0
                elif not rst:
                    delta_ack = seq_diff(ack_seq, peer.ack_seq)
                    if not (ack_seq == 0 and delta_ack > _TOO_LARGE_SEQ_DELTA) and delta_ack > 0:
                        peer.update_ack_seq(ack_seq)

        self._update_last_seq(endpoint, one_past, syn, fin, rst, length)
        do_close, gen_event = self._state_machine(
            t, endpoint, peer, base_seq, length, is_orig, syn, fin, rst, ack
        )
        if ack and rel_ack > peer.reasm.trim:  # _ack_received does nothing otherwise
            self._ack_received(peer, rel_ack)
        # CheckPIA_FirstPacket uses the is_orig computed before any flip above.
        self._first_packet_seen |= 1 if is_orig else 2
        rel_data_seq = _u64(rel_seq + 1) if syn else rel_seq
        if length > 0 and not rst and not underflow and not seg.caplen_short:
            self._data_sent(endpoint, rel_data_seq, length)
        self._check_eof(endpoint)
        if do_close:
            self._connection_closed(endpoint, peer, gen_event)
        endpoint.pkts += 1
        endpoint.ip_bytes += seg.ip_len

    def _set_partial_status(self, syn: bool, ack: bool, is_orig: bool) -> None:
        if is_orig:
            if not self._first_packet_seen & 1:
                self._is_partial = not syn or ack
        elif not self._first_packet_seen & 2 and not self._is_partial:
            self._is_partial = not syn

    def _init_endpoint(self, ep: _Endpoint, syn: bool, first_seq: int, last_seq: int) -> None:
        st = ep.state
        if st is _INACTIVE:
            if syn:
                ep.init_seqs(first_seq, last_seq)
            else:
                # Partial: number as though a SYN was seen, but don't call the
                # first packet a duplicate.
                ep.init_seqs(first_seq - 1, first_seq)
        elif st in (_SYN_SENT, _SYN_ACK_SENT):
            if syn and first_seq != ep.start_seq:
                ep.init_seqs(first_seq, last_seq)  # SYN_seq_jump
        elif st in (_ESTABLISHED, _PARTIAL):
            if syn:
                ep.init_seqs(first_seq, last_seq)  # SYN inside the connection
        elif st is _RESET and syn and ep.prev_state is _INACTIVE:
            ep.init_seqs(first_seq, last_seq)  # the earlier RST was likely injected

    def _update_last_seq(
        self, ep: _Endpoint, last: int, syn: bool, fin: bool, rst: bool, length: int
    ) -> None:
        delta = seq_diff(last, ep.last_seq)
        if (syn or rst) and not -_TOO_LARGE_SEQ_DELTA <= delta <= _TOO_LARGE_SEQ_DELTA:
            pass
        elif fin and ep.last_seq == (ep.start_seq + 1) & _M32:
            ep.update_last_seq(last)
        elif ep.state is _RESET:
            pass
        elif delta > 0:
            ep.update_last_seq(last)
        elif length > 0:
            self._scaled(ep, "T")  # retransmitted payload

    # -------------------------------------------------------------- history

    def _check_history(self, ep: _Endpoint, mask: int, code: str) -> bool:
        """Record ``code`` once per direction; True when it had been seen already."""
        if not ep.is_orig:
            mask <<= 16
            code = code.lower()
        if self._hist_seen & mask:
            return True
        self._hist_seen |= mask
        self._history.append(code)
        return False

    def _add_history(self, ep: _Endpoint, code: str) -> None:
        self._history.append(code if ep.is_orig else code.lower())

    def _update_history(
        self,
        ep: _Endpoint,
        syn: bool,
        fin: bool,
        rst: bool,
        ack: bool,
        rel_seq: int,
        length: int,
    ) -> None:
        bits = syn + fin + rst
        if bits > 1:
            if fin and rst:
                self._check_history(ep, _HIST_FIN_RST, "I")
            else:
                self._check_history(ep, _HIST_MULTI_FLAG, "Q")
        elif bits == 1:
            if syn:
                code = "H" if ack else "S"
                if self._check_history(ep, _HIST_SYN, code) and rel_seq != ep.hist_last_syn:
                    self._add_history(ep, code)
                ep.hist_last_syn = rel_seq
            if fin:
                end = _u64(rel_seq + length)  # a FIN's number follows its data
                if self._check_history(ep, _HIST_FIN, "F") and end != ep.hist_last_fin:
                    self._add_history(ep, "F")
                ep.hist_last_fin = end
            if rst:
                if self._check_history(ep, _HIST_RST, "R") and rel_seq != ep.hist_last_rst:
                    self._add_history(ep, "R")
                ep.hist_last_rst = rel_seq
        elif length:
            self._check_history(ep, _HIST_DATA, "D")
        elif ack:
            self._check_history(ep, _HIST_ACK, "A")

    def _scaled(self, ep: _Endpoint, code: str) -> None:
        """Zeek's ``ScaledHistoryEntry``: record at the 1st, 10th, 100th ... event."""
        letter = code if ep.is_orig else code.lower()
        if code == "T":
            ep.rxmt_cnt += 1
            if ep.rxmt_cnt == ep.rxmt_thresh:
                self._history.append(letter)
                ep.rxmt_thresh *= 10
        elif code == "W":
            ep.win0_cnt += 1
            if ep.win0_cnt == ep.win0_thresh:
                self._history.append(letter)
                ep.win0_thresh *= 10
        else:
            ep.gap_cnt += 1
            if ep.gap_cnt == ep.gap_thresh:
                self._history.append(letter)
                ep.gap_thresh *= 10

    def _flip(self) -> None:
        """Swap originator and responder (``Connection::FlipRoles``)."""
        self._orig, self._resp = self._resp, self._orig
        self._orig.is_orig, self._resp.is_orig = True, False
        fps = self._first_packet_seen
        self._first_packet_seen = (2 if fps & 1 else 0) | (1 if fps & 2 else 0)
        self._is_partial = False
        self._hist_seen = ((self._hist_seen & 0xFFFF) << 16) | (self._hist_seen >> 16)
        self._history = ["^", *(c.swapcase() for c in self._history)]

    # -------------------------------------------------------- state machine

    def _set_state(self, ep: _Endpoint, new: EndpointState) -> None:
        if new is ep.state:
            return
        peer = self._resp if ep is self._orig else self._orig
        if new not in _HANDSHAKE and ep.state in _HANDSHAKE and peer.state in _HANDSHAKE:
            self._inactivity_ns = self._cfg.tcp_inactivity_timeout_ns
        ep.prev_state, ep.state = ep.state, new

    def _state_machine(
        self,
        t: int,
        ep: _Endpoint,
        peer: _Endpoint,
        base_seq: int,
        length: int,
        is_orig: bool,
        syn: bool,
        fin: bool,
        rst: bool,
        ack: bool,
    ) -> tuple[bool, bool]:
        st = ep.state
        if st is _INACTIVE:
            return self._inactive(t, ep, peer, base_seq, length, is_orig, syn, fin, rst, ack)
        if st in (_SYN_SENT, _SYN_ACK_SENT):
            do_close = gen_event = False
            if fin:
                self._set_state(ep, _CLOSED)
                do_close = gen_event = True
            if rst:
                self._set_state(ep, _RESET)
                self._is_active = False  # ConnectionReset
                do_close = True
            return do_close, gen_event
        if st in (_ESTABLISHED, _PARTIAL):
            do_close = gen_event = False
            if syn and st is _PARTIAL and peer.state is _INACTIVE and not ack:
                self._set_state(ep, _SYN_SENT)  # SYN_after_partial
            if fin and not rst:
                self._set_state(ep, _CLOSED)
                if peer.state is _RESET and peer.prev_state is _CLOSED:
                    # The peer's FIN then RST was a normal termination after all.
                    self._set_state(peer, _CLOSED)
                do_close = gen_event = True
            if rst:
                self._set_state(ep, _RESET)
                do_close = True
                if not (peer.state is _RESET and peer.prev_state is _ESTABLISHED):
                    self._is_active = False
            return do_close, gen_event
        if st is _CLOSED:
            do_close = False
            if rst and peer.state is not _CLOSED:
                self._set_state(ep, _RESET)
                if not ep.did_close:
                    do_close = True  # RST after FIN
                self._add_timer(t + self._cfg.tcp_reset_delay_ns, "reset")
            return do_close, False
        return False, False  # RESET: nothing moves it

    def _inactive(
        self,
        t: int,
        ep: _Endpoint,
        peer: _Endpoint,
        base_seq: int,
        length: int,
        is_orig: bool,
        syn: bool,
        fin: bool,
        rst: bool,
        ack: bool,
    ) -> tuple[bool, bool]:
        do_close = gen_event = False
        if syn:
            if is_orig:
                self._set_state(ep, _SYN_ACK_SENT if ack else _SYN_SENT)
                self._add_timer(t + self._cfg.tcp_attempt_delay_ns, "attempt")
            else:
                if not ack and peer.state is _SYN_ACK_SENT and base_seq == ep.start_seq:
                    # SYN/SYN-ACK reversal: flip and establish.
                    self._flip()
                    self._set_state(peer, _ESTABLISHED)
                if peer.state is _SYN_SENT:
                    self._set_state(peer, _ESTABLISHED)
                self._set_state(ep, _ESTABLISHED)
        if fin:
            self._set_state(ep, _CLOSED)
            do_close = gen_event = True
        if rst:
            self._set_state(ep, _RESET)
            if is_orig:
                is_reject = peer.state is _ESTABLISHED
            else:
                is_reject = peer.state in (_SYN_SENT, _SYN_ACK_SENT)
            do_close = True
            gen_event = not is_reject
        if ep.state is _INACTIVE:  # no control flag moved it
            if not is_orig and length == 0 and self._orig.state is _SYN_SENT:
                pass  # an eccentric TCP acking the SYN before its SYN-ACK
            elif ack and peer.state is _ESTABLISHED:
                # SYN-ACK seen from the responder, SYN missed: established.
                self._set_state(ep, _ESTABLISHED)
                self._is_partial = False
                self._first_packet_seen |= 1 if is_orig else 2
            else:
                self._set_state(ep, _PARTIAL)
        return do_close, gen_event

    # ---------------------------------------------------------- reassembly

    def _is_clean(self, ep: _Endpoint) -> bool:
        return ep.state is _ESTABLISHED or (ep.state is _CLOSED and ep.prev_state is _ESTABLISHED)

    def _gap(self, ep: _Endpoint, size: int) -> None:
        peer = self._resp if ep is self._orig else self._orig
        if self._is_clean(ep) and self._is_clean(peer):
            self._scaled(ep, "G")
            self._missed_bytes += size

    def _block_inserted(self, ep: _Endpoint) -> None:
        if ep.reasm.deliver() and ep.no_data_acked():
            self._initial_window_trim(ep, self._resp if ep is self._orig else self._orig)

    def _initial_window_trim(self, ep: _Endpoint, peer: _Endpoint) -> None:
        """Data delivered while nothing is acked: trim beyond the initial window."""
        limit = self._cfg.tcp_max_initial_window
        if limit and ep.size(peer) > limit:
            self._trim(ep, ep.reasm.lrs)

    def _data_sent(self, ep: _Endpoint, seq: int, length: int) -> None:
        r = ep.reasm
        if r.skip:
            return
        lo, hi = seq, seq + length
        if hi > r.trim:
            r.insert(max(lo, r.trim), hi)
            self._block_inserted(ep)
        self._check_skip(ep)

    def _check_skip(self, ep: _Endpoint) -> None:
        """Stop reassembling when too much is buffered (Zeek's skip_deliveries)."""
        r = ep.reasm
        cfg = self._cfg
        if (
            ep.no_data_acked()
            and cfg.tcp_max_above_hole_without_any_acks
            and r.undelivered_bytes() > cfg.tcp_max_above_hole_without_any_acks
        ) or (
            cfg.tcp_excessive_data_without_further_acks
            and r.data_size() > cfg.tcp_excessive_data_without_further_acks
        ):
            r.clear()
            r.skip = True

    def _undelivered(self, ep: _Endpoint, up_to: int) -> None:
        r = ep.reasm
        if up_to <= 2 and self._is_partial:
            return  # the faked-up ISN of a partial connection
        if not r.skip:
            while True:
                nxt = next((b for b in r.ranges() if r.lrs <= b[0] < up_to), None)
                if nxt is None:
                    break
                self._gap(ep, nxt[0] - r.lrs)
                r.lrs = nxt[0]
                self._block_inserted(ep)
            if up_to > r.lrs:
                self._gap(ep, up_to - r.lrs)
        r.lrs = max(r.lrs, up_to)

    def _trim(self, ep: _Endpoint, seq: int) -> None:
        r = ep.reasm
        if seq > r.lrs:
            self._undelivered(ep, seq)
        r.drop_through(seq)
        if r.hi != r.lo and r.first_lo() == r.lrs:
            self._block_inserted(ep)
        r.trim = seq

    def _ack_received(self, ep: _Endpoint, seq: int) -> None:
        """The peer acked ``seq`` (relative) of ``ep``'s data."""
        if ep.fin_cnt > 0 and seq >= ep.fin_seq:
            seq = ep.fin_seq - 1
        if seq <= ep.reasm.trim:
            return
        self._trim(ep, seq)
        self._check_eof(ep)

    def _data_pending(self, ep: _Endpoint) -> bool:
        r = ep.reasm
        if r.skip:
            return False
        delivered = ep.start_seq + r.lrs
        last = ep.full_last()
        if last < delivered:
            return False
        if delivered not in (last - 1, last):
            return True
        peer = self._resp if ep is self._orig else self._orig
        return ep.state is not _RESET and peer.reasm.hi != peer.reasm.lo

    def _check_eof(self, ep: _Endpoint) -> None:
        r = ep.reasm
        if (
            not r.did_eof
            and (ep.fin_cnt > 0 or ep.state in (_CLOSED, _RESET))
            and not self._data_pending(ep)
        ):
            r.did_eof = True
            if self._close_deferred:
                peer = self._resp if ep is self._orig else self._orig
                self._connection_closed(ep, peer, self._deferred_gen_event)
                self._close_deferred = False

    def _connection_closed(self, ep: _Endpoint, peer: _Endpoint, gen_event: bool) -> None:
        if self._data_pending(ep):
            self._close_deferred = True
            if not self._deferred_gen_event:
                self._deferred_gen_event = gen_event
            return
        self._close_deferred = False
        if ep.did_close:
            return
        ep.did_close = True
        complete = ep.state is _RESET or peer.did_close or peer.state is _INACTIVE
        if complete:
            if ep.prev_state is not _INACTIVE or peer.state is not (_INACTIVE):
                if self._deferred_gen_event:
                    gen_event = True
                    self._deferred_gen_event = False
                if gen_event:
                    self._is_active = False  # ConnectionFinished
            self._timers = []
            self._next_due = _NEVER
            self._add_timer(self._last_ns + self._cfg.tcp_close_delay_ns, "delete")
        elif ep.prev_state is not _INACTIVE:
            self._add_timer(self._last_ns + self._cfg.tcp_session_timer_ns, "expire")

    # --------------------------------------------------------------- timers

    def _add_timer(self, due_ns: int, kind: str) -> None:
        self._timers.append((due_ns, kind))
        if due_ns < self._next_due:
            self._next_due = due_ns

    def _nothing_due(self, now: int) -> bool:
        """With the fast path on: no timer, and not the inactivity timeout, due at ``now``
        (the shortcut every look at the timers takes; see the module docstring)."""
        return FAST_PATH.on and now < self._next_due and now < self._last_ns + self._inactivity_ns

    def _run_timers(self, now: int) -> bool:
        """Fire the timers due at ``now`` as Zeek would before the packet; True if removed."""
        if self._removed_at is not None:
            return True
        if self._nothing_due(now):
            return False  # the common case: skip the sort and rebuild
        due = sorted(x for x in self._timers if x[0] <= now)
        self._timers = [x for x in self._timers if x[0] > now]
        cfg = self._cfg
        o, r = self._orig, self._resp
        removed = False
        for _, kind in due:
            if kind == "delete":
                removed = True
            elif kind == "attempt":
                if (
                    self._is_active
                    and o.state in (_SYN_SENT, _SYN_ACK_SENT)
                    and r.state is _INACTIVE
                ):
                    self._is_active = False
                    removed = True
            elif kind == "reset":
                if self._is_active:
                    self._is_active = False
                    removed = True
            elif kind == "expire" and self._is_active:
                if self._last_ns + cfg.tcp_connection_linger_ns < now:
                    if (o.did_close or r.did_close) and (
                        (o.did_close and r.did_close)
                        or _RESET in (o.state, r.state)
                        or _INACTIVE in (o.state, r.state)
                    ):
                        self._is_active = False
                        removed = True
                    elif o.state is _INACTIVE and r.state is _INACTIVE:
                        removed = True
                if not removed:
                    self._timers.append((now + cfg.tcp_session_timer_ns, "expire"))
            if removed:
                break
        self._next_due = min((x[0] for x in self._timers), default=_NEVER)
        if not removed and self._last_ns + self._inactivity_ns <= now:
            removed = True
        if removed:
            self._removed_at = now
        return removed


def zeek_starts_new_conn(zc: ZeekConn, seg: Segment, from_first: bool) -> bool:
    """Would Zeek log ``seg`` under a new connection instead of ``zc``?

    True when one of Zeek's timers removed ``zc`` at or before ``seg.ts_ns``
    (close/reset delay, attempt timeout, expiry, inactivity) or when ``seg``
    is a reuse of the 4-tuple (``IsReuse``). ``from_first`` is relative to
    ``zc``'s first packet. See the module docstring for the exact rules.
    """
    t = seg.ts_ns
    if not seg.flags & _SYN and zc._removed_at is None and zc._nothing_due(t):
        return False  # removed_by and is_reuse (it needs a SYN) would both say no
    return zc.removed_by(t) or zc.is_reuse(seg, from_first)


def replay(
    segments: Iterable[tuple[Segment, bool]], config: ZeekConfig | None = None
) -> list[ZeekConn]:
    """Split one 4-tuple's packets into Zeek connections.

    ``segments`` yields each packet with ``from_a``: whether it was sent by the
    4-tuple's first-seen endpoint. Returns the connections in start order.
    """
    conns: list[ZeekConn] = []
    current: ZeekConn | None = None
    first_is_a = True
    for seg, from_a in segments:
        if current is not None and zeek_starts_new_conn(current, seg, from_a == first_is_a):
            current = None
        if current is None:
            current = ZeekConn(config)
            conns.append(current)
            first_is_a = from_a
        current.add(seg, from_a == first_is_a)
    return conns
