"""Teardown findings: pure detectors over a connection's replayed trace.

Read RFC 9293 3.5-3.6 (closing), 3.10.7 (segment arrives), RFC 1122 4.2.2.13
(TIME-WAIT reuse, RST on close with unread data), RFC 1337 (TIME-WAIT
assassination), RFC 5961 (RST acceptability), RFC 6191 (TIME-WAIT reuse with
timestamps) and RFC 7323 5 (PAWS).

Theory of operation
-------------------
The tracker (``tracker.py``) replays each connection and keeps its trace: every
segment with both endpoints' states *after* it, plus the transitions and the
anomalies. A detector here is a pure function of that record (no I/O, no
pandas): ``detect(conn, prev, config, capture_end_ns)`` returns the connection's
findings, ``prev`` being the previous incarnation of the same 4-tuple (for
reuse and stale duplicates) and ``capture_end_ns`` the time of the capture's
last TCP segment (for states still held at the end).

``detect`` is composed of one small function per code family (each called
only when the connection has what it looks at: FIN, RST or SYN segments, a
previous incarnation, anomalies; ``_Trace`` reads the trace once and keeps the
indices and views they share):

* ``_fin_findings``: FIN copies grouped by sequence number per endpoint:
  ``fin_retransmit``, ``fin_moved``, ``lost_final_ack`` (the retransmitted FIN
  is the *last* FIN of the close, so the missing ACK is the final ACK) and
  ``time_wait_reack``.
* ``_rst_findings``: one finding per RST segment, its code being the cause,
  decided from the states just before the RST and what the peer sent before it.
* ``_reuse_findings`` / ``_stale_findings``: a new incarnation, and segments in
  it that belong to the previous one.
* ``_close_findings``: simultaneous close, half-close, long CLOSE_WAIT and
  FIN_WAIT_2, a connection still open when the capture ends.
* ``_syn_findings``: retransmitted and unanswered SYNs.
* ``_anomaly_findings``: the tracker's anomalies, each as a finding with its own
  code. ``fin_moved`` and ``rst_out_of_window`` exist in both vocabularies: such
  a segment is reported once, by the FIN and RST detectors (which know the
  evidence), never twice.

A capture sees each segment at one place, so a finding never claims more than
the frames show: where two causes fit the same frames, the sentence says so.
Every finding names its frame, its evidence frames (what a user opens in
Wireshark: ``frame.number in {...}``) and the RFC text it rests on.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from itertools import pairwise
from typing import Any, Final

from .compact import Trace
from .config import Config
from .segment import Bit, Segment, by_fields
from .seq import seq_add, seq_diff, seq_geq, seq_gt, seq_leq, seq_lt
from .states import Anomaly, Event, State
from .tracker import AnomalyRecord, Connection, Step, TransitionRecord

__all__ = [
    "Code",
    "Finding",
    "TeardownFacts",
    "detect",
    "detect_all",
    "detect_with_teardown",
    "detect_with_teardown_values",
    "seconds_from_parts",
    "state_parts",
    "state_seconds",
    "teardown_facts",
]

_NS: Final = 1_000_000_000

# seconds(): below _EXACT an int is an exact double; from there to _SPLIT_LAST (the
# largest int mypyc holds unboxed, in the year 2116) whole seconds plus the rounded
# fraction round as the exact quotient does.
_EXACT: Final = 1 << 53
_SPLIT_LAST: Final = (1 << 62) - 1


def seconds(ns: int) -> float:
    """``ns / 1_000_000_000``: the same float, exactly rounded as Python rounds it.

    Compiled by mypyc, ``a / b`` of two ints turns each into a double first and
    so rounds twice when one is above 2**53, as a nanosecond timestamp is (about
    1.7e18): the last bit can differ from Python's. Here, below 2**53 the one
    division of exact doubles is rounded once, as Python's is. From 2**53 on, the
    whole seconds ``q`` (at least 2**23) are an exact double and the fraction
    ``f = float(r) / 1e9`` is off the true ``r / 10**9`` by at most 2**-54. The
    halfway points between doubles above 2**23 are multiples of 2**-30, and
    the true quotient, a multiple of 10**-9 = 2**-9 / 5**9, is either one of them
    (then ``f`` is exact: a multiple of 2**-30 under 1) or at least
    ``1 / (5**9 * 2**30) > 2**-54`` from all of them: ``q + f`` rounds to the same
    double. What is left (negative beyond 2**53, or past 2116) takes Python's
    own division.
    """
    if -_EXACT < ns < _EXACT:
        return float(ns) / 1e9
    if 0 < ns <= _SPLIT_LAST:
        return float(ns // _NS) + float(ns % _NS) / 1e9
    exact: float = operator.truediv(ns, _NS)  # (a call: Python's int division, not C's)
    return exact


class Code(StrEnum):
    """Stable finding codes. Public vocabulary: documented in docs/findings.md."""

    FIN_RETRANSMIT = "fin_retransmit"  # a FIN sent again at the same sequence number
    FIN_MOVED = "fin_moved"  # a later FIN from one endpoint at another sequence number
    LOST_FINAL_ACK = "lost_final_ack"  # the last FIN retransmitted: the final ACK did not arrive
    TIME_WAIT_REACK = "time_wait_reack"  # TIME_WAIT side ACKs a retransmitted FIN again
    RST_REFUSED = "rst_refused"  # RST answering a SYN: nothing listens
    RST_ABORT = "rst_abort"  # RST of a live connection (SO_LINGER 0, crash, give-up)
    RST_UNREAD_DATA = "rst_unread_data"  # RST instead of FIN: closed with unread data
    RST_DATA_AFTER_CLOSE = "rst_data_after_close"  # data arrived after that endpoint closed
    RST_NO_STATE = "rst_no_state"  # answer to a segment for a connection the sender forgot
    RST_IN_TIME_WAIT = "rst_in_time_wait"  # RST reaching a TIME_WAIT endpoint (RFC 1337)
    RST_OUT_OF_WINDOW = "rst_out_of_window"  # RST not acceptable (RFC 5961): ignored
    TUPLE_REUSE = "tuple_reuse"  # a new incarnation of a 4-tuple
    STALE_DUPLICATE = "stale_duplicate"  # a segment of incarnation N-1 inside incarnation N
    SIMULTANEOUS_CLOSE = "simultaneous_close"  # both FINs crossed
    HALF_CLOSE = "half_close"  # data kept flowing (and was ACKed) after one side's FIN
    CLOSE_WAIT_LINGER = "close_wait_linger"  # CLOSE_WAIT held longer than the threshold
    FIN_WAIT_2_LINGER = "fin_wait_2_linger"  # FIN_WAIT_2 held longer than the threshold
    SYN_RETRANSMIT = "syn_retransmit"  # a SYN (or SYN-ACK) sent more than once
    SYN_UNANSWERED = "syn_unanswered"  # a SYN that got neither SYN-ACK nor RST
    OPEN_AT_END = "open_at_end"  # the capture ends before the connection did
    # The tracker's anomalies (states.Anomaly), each reported under its own code.
    NO_TRANSITION = "no_transition"
    SEGMENT_AFTER_CLOSE = "segment_after_close"
    SYN_IN_SYNCHRONIZED_STATE = "syn_in_synchronized_state"
    DATA_AFTER_FIN = "data_after_fin"
    BAD_SYNACK = "bad_synack"
    INVALID_FLAGS = "invalid_flags"


# Anomalies reported by another detector (one finding per segment, not two).
_MERGED_ANOMALIES: Final = frozenset(
    {Anomaly.FIN_MOVED, Anomaly.RST_OUT_OF_WINDOW, Anomaly.RST_IGNORED_IN_SYN_SENT}
)

# Anomaly value -> its finding code (a code added to states.Anomaly without one
# here is reported as no_transition, its own name in the sentence).
_ANOMALY_CODE: Final = {c.value: c for c in Code}

_ANOMALY_RFC: dict[Anomaly, str] = {
    Anomaly.NO_TRANSITION: "RFC9293 3.10",
    Anomaly.SEGMENT_AFTER_CLOSE: "RFC9293 3.10.7.1",
    Anomaly.SYN_IN_SYNCHRONIZED_STATE: "RFC9293 3.10.7.4, RFC5961 4",
    Anomaly.DATA_AFTER_FIN: "RFC9293 3.10.4",
    Anomaly.BAD_SYNACK: "RFC9293 3.10.7.3",
    Anomaly.INVALID_FLAGS: "RFC9293 3.1",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One teardown finding: what happened, where (frames), why we think so (rfc, detail).

    ``endpoint`` is "client" or "server" (for RST causes: the RST's sender), or
    "" when the finding concerns the connection. ``weight`` orders examples of
    one code from worst to mildest (seconds lingered, copies sent, ...); it is
    not part of the CSV.
    """

    conn_id: int
    code: Code
    endpoint: str
    frame: int | None
    ts_ns: int
    evidence_frames: tuple[int, ...]
    rfc: str
    detail: str
    weight: float = 0.0

    def __reduce__(self) -> tuple[type[Any], tuple[object, ...]]:
        # Pickled by its fields (worker processes send findings back): the default
        # sets the fields one by one, which a frozen class compiled by mypyc refuses.
        return by_fields(self)


# -- small helpers -------------------------------------------------------------


def _other(role: str) -> str:
    return "server" if role == "client" else "client"


def _role(step: Step) -> str:
    return "client" if step.from_client else "server"


def _dur(ns: int) -> str:
    """A duration as a person reads it: 488 µs, 207 ms, 4.96 s."""
    if abs(ns) < 1_000_000:
        return f"{ns / 1_000:.0f} µs"
    if abs(ns) < _NS:
        return f"{ns / 1_000_000:.0f} ms"
    return f"{seconds(ns):.2f} s"


def _secs(value: float) -> str:
    return f"{value:g} s"


def _frames(frames: Iterable[int | None]) -> tuple[int, ...]:
    return tuple(sorted({f for f in frames if f is not None}))


def _list(frames: Sequence[int]) -> str:
    return ", ".join(str(f) for f in frames)


def _frames_phrase(frames: Sequence[int]) -> str:
    """'frame 6', 'frames 6, 7', or 'frames 6-26 (17 segments)' for a long list."""
    if len(frames) == 1:
        return f"frame {frames[0]}"
    if len(frames) <= 4:
        return f"frames {_list(frames)}"
    return f"frames {frames[0]}-{frames[-1]} ({len(frames)} segments)"


def _some(frames: Sequence[int]) -> tuple[int, ...]:
    """Evidence from a long run of segments: the first three and the last."""
    return tuple(frames) if len(frames) <= 4 else (*frames[:3], frames[-1])


def _capture_duplicate(a: Segment, b: Segment) -> bool:
    """Is ``b`` the same segment as ``a`` captured twice (not a retransmission)?

    A capture taken at two points, or on a bridge and its port, records one
    segment twice within microseconds. A retransmission leaves after a timer
    (RFC 6298: 200 ms minimum on Linux, 10 ms for a tail-loss probe) and, with
    timestamps, carries a newer TSval.
    """
    return (
        0 <= b.ts_ns - a.ts_ns < 1_000_000
        and (a.seq, a.ack, a.flags, a.window, a.payload_len)
        == (b.seq, b.ack, b.flags, b.window, b.payload_len)
        and _tsval(a) == _tsval(b)
    )


def _tsval(seg: Segment) -> int | None:
    return seg.options.ts_val if seg.options is not None else None


def _tsecr(seg: Segment) -> int | None:
    return seg.options.ts_ecr if seg.options is not None else None


def _fl(seg: Segment, flag: int) -> bool:
    return bool(seg.flags & flag)


def _covers(seg: Segment, fin_seq: int) -> bool:
    """Does ``seg`` (not an RST) acknowledge the FIN at ``fin_seq``?"""
    return _fl(seg, Bit.ACK) and not _fl(seg, Bit.RST) and seq_geq(seg.ack, seq_add(fin_seq, 1))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# A transition period: (start ns, end ns, start frame, end frame, leaving event).
_Period = tuple[int, int, int | None, int | None, Event | None]

_FIN_SYN_RST: Final = Bit.FIN | Bit.SYN | Bit.RST
# Final, as every module constant read in a loop: compiled, a Final one is a C
# variable, any other a lookup in the module's dict each time it is read.
_RST: Final = Bit.RST
_ACK: Final = Bit.ACK
_ACK_RST: Final = Bit.ACK | Bit.RST

# The states whose periods the detectors and the teardown columns measure (as
# module constants too: an enum member read off its class costs a lookup each time).
_CLOSE_WAIT: Final = State.CLOSE_WAIT
_FIN_WAIT_2: Final = State.FIN_WAIT_2
_TIME_WAIT: Final = State.TIME_WAIT
_HELD: Final = frozenset({_CLOSE_WAIT, _FIN_WAIT_2, _TIME_WAIT})
_DONE: Final = (State.CLOSED, State.TIME_WAIT)


class _Trace:
    """A connection's trace, read once, with what detectors keep asking.

    One pass over the segments notes the FIN, RST and SYN segments, so that a
    detector visits only the segments it is about; what needs more (senders'
    roles, FIN groups, the numbers of every segment, the listed periods per
    state) is built on first use and kept. A packed trace's numbers and flags
    come from its records, so that most connections have no step built; the
    time each state was held is folded from the transitions, for the three
    states of ``_HELD`` in one pass (``held``, which is ``_state_held``).
    ``detect_with_teardown`` shares one ``_Trace`` between the detectors and
    the teardown columns.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # conn.trace is only read. A packed Trace gives the flags and directions of
        # all its steps, and their numbers (seq_ack_len, numbers), from its records,
        # and its steps lazily when first asked for (most connections have none
        # built: see steps); any other sequence is read once into a list.
        trace = conn.trace
        self._steps: Sequence[Step] | None = None
        # Per segment: its TCP flags, and 1 if it came from the client (else 0).
        self.flags: Sequence[int]
        self.directions: Sequence[int]
        self.packed: Trace | None = None
        self.fins: list[int] = []  # FIN, no RST or SYN
        self.rsts: list[int] = []  # RST
        self.syns: list[int] = []  # SYN, no RST
        if isinstance(trace, Trace):
            self.packed = trace
            flags, self.directions = trace.flags_directions()
            self.flags = flags
            for i in range(len(flags)):  # (compiled: the bytes read with no object made)
                if flags[i] & _FIN_SYN_RST:
                    self._note(i, flags[i])
        else:
            steps = self._steps = list(trace)
            self.flags = [step.seg.flags for step in steps]
            self.directions = [1 if step.from_client else 0 for step in steps]
            for i, fl in enumerate(self.flags):
                if fl & _FIN_SYN_RST:
                    self._note(i, fl)
        self._roles: list[str] | None = None
        self._expiries: list[tuple[str, int]] | None = None  # TIME_WAIT expiries: (role, ts)
        self.fin_groups: (
            tuple[dict[str, list[_FinGroup]], list[tuple[str, int, int, int]]] | None
        ) = None
        # Per role, FIN copies beyond the first of each group (set with fin_groups).
        self.fins_resent = {"client": 0, "server": 0}
        self._periods: tuple[int, dict[tuple[str, State], list[_Period]]] | None = None
        # held(): the end it was made for (-1: not made yet) and the three states'.
        self._held_end = -1
        self._held: _AllHeld = ((False, 0, 0), (False, 0, 0), (False, 0, 0))
        self._numbers: tuple[Sequence[int], Sequence[int], Sequence[int]] | None = None

    def _note(self, i: int, fl: int) -> None:
        """Note segment ``i``, whose flags ``fl`` hold a FIN, SYN or RST, in its list."""
        if fl & _RST:
            self.rsts.append(i)
        elif fl & Bit.SYN:
            self.syns.append(i)
        else:
            self.fins.append(i)

    @property
    def steps(self) -> Sequence[Step]:
        """The steps: a packed trace's ``lazy()``, made when first read."""
        if self._steps is None:
            assert self.packed is not None  # (any other trace's list is made at once)
            self._steps = self.packed.lazy()
        return self._steps

    def seq_ack_len(self, i: int) -> tuple[int, int, int]:
        """Segment ``i``'s sequence number, acknowledgment number and payload length.

        From its record when the trace is packed: no step is built for them.
        """
        if self.packed is not None:
            return self.packed.seq_ack_len(i)
        seg = self.steps[i].seg
        return seg.seq, seg.ack, seg.payload_len

    def numbers(self) -> tuple[Sequence[int], Sequence[int], Sequence[int]]:
        """Every segment's sequence number, acknowledgment number and payload length.

        Three columns, for the scans that read most segments (the RST causes):
        from the packed records at once, no step built.
        """
        if self._numbers is None:
            if self.packed is not None:
                self._numbers = self.packed.numbers()
            else:
                segs = [step.seg for step in self.steps]
                seqs, acks = [s.seq for s in segs], [s.ack for s in segs]
                self._numbers = seqs, acks, [s.payload_len for s in segs]
        return self._numbers

    def seg_len(self, j: int, payload_len: int) -> int:
        """Segment ``j``'s sequence space (``Segment.seg_len``), its payload length given."""
        fl = self.flags[j]
        return payload_len + ((fl >> 1) & 1) + (fl & 1)

    @property
    def roles(self) -> list[str]:
        """The sender's role ("client" or "server") of each segment."""
        if self._roles is None:
            self._roles = ["client" if d else "server" for d in self.directions]
        return self._roles

    def data_after(self, role: str, start: int) -> bool:
        """Does a segment from ``role`` after index ``start`` carry payload (RSTs aside)?"""
        flags, directions = self.flags, self.directions
        client = 1 if role == "client" else 0
        for j in range(max(start + 1, 0), len(flags)):
            # Direction and flags first: only the segments left are read.
            if directions[j] == client and not flags[j] & _RST and self.seq_ack_len(j)[2]:
                return True
        return False

    def state_before(self, i: int, role: str) -> State:
        """``role``'s state just before segment ``i``.

        That is its state after segment ``i - 1``, with a TIME_WAIT expiry timed
        between the two applied (the tracker applies that timer lazily, when the
        next segment comes).
        """
        if i == 0:
            init = State.CLOSED if role == "client" else State.LISTEN
            return init if self.conn.roles == "syn" else State.UNKNOWN
        prev = self.steps[i - 1]
        state = prev.client_state if role == "client" else prev.server_state
        if state is State.TIME_WAIT:
            if self._expiries is None:
                self._expiries = [
                    (t.endpoint, t.ts_ns)
                    for t in self.conn.transitions
                    if t.event is Event.TIMEOUT_2MSL
                ]
            lo, hi = prev.seg.ts_ns, self.steps[i].seg.ts_ns
            if any(who == role and lo <= ts <= hi for who, ts in self._expiries):
                return State.CLOSED
        return state

    def state_after(self, i: int, role: str) -> State:
        step = self.steps[i]
        return step.client_state if role == "client" else step.server_state

    def last_from(self, role: str, i: int) -> int | None:
        """Index of the last segment from ``role`` before index ``i``."""
        client = 1 if role == "client" else 0
        directions = self.directions
        for j in range(i - 1, -1, -1):
            if directions[j] == client:
                return j
        return None

    def entered(self, role: str, state: State, ts_ns: int) -> tuple[int | None, int] | None:
        """(frame, ts) at which ``role`` last entered ``state`` at or before ``ts_ns``."""
        found = None
        for t in self.conn.transitions:
            if t.ts_ns > ts_ns:
                break
            if t.endpoint == role and t.to_state is state and t.from_state is not state:
                found = (t.frame, t.ts_ns)
        return found

    def held(self, state: State, capture_end_ns: int) -> tuple[bool, int, int]:
        """``_state_held(conn, state, capture_end_ns)`` for a state of ``_HELD``: the
        three states' made in one pass, when first asked for."""
        if self._held_end != capture_end_ns or capture_end_ns < 0:
            self._held = _all_held(self.conn, capture_end_ns)
            self._held_end = capture_end_ns
        if state is _CLOSE_WAIT:
            return self._held[0]
        return self._held[1] if state is _FIN_WAIT_2 else self._held[2]

    def periods(self, capture_end_ns: int) -> dict[tuple[str, State], list[_Period]]:
        """``_intervals(conn, role, state, capture_end_ns)`` for each state of ``_HELD``.

        One pass over the transitions runs the loop of ``_intervals`` for every
        (role, state) at once: a change out of a state ends that state's open
        period, a change into one (re)starts it. Pairs never held are absent.
        """
        if self._periods is not None and self._periods[0] == capture_end_ns:
            return self._periods[1]
        out: dict[tuple[str, State], list[_Period]] = {}
        opened: dict[tuple[str, State], TransitionRecord] = {}  # the change that began it
        held_states = _HELD
        for t in self.conn.transitions:
            old, new = t.from_state, t.to_state
            if old is new:
                continue
            if old in held_states:
                began = opened.pop((t.endpoint, old), None)
                if began is not None:
                    period: _Period = (began.ts_ns, t.ts_ns, began.frame, t.frame, t.event)
                    out.setdefault((t.endpoint, old), []).append(period)
            if new in held_states:
                opened[(t.endpoint, new)] = t
        for key, t in opened.items():
            ts = t.ts_ns
            period = (ts, capture_end_ns if capture_end_ns > ts else ts, t.frame, None, None)
            out.setdefault(key, []).append(period)
        self._periods = capture_end_ns, out
        return out


# -- FINs: retransmitted, moved, lost final ACK, re-ACK from TIME_WAIT ------------


class _FinGroup:
    """Copies of one endpoint's FIN at one sequence number (indices into the trace)."""

    # (A plain class: a dataclass's __init__ is Python code, even compiled.)
    __slots__ = ("copies", "fin_seq", "role")

    def __init__(self, role: str, fin_seq: int, copies: list[int]) -> None:
        self.role = role
        self.fin_seq = fin_seq
        self.copies = copies


def _fin_groups(tr: _Trace) -> tuple[dict[str, list[_FinGroup]], list[tuple[str, int, int, int]]]:
    """FIN groups per endpoint, and moved FINs as (role, index, first FIN index, offset).

    Mirrors the tracker (``Tracker._send_fin``): a FIN at the current FIN
    position is a copy; elsewhere it is moved, and the position follows a FIN
    moved forward only. Built once per trace, from its FIN segments.
    """
    if tr.fin_groups is not None:
        return tr.fin_groups
    groups: dict[str, list[_FinGroup]] = {"client": [], "server": []}
    moved: list[tuple[str, int, int, int]] = []
    resent = tr.fins_resent
    for i in tr.fins:
        role = "client" if tr.directions[i] else "server"
        seq, _, payload_len = tr.seq_ack_len(i)
        fin_seq = seq_add(seq, payload_len)
        mine = groups[role]
        if not mine:
            mine.append(_FinGroup(role, fin_seq, [i]))
        elif fin_seq == mine[-1].fin_seq:
            # (the steps are built only here, where a copy is compared)
            if not _capture_duplicate(tr.steps[mine[-1].copies[-1]].seg, tr.steps[i].seg):
                mine[-1].copies.append(i)
                resent[role] += 1
        else:
            moved.append((role, i, mine[0].copies[0], seq_diff(fin_seq, mine[-1].fin_seq)))
            if seq_gt(fin_seq, mine[-1].fin_seq):
                mine.append(_FinGroup(role, fin_seq, [i]))
    tr.fin_groups = groups, moved
    return tr.fin_groups


def _is_last_fin(tr: _Trace, group: _FinGroup, groups: dict[str, list[_FinGroup]]) -> bool:
    """Was this FIN the close's last one (the peer's FIN went out before it)?"""
    peer = groups[_other(group.role)]
    return bool(peer) and peer[0].copies[0] < group.copies[0]


def _acks_between(tr: _Trace, role: str, fin_seq: int, lo: int, hi: int) -> list[int]:
    """Indices in (lo, hi) of segments from ``role`` acknowledging the FIN at ``fin_seq``."""
    flags, directions = tr.flags, tr.directions
    client = 1 if role == "client" else 0
    need = seq_add(fin_seq, 1)
    # _covers: ACK set, RST not, and the ACK at or past the FIN.
    return [
        j
        for j in range(lo + 1, hi)
        if directions[j] == client
        and (flags[j] & _ACK_RST) == _ACK
        and seq_geq(tr.seq_ack_len(j)[1], need)
    ]


def _first_ack_between(tr: _Trace, role: str, fin_seq: int, lo: int, hi: int) -> int | None:
    """The first of ``_acks_between(tr, role, fin_seq, lo, hi)``, or None: no list built."""
    flags, directions = tr.flags, tr.directions
    client = 1 if role == "client" else 0
    need = seq_add(fin_seq, 1)
    for j in range(lo + 1, hi):
        # Direction and flags first: only the segments left are read.
        if (
            directions[j] == client
            and (flags[j] & _ACK_RST) == _ACK
            and seq_geq(tr.seq_ack_len(j)[1], need)
        ):
            return j
    return None


def _echoes_earlier_copy(tr: _Trace, group: _FinGroup, upto: int, ack_idx: int) -> int | None:
    """Index of an earlier FIN copy (before copy ``upto``) whose TSval the ACK echoes.

    An ACK echoing the TSval of an older copy, not of the copy just sent, shows
    the peer received that older copy (RFC 7323 4.3: TS.Recent is taken from
    the segment that advanced the window, not from a duplicate).
    """
    ecr = _tsecr(tr.steps[ack_idx].seg)
    latest = _tsval(tr.steps[group.copies[upto]].seg)
    if ecr is None or latest is None or ecr == latest:
        return None
    for idx in group.copies[:upto]:
        if _tsval(tr.steps[idx].seg) == ecr:
            return idx
    return None


def _fin_findings(tr: _Trace, capture_end_ns: int) -> list[Finding]:
    conn = tr.conn
    out: list[Finding] = []
    groups, moved = _fin_groups(tr)
    for role, i, first, offset in moved:
        seg = tr.steps[i].seg
        first_frame = tr.steps[first].seg.frame
        out.append(
            Finding(
                conn.conn_id,
                Code.FIN_MOVED,
                role,
                seg.frame,
                seg.ts_ns,
                _frames((first_frame, seg.frame)),
                "RFC9293 3.10.4, 3.10.7.4",
                f"{role} sent another FIN (frame {seg.frame}) {offset:+d} bytes away from the "
                f"position of its earlier FIN (frame {first_frame}): a FIN occupies one fixed "
                "sequence number, so one of the two is forged, mangled by a middlebox, or from "
                "a broken stack",
                1.0,
            )
        )
    for role, mine in groups.items():
        peer = _other(role)
        for group in mine:
            if len(group.copies) > 1:  # (a FIN sent once has nothing to say)
                if _is_last_fin(tr, group, groups):
                    out.append(_lost_final_ack(tr, group))
                else:
                    out.append(_fin_retransmit(tr, group, capture_end_ns))
                out.extend(_reacks(tr, group, peer))
    return out


def _copies_text(tr: _Trace, group: _FinGroup) -> str:
    frames = [tr.steps[i].seg.frame for i in group.copies]
    gaps = [_dur(tr.steps[b].seg.ts_ns - tr.steps[a].seg.ts_ns) for a, b in pairwise(group.copies)]
    return f"{len(frames)} times (frames {_list(frames)}; resent after {', '.join(gaps)})"


def _fin_retransmit(tr: _Trace, group: _FinGroup, capture_end_ns: int) -> Finding:
    role, peer = group.role, _other(group.role)
    first, second = group.copies[0], group.copies[1]
    seg1 = tr.steps[second].seg
    n_steps = len(tr.flags)
    acked_before = _acks_between(tr, peer, group.fin_seq, first, second)
    acked_later = _acks_between(tr, peer, group.fin_seq, second, n_steps)
    evidence = [tr.steps[i].seg.frame for i in group.copies]
    sent = f"{role} sent its FIN {_copies_text(tr, group)}"
    if acked_before:
        ack = tr.steps[acked_before[0]].seg
        evidence.append(ack.frame)
        why = (
            f"the {peer}'s ACK of it (frame {ack.frame}) was seen here, so that ACK was lost "
            "beyond the capture point"
        )
    elif acked_later:
        ack_idx = acked_later[0]
        ack = tr.steps[ack_idx].seg
        evidence.append(ack.frame)
        echoed = _echoes_earlier_copy(tr, group, group.copies.index(second), ack_idx)
        if echoed is not None:
            why = (
                f"the {peer}'s ACK (frame {ack.frame}) echoes the timestamp of frame "
                f"{tr.steps[echoed].seg.frame}, so that FIN arrived and the {peer}'s first ACK "
                "was lost before the capture point"
            )
        else:
            why = (
                f"no ACK came before the {peer}'s ACK in frame {ack.frame}: either the first "
                f"FIN was lost after the capture point or the {peer}'s first ACK was lost "
                "before it; the capture cannot tell which"
            )
    else:
        after = _dur(capture_end_ns - tr.steps[group.copies[-1]].seg.ts_ns)
        why = (
            f"no ACK of it was seen (the capture ends {after} after the last copy): the {peer} "
            "or the path to it went silent, or every ACK was lost before the capture point"
        )
    return Finding(
        tr.conn.conn_id,
        Code.FIN_RETRANSMIT,
        role,
        seg1.frame,
        seg1.ts_ns,
        _frames(evidence),
        "RFC9293 3.8.1",
        f"{sent}: {why}",
        float(len(group.copies) - 1),
    )


def _lost_final_ack(tr: _Trace, group: _FinGroup) -> Finding:
    role, peer = group.role, _other(group.role)
    first, second = group.copies[0], group.copies[1]
    seg0, seg1 = tr.steps[first].seg, tr.steps[second].seg
    n = len(group.copies) - 1
    acked_before = _acks_between(tr, peer, group.fin_seq, first, second)
    evidence = [tr.steps[i].seg.frame for i in group.copies]
    resent = (
        f"{role} retransmitted its FIN (frame {seg1.frame}, first sent in frame {seg0.frame})"
        + (f" {n} times" if n > 1 else "")
    )
    if acked_before:
        ack = tr.steps[acked_before[-1]].seg
        evidence.append(ack.frame)
        detail = (
            f"{resent} {_dur(seg1.ts_ns - ack.ts_ns)} after the {peer}'s final ACK "
            f"(frame {ack.frame}): that ACK was seen here, so it was lost beyond the capture "
            "point"
        )
    else:
        later = [
            j
            for j in range(second + 1, len(tr.flags))
            if _role(tr.steps[j]) == peer
            and (_covers(tr.steps[j].seg, group.fin_seq) or _fl(tr.steps[j].seg, Bit.RST))
        ]
        if later and not _fl(tr.steps[later[0]].seg, Bit.RST):
            ans = tr.steps[later[0]].seg
            evidence.append(ans.frame)
            echoed = _echoes_earlier_copy(tr, group, group.copies.index(second), later[0])
            if echoed is not None:
                detail = (
                    f"{resent}: no ACK of frame {seg0.frame} was seen, and the {peer}'s ACK "
                    f"(frame {ans.frame}) echoes that FIN's timestamp, so the {peer} got it and "
                    "its final ACK was lost before the capture point"
                )
            else:
                detail = (
                    f"{resent}: no ACK of frame {seg0.frame} was seen before the {peer}'s ACK "
                    f"in frame {ans.frame}: either its final ACK was lost before the capture "
                    "point or the FIN was lost after it; the capture cannot tell which"
                )
        else:
            answer = (
                f"the {peer} answered with RST (frame {tr.steps[later[0]].seg.frame})"
                if later
                else f"no answer from the {peer} was seen"
            )
            if later:
                evidence.append(tr.steps[later[0]].seg.frame)
            detail = (
                f"{resent}: no ACK of frame {seg0.frame} was seen and {answer}: the final ACK "
                "was lost before the capture point or never sent, or the FIN was lost after it"
            )
    return Finding(
        tr.conn.conn_id,
        Code.LOST_FINAL_ACK,
        role,
        seg1.frame,
        seg1.ts_ns,
        _frames(evidence),
        "RFC9293 3.6, 3.10.7.4",
        detail,
        float(n),
    )


def _reacks(tr: _Trace, group: _FinGroup, peer: str) -> list[Finding]:
    """The peer re-ACKing a retransmitted copy of this FIN from TIME_WAIT."""
    out: list[Finding] = []
    copies = group.copies
    # The peer's ACKs of this FIN after each copy, up to the next copy (the last: to the
    # end), each stretch scanned once: what came before copy k is the stretches before
    # it (not a scan from the first copy for every copy, quadratic in a connection's
    # FINs retransmitted a great many times).
    bounds = [*copies, len(tr.flags)]
    prior_ack: int | None = None  # the last such ACK before copy k
    answer = _acks_between(tr, peer, group.fin_seq, bounds[0], bounds[1])
    for k in range(1, len(copies)):
        if answer:
            prior_ack = answer[-1]
        ci = copies[k]
        answer = _acks_between(tr, peer, group.fin_seq, ci, bounds[k + 1])
        if not answer or tr.state_after(answer[0], peer) is not State.TIME_WAIT:
            continue
        ai = answer[0]
        fin, ack = tr.steps[ci].seg, tr.steps[ai].seg
        if prior_ack is not None:
            prior = tr.steps[prior_ack].seg
            evidence = _frames((prior.frame, fin.frame, ack.frame))
            how = f"it had ACKed that FIN before (frame {prior.frame})"
        else:
            echoed = _echoes_earlier_copy(tr, group, k, ai)
            if echoed is None:
                continue
            first = tr.steps[echoed].seg
            evidence = _frames((first.frame, fin.frame, ack.frame))
            how = (
                f"its ACK echoes the timestamp of the earlier copy (frame {first.frame}), so it "
                "had that FIN already and its first ACK was lost before the capture point"
            )
        out.append(
            Finding(
                tr.conn.conn_id,
                Code.TIME_WAIT_REACK,
                peer,
                ack.frame,
                ack.ts_ns,
                evidence,
                "RFC9293 3.10.7.4",
                f"{peer} in TIME_WAIT ACKed the {group.role}'s retransmitted FIN (frame "
                f"{fin.frame}) again (frame {ack.frame}, {_dur(ack.ts_ns - fin.ts_ns)} later): "
                f"{how}; TIME_WAIT did its job",
                1.0,
            )
        )
    return out


# -- RSTs: one finding per RST segment, coded by cause -----------------------------


def _rst_findings(tr: _Trace, prev: Connection | None, config: Config) -> list[Finding]:
    conn = tr.conn
    if not tr.rsts:
        return []
    rejected = {
        a.frame: a
        for a in conn.anomalies
        if a.code in (Anomaly.RST_OUT_OF_WINDOW, Anomaly.RST_IGNORED_IN_SYN_SENT)
    }
    out = []
    last: dict[str, tuple[int, Code, str]] = {}  # role -> its previous RST: index, code, rfc
    for i in tr.rsts:
        step = tr.steps[i]
        x = _role(step)
        before = last.get(x)
        trig_i = tr.last_from(_other(x), i)
        if (
            before is not None
            and tr.state_before(i, x) is State.CLOSED
            and (trig_i is None or trig_i < before[0])
        ):
            # The same RST again with nothing from the peer in between: same cause.
            first = tr.steps[before[0]].seg.frame
            code, rfc = before[1], before[2]
            detail = (
                f"{x} sent RST again (frame {step.seg.frame}, "
                f"{_dur(step.seg.ts_ns - tr.steps[before[0]].seg.ts_ns)} after its RST in "
                f"frame {first}) with nothing from the {_other(x)} in between: same cause"
            )
            evidence: tuple[int | None, ...] = (first,)
        else:
            code, rfc, detail, evidence = _rst_cause(tr, i, prev, config, rejected)
            last[x] = (i, code, rfc)
        out.append(
            Finding(
                conn.conn_id,
                code,
                _role(step),
                step.seg.frame,
                step.seg.ts_ns,
                _frames((*evidence, step.seg.frame)),
                rfc,
                detail,
                1.0,
            )
        )
    return out


def _max_ack(tr: _Trace, role: str, start: int, upto: int) -> int | None:
    """Highest acknowledgment number ``role`` sent in [start, upto) (RSTs aside)."""
    top = None
    flags, directions = tr.flags, tr.directions
    acks = tr.numbers()[1]
    client = 1 if role == "client" else 0
    for j in range(len(flags))[start:upto]:  # the indices of tr.steps[start:upto]
        if directions[j] != client:
            continue
        if (flags[j] & _ACK_RST) == _ACK and (top is None or seq_gt(acks[j], top)):
            top = acks[j]
    return top


def _snd_max(tr: _Trace, role: str, upto: int) -> int | None:
    """Highest sequence number + 1 that ``role`` sent before index ``upto`` (RSTs aside)."""
    top = None
    flags, directions = tr.flags, tr.directions
    seqs, _, lens = tr.numbers()
    client = 1 if role == "client" else 0
    for j in range(upto):
        if directions[j] != client or flags[j] & _RST:
            continue
        end = seq_add(seqs[j], tr.seg_len(j, lens[j]))
        if top is None or seq_gt(end, top):
            top = end
    return top


def _new_data_after(tr: _Trace, role: str, start: int, upto: int) -> tuple[int, list[int]]:
    """New payload bytes ``role`` sent in (start, upto), and the trace indices carrying them."""
    if not tr.data_after(role, start):
        return 0, []  # no segment the scan below counts: none from role with payload after start
    return _new_data_scan(tr, role, start, upto)


def _new_data_scan(tr: _Trace, role: str, start: int, upto: int) -> tuple[int, list[int]]:
    """``_new_data_after`` by a scan of the segments in (start, upto)."""
    top = _snd_max(tr, role, start + 1)
    total, idx = 0, []
    flags, directions = tr.flags, tr.directions
    seqs, _, lens = tr.numbers()
    client = 1 if role == "client" else 0
    for j in range(start + 1, upto):
        if directions[j] != client:
            continue
        payload_len = lens[j]
        if flags[j] & _RST or not payload_len:
            continue
        end = seq_add(seqs[j], payload_len)
        if top is None or seq_gt(end, top):
            total += payload_len if top is None else min(payload_len, seq_diff(end, top))
            idx.append(j)
            top = end
    return total, idx


def _closed_because(tr: _Trace, role: str, ts_ns: int) -> str:
    """Why ``role`` was CLOSED at ``ts_ns``, from its last transition into CLOSED."""
    last = None
    for t in tr.conn.transitions:
        if t.ts_ns > ts_ns:
            break
        if t.endpoint == role and t.to_state is State.CLOSED and t.from_state is not State.CLOSED:
            last = t
    if last is None:
        return "had no connection"
    at = f"frame {last.frame}" if last.frame is not None else _dur(ts_ns - last.ts_ns) + " before"
    reasons = {
        Event.SND_RST: f"had already reset the connection ({at})",
        Event.RCV_RST: f"had already been reset ({at})",
        Event.RCV_ACK_OF_FIN: f"had finished closing (its FIN was ACKed, {at})",
        Event.TIMEOUT_2MSL: f"had left TIME_WAIT when it expired, {at}",
    }
    return reasons.get(last.event, f"had closed ({at})")


def _rst_cause(
    tr: _Trace,
    i: int,
    prev: Connection | None,
    config: Config,
    rejected: dict[int, AnomalyRecord],
) -> tuple[Code, str, str, tuple[int | None, ...]]:
    """(code, rfc, detail, evidence frames) for the RST at trace index ``i``."""
    seg = tr.steps[i].seg
    x = _role(tr.steps[i])
    y = _other(x)
    bx, by = tr.state_before(i, x), tr.state_before(i, y)
    trig_i = tr.last_from(y, i)
    trig = tr.steps[trig_i].seg if trig_i is not None else None
    rst = f"{x}'s RST (frame {seg.frame})"

    # Not acceptable to the receiver: it changes nothing (RFC 5961 3.2, RFC 9293 3.10.7.3).
    if seg.frame in rejected:
        anomaly = rejected[seg.frame]
        stale = ""
        if prev is not None:
            lo, hi = _space(prev, _addr(tr.conn, x))
            if lo is not None and hi is not None and seq_geq(seg.seq, lo) and seq_leq(seg.seq, hi):
                stale = (
                    f"; its sequence number lies in the previous incarnation's (conn "
                    f"{prev.conn_id}) range, so it is most likely a stale RST from it"
                )
        # The capture may have seen data or a FIN the receiver never got: then the
        # RST's sequence number sits at the receiver's real RCV.NXT.
        y_acked = _max_ack(tr, y, 0, i)
        x_top = _snd_max(tr, x, i)
        if (
            anomaly.code is Anomaly.RST_OUT_OF_WINDOW
            and y_acked is not None
            and x_top is not None
            and seq_geq(seg.seq, y_acked)
            and seq_lt(seg.seq, x_top)
        ):
            stale += (
                f"; its sequence number points at bytes the {x} sent but the {y} never "
                f"acknowledged: had those been lost, the RST was acceptable after all"
            )
        if anomaly.code is Anomaly.RST_IGNORED_IN_SYN_SENT:
            return (
                Code.RST_OUT_OF_WINDOW,
                "RFC9293 3.10.7.3",
                f"{rst} does not acknowledge the {y}'s SYN, so the {y} in SYN_SENT must ignore "
                f"it: an injected or stale reset{stale}",
                (),
            )
        return (
            Code.RST_OUT_OF_WINDOW,
            "RFC5961 3.2",
            f"{rst} is not acceptable to the {y} ({anomaly.detail}) and was ignored: suspect a "
            f"blind injection or a stale reset{stale}",
            (),
        )

    # Answer to a SYN where nothing listens (RFC 9293 3.10.7.1).
    if (
        x == "server"
        and bx in (State.LISTEN, State.CLOSED)
        and trig is not None
        and _fl(trig, Bit.SYN)
        and not _fl(trig, Bit.ACK)
        and not any(not tr.directions[j] and tr.flags[j] & Bit.SYN for j in range(i))  # server's
    ):
        return (
            Code.RST_REFUSED,
            "RFC9293 3.10.7.1",
            f"server answered the client's SYN (frame {trig.frame}) with RST (frame {seg.frame}) "
            f"{_dur(seg.ts_ns - trig.ts_ns)} later: nothing listens on port "
            f"{tr.conn.server.port} (or a firewall rejects with a reset); connect() fails with "
            "'Connection refused'",
            (trig.frame,),
        )

    # An RST reaching a TIME_WAIT endpoint ends its TIME_WAIT early (RFC 1337).
    if by is State.TIME_WAIT:
        entered = tr.entered(y, State.TIME_WAIT, seg.ts_ns)
        since = ""
        if entered is not None:
            since = f", {_dur(seg.ts_ns - entered[1])} after entering it"
            since += f" (frame {entered[0]})" if entered[0] is not None else ""
        answered = f" in answer to frame {trig.frame}" if trig is not None else ""
        return (
            Code.RST_IN_TIME_WAIT,
            "RFC1337",
            f"{rst}{answered} reached the {y} in TIME_WAIT{since}: accepted, it ends TIME_WAIT "
            f"before its 2*MSL ({_secs(2 * config.msl)}) and lets old duplicates into a new "
            "incarnation (TIME_WAIT assassination), unless the host ignores RSTs in TIME_WAIT "
            "(Linux net.ipv4.tcp_rfc1337=1)",
            (entered[0] if entered else None, trig.frame if trig is not None else None),
        )

    # The sender had no connection left: answer to a segment it no longer knows.
    no_state = bx in (State.CLOSED, State.TIME_WAIT, State.LISTEN)
    fin_wait_2_gone = (
        bx is State.FIN_WAIT_2
        and trig is not None
        and trig_i is not None
        and not _new_data_after(tr, y, _first_fin(tr, x, i), i)[0]
    )
    synack_after_give_up = (
        bx is State.SYN_SENT
        and trig is not None
        and _fl(trig, Bit.SYN)
        and _fl(trig, Bit.ACK)
        and tr.conn.client.isn is not None
        and trig.ack == seq_add(tr.conn.client.isn, 1)
    )
    if no_state or fin_wait_2_gone or synack_after_give_up:
        if trig is not None:
            what = _segment_name(trig, tr, trig_i, y)
            answered = f"{x} answered the {y}'s {what} (frame {trig.frame}) with RST"
            answered += f" (frame {seg.frame})"
        else:
            answered = f"{x} sent RST (frame {seg.frame})"
        evidence: tuple[int | None, ...] = (trig.frame if trig is not None else None,)
        if bx is State.TIME_WAIT:
            entered = tr.entered(x, State.TIME_WAIT, seg.ts_ns)
            held = _dur(seg.ts_ns - entered[1]) if entered else "?"
            evidence += (entered[0] if entered else None,)
            at = f" (frame {entered[0]})" if entered and entered[0] is not None else ""
            return (
                Code.RST_NO_STATE,
                "RFC9293 3.10.7.1",
                f"{answered} instead of re-ACKing it from TIME_WAIT: it had dropped the "
                f"connection {held} after entering TIME_WAIT{at}, inside 2*MSL "
                f"({_secs(2 * config.msl)}), so its TIME_WAIT was skipped or cut short (e.g. "
                "Linux tcp_max_tw_buckets exhausted, or the socket was killed)",
                evidence,
            )
        elif bx is State.FIN_WAIT_2:
            entered = tr.entered(x, State.FIN_WAIT_2, seg.ts_ns)
            held = _dur(seg.ts_ns - entered[1]) if entered else "?"
            evidence += (entered[0] if entered else None,)
            why = (
                f"it had dropped the connection while in FIN_WAIT_2, {held} after its FIN was "
                f"ACKed: Linux drops an orphaned FIN_WAIT_2 after net.ipv4.tcp_fin_timeout "
                "(60 s by default)"
            )
        elif bx is State.SYN_SENT:
            why = "its connect() had already given up (a SYN-ACK that came too late)"
        elif bx is State.LISTEN:
            why = "it was in LISTEN and had no connection for that segment"
        else:
            why = f"it {_closed_because(tr, x, seg.ts_ns)}"
        return (Code.RST_NO_STATE, "RFC9293 3.10.7.1", f"{answered}: {why}", evidence)

    # The sender had closed (sent FIN) and the peer kept sending data (RFC 1122 4.2.2.13).
    if bx in (State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSING, State.LAST_ACK):
        fin_i = _first_fin(tr, x, i)
        nbytes, idx = _new_data_after(tr, y, fin_i, i)
        if nbytes:
            fin_frame = tr.steps[fin_i].seg.frame
            frames = [tr.steps[j].seg.frame for j in idx]
            return (
                Code.RST_DATA_AFTER_CLOSE,
                "RFC1122 4.2.2.13",
                f"{x} reset the connection (frame {seg.frame}) when the {y} sent "
                f"{_plural(nbytes, 'byte')} ({_frames_phrase(frames)}) after the {x} had closed "
                f"(its FIN, frame {fin_frame}): a closed socket cannot take data, so the {y}'s "
                "application sees 'Connection reset by peer' (or EPIPE on its next write)",
                (fin_frame, *_some(frames)),
            )

    # Reset instead of FIN with data the application never read (RFC 1122 4.2.2.13).
    flags, directions = tr.flags, tr.directions
    seqs, acks, lens = tr.numbers()
    mine = 1 if x == "client" else 0  # x's direction
    last_own = -1  # the last segment from x before the RST with payload, or -1
    for j in range(i - 1, -1, -1):
        if directions[j] == mine and lens[j]:
            last_own = j
            break
    unanswered, uidx = _new_data_after(tr, y, last_own, i)
    uframes = [tr.steps[j].seg.frame for j in uidx]
    peer_top = _snd_max(tr, y, i)
    unacked = (
        seq_diff(peer_top, seg.ack)
        if _fl(seg, Bit.ACK) and peer_top is not None and seq_lt(seg.ack, peer_top)
        else 0
    )
    sent_any = last_own >= 0
    synchronized = bx in (State.ESTABLISHED, State.CLOSE_WAIT, State.SYN_RECEIVED)
    if synchronized and unanswered and (unacked > 0 or x == "server" or not sent_any):
        data_end = seq_add(seqs[uidx[-1]], lens[uidx[-1]])
        ack_i = next(
            (
                j
                for j in range(uidx[-1] + 1, i)
                if directions[j] == mine and flags[j] & _ACK and seq_geq(acks[j], data_end)
            ),
            None,
        )
        if unacked > 0:
            how = f"{_plural(unacked, 'byte')} of them not even acknowledged"
        elif ack_i is not None:
            how = f"acknowledged (frame {tr.steps[ack_i].seg.frame}) but never answered"
        else:
            how = "never answered"
        return (
            Code.RST_UNREAD_DATA,
            "RFC1122 4.2.2.13, RFC2525 2.17",
            f"{x} reset the connection (frame {seg.frame}) instead of closing it with FIN, "
            f"{_dur(seg.ts_ns - tr.steps[uidx[-1]].seg.ts_ns)} "
            f"after the {y}'s {_plural(unanswered, 'byte')} ({_frames_phrase(uframes)}), {how}: "
            "Linux sends this RST when the application closes a socket with unread data; an "
            "abort (SO_LINGER 0) looks the same on the wire",
            (*_some(uframes), tr.steps[ack_i].seg.frame if ack_i is not None else None),
        )

    # Otherwise: a live connection reset (ABORT call, crash, retransmissions exhausted).
    state = "state unknown" if bx is State.UNKNOWN else f"in {bx.value}"
    detail = f"{x} reset the connection ({state}, frame {seg.frame})"
    if trig is not None:
        detail += f", {_dur(seg.ts_ns - trig.ts_ns)} after the {y}'s last segment"
        detail += f" (frame {trig.frame})"
    retx = _retransmissions(tr, x, i)
    if bx is State.UNKNOWN and trig is None and not any(directions[j] == mine for j in range(i)):
        detail += (
            ": no earlier segment of this connection was captured, so the cause cannot be told"
        )
    elif retx:
        detail += (
            f": after sending unacknowledged data or FIN {_plural(retx, 'more time')}, the "
            "retransmission limit ran out (or the application aborted)"
        )
    else:
        detail += ": an abort (close() with SO_LINGER {on, 0}, a crash or a killed process)"
        if unanswered:
            detail += (
                f"; had its application not read the {y}'s last "
                f"{_plural(unanswered, 'byte')} ({_frames_phrase(uframes)}), Linux would send "
                "this same RST on close()"
            )
    return (
        Code.RST_ABORT,
        "RFC9293 3.10.5",
        detail,
        (trig.frame if trig is not None else None,),
    )


def _first_fin(tr: _Trace, role: str, upto: int) -> int:
    flags, directions = tr.flags, tr.directions
    client = 1 if role == "client" else 0
    for j in range(upto):
        if directions[j] == client and flags[j] & Bit.FIN and not flags[j] & _RST:
            return j
    return -1


def _segment_name(seg: Segment, tr: _Trace, idx: int | None, role: str) -> str:
    """'retransmitted FIN', 'FIN', 'SYN-ACK', '12-byte segment', 'ACK' for a sentence."""
    if _fl(seg, Bit.SYN):
        return "SYN-ACK" if _fl(seg, Bit.ACK) else "SYN"
    if _fl(seg, Bit.FIN):
        if idx is not None:
            fin_seq = seq_add(seg.seq, seg.payload_len)
            flags, directions = tr.flags, tr.directions
            seqs, _, lens = tr.numbers()
            client = 1 if role == "client" else 0
            for j in range(idx):
                if (
                    directions[j] == client
                    and flags[j] & Bit.FIN
                    and seq_add(seqs[j], lens[j]) == fin_seq
                ):
                    return "retransmitted FIN"
        return "FIN"
    if seg.payload_len:
        return f"{seg.payload_len}-byte segment"
    return "ACK"


def _retransmissions(tr: _Trace, role: str, upto: int) -> int:
    """Segments ``role`` sent again (same data or FIN) before ``upto``, never ACKed after."""
    top: int | None = None
    acked: int | None = None
    count = 0
    flags, directions = tr.flags, tr.directions
    seqs, acks, lens = tr.numbers()
    client = 1 if role == "client" else 0
    for j in range(upto):
        fl = flags[j]
        if fl & _RST:
            continue
        if directions[j] != client:
            if fl & _ACK and (acked is None or seq_gt(acks[j], acked)):
                acked, count = acks[j], 0
            continue
        seg_len = tr.seg_len(j, lens[j])
        end = seq_add(seqs[j], seg_len)
        if (
            seg_len
            and not fl & Bit.SYN
            and top is not None
            and seq_leq(end, top)
            and (acked is None or seq_gt(end, acked))
        ):
            count += 1
        if top is None or seq_gt(end, top):
            top = end
    return count


# -- incarnations: reuse and stale duplicates -----------------------------------------


def _addr(conn: Connection, role: str) -> tuple[bytes, int]:
    ep = conn.client if role == "client" else conn.server
    return ep.addr, ep.port


def _role_in(conn: Connection, addr: tuple[bytes, int]) -> str:
    return "client" if (conn.client.addr, conn.client.port) == addr else "server"


def _space(conn: Connection, addr: tuple[bytes, int]) -> tuple[int | None, int | None]:
    """The sequence space [first seq, highest seq + 1] the endpoint at ``addr`` used."""
    role = _role_in(conn, addr)
    lo = hi = None
    for step in conn.trace:
        seg = step.seg
        if _role(step) != role or _fl(seg, Bit.RST):
            continue
        end = seq_add(seg.seq, seg.seg_len)
        if lo is None or seq_lt(seg.seq, lo):
            lo = seg.seq
        if hi is None or seq_gt(end, hi):
            hi = end
    return lo, hi


def _reuse_facts(
    conn: Connection, prev: Connection
) -> tuple[int, list[tuple[str, int | None, int]], bool]:
    """(gap ns, [(role in conn, TIME_WAIT entry frame, entry ts)], TIME_WAIT cut short)."""
    gap = conn.start_ns - prev.end_ns
    holders = []
    for t in prev.transitions:
        if t.event is Event.NEW_INCARNATION:
            role = _role_in(conn, _addr(prev, t.endpoint))
            entry = None
            for u in prev.transitions:
                if u.ts_ns > t.ts_ns:
                    break
                if (
                    u.endpoint == t.endpoint
                    and u.to_state is State.TIME_WAIT
                    and u.from_state is not State.TIME_WAIT
                ):
                    entry = u
            holders.append(
                (role, entry.frame if entry else None, entry.ts_ns if entry else t.ts_ns)
            )
    return gap, holders, bool(holders)


def _reuse_findings(conn: Connection, prev: Connection | None, config: Config) -> list[Finding]:
    if prev is None or not conn.trace:
        return []
    gap, holders, cut_short = _reuse_facts(conn, prev)
    syn = conn.trace[0].seg
    x = _role(conn.trace[0])
    xaddr = _addr(conn, x)
    inside = gap < config.time_wait_ns
    tw = _secs(2 * config.msl)
    head = (
        f"{x} reopened this 4-tuple (SYN, frame {syn.frame}) {_dur(gap)} after the previous "
        f"incarnation's last segment (conn {prev.conn_id}, frame {prev.last_frame}), "
        + (f"inside 2*MSL ({tw})" if inside else f"after 2*MSL ({tw})")
    )
    evidence: list[int | None] = [prev.last_frame, syn.frame]
    if holders:
        parts = []
        for role, frame, ts in holders:
            evidence.append(frame)
            at = f" (entered at frame {frame})" if frame is not None else ""
            parts.append(f"the {role}'s TIME_WAIT{at} was cut short after {_dur(syn.ts_ns - ts)}")
        tw_text = " and ".join(parts)
        if conn.saw_synack and any(role == "server" for role, _, _ in holders):
            tw_text += " (the server accepted the SYN from TIME_WAIT)"
    else:
        expired = [t for t in prev.transitions if t.event is Event.TIMEOUT_2MSL]
        if expired:
            tw_text = (
                f"the {_role_in(conn, _addr(prev, expired[-1].endpoint))}'s TIME_WAIT had expired"
            )
        elif prev.first_rst is not None:
            tw_text = "no TIME_WAIT was held: the previous incarnation ended by RST"
        elif not prev.saw_synack:
            tw_text = "the previous attempt never completed its handshake (a retry)"
        else:
            tw_text = "no TIME_WAIT was held"
    isn_text = ""
    old_prev_role = _role_in(prev, xaddr)
    old_ep = prev.client if old_prev_role == "client" else prev.server
    if old_ep.snd_nxt is not None and _fl(syn, Bit.SYN):
        d = seq_diff(syn.seq, old_ep.snd_nxt)
        if d == 65537:
            isn_text = (
                "; new ISN = old SND.NXT + 65537, the ISN Linux picks when it reuses its own "
                "TIME_WAIT (tcp_tw_reuse)"
            )
        elif d > 0:
            isn_text = f"; new ISN is {d} above the old connection's final sequence number"
        else:
            isn_text = (
                f"; new ISN is {-d} at or below the old connection's final sequence number, "
                "so old segments may fit the new connection's window"
            )
    ts_text = ""
    new_ts = _tsval(syn)
    old_ts = None
    for step in prev.trace:
        if _role(step) == old_prev_role and _tsval(step.seg) is not None:
            old_ts = _tsval(step.seg)
    if new_ts is not None and old_ts is not None:
        dts = seq_diff(new_ts, old_ts)
        ts_text = (
            f"; its TSval is {dts} ticks newer than the old connection's last (RFC 6191 lets "
            "TIME_WAIT accept it)"
            if dts > 0
            else f"; its TSval is {-dts} ticks older than the old connection's last, so PAWS "
            "cannot tell old segments from new ones"
        )
    elif new_ts is None:
        ts_text = "; no TCP timestamps, so only the sequence numbers separate the incarnations"
    holder_roles = {role for role, _, _ in holders}
    endpoint = holder_roles.pop() if len(holder_roles) == 1 else ""
    weight = max(0.0, seconds(config.time_wait_ns - gap))
    return [
        Finding(
            conn.conn_id,
            Code.TUPLE_REUSE,
            endpoint,
            syn.frame,
            syn.ts_ns,
            _frames(evidence),
            "RFC1122 4.2.2.13, RFC6191",
            f"{head}: {tw_text}{isn_text}{ts_text}",
            weight if cut_short else 0.0,
        )
    ]


@dataclass(slots=True)
class _Dir:
    """What one endpoint has sent so far in the new incarnation (stale segments aside)."""

    isn: int | None = None
    top: int | None = None  # highest sequence number sent + 1
    window: int | None = None
    wscale: int | None = None
    ts_first: int | None = None  # TSval of its SYN
    ts_recent: int | None = None  # latest TSval (what the peer holds as TS.Recent)
    acked: int | None = None  # highest ACK it sent (the peer's SND.UNA)
    max_window: int = 0


def _stale_findings(conn: Connection, prev: Connection | None) -> list[Finding]:
    if prev is None:
        return []
    old_segs: dict[str, dict[tuple[int, int], int]] = {"client": {}, "server": {}}
    old_space: dict[str, tuple[int | None, int | None]] = {}
    for role in ("client", "server"):
        paddr = _addr(conn, role)
        prole = _role_in(prev, paddr)
        old_space[role] = _space(prev, paddr)
        for step in prev.trace:
            seg = step.seg
            if _role(step) == prole and (seg.payload_len or _fl(seg, Bit.FIN)):
                old_segs[role].setdefault((seg.seq, seg.payload_len), seg.frame)
    dirs = {"client": _Dir(), "server": _Dir()}
    both_ts = both_ws = False
    out = []
    for i, step in enumerate(conn.trace):
        seg = step.seg
        x, y = _role(step), _other(_role(step))
        me, peer = dirs[x], dirs[y]
        if _fl(seg, Bit.SYN):
            me.isn = seg.seq
            me.wscale = seg.options.wscale if seg.options is not None else None
            me.ts_first = _tsval(seg)
            both_ws = dirs["client"].wscale is not None and dirs["server"].wscale is not None
            both_ts = dirs["client"].ts_first is not None and dirs["server"].ts_first is not None
        elif not _fl(seg, Bit.RST):
            finding = _stale_check(conn, prev, i, me, peer, old_segs[x], old_space, x, both_ts)
            if finding is not None:
                out.append(_stale_verdict(conn, i, finding, me, peer, both_ts, both_ws, x))
                continue
        if _fl(seg, Bit.RST):
            continue
        end = seq_add(seg.seq, seg.seg_len)
        if me.top is None or seq_gt(end, me.top):
            me.top = end
        me.window = seg.window
        scaled = seg.window << min(me.wscale or 0, 14) if both_ws else seg.window
        me.max_window = max(me.max_window, scaled)
        tsv = _tsval(seg)
        if tsv is not None and (me.ts_recent is None or seq_gt(tsv, me.ts_recent)):
            me.ts_recent = tsv
        if _fl(seg, Bit.ACK) and (me.acked is None or seq_gt(seg.ack, me.acked)):
            me.acked = seg.ack
    return out


def _in(value: int, lo: int | None, hi: int | None) -> bool:
    return lo is not None and hi is not None and seq_geq(value, lo) and seq_leq(value, hi)


@dataclass(frozen=True, slots=True)
class _Stale:
    reasons: tuple[str, ...]
    old_frame: int | None


def _stale_check(
    conn: Connection,
    prev: Connection,
    i: int,
    me: _Dir,
    peer: _Dir,
    old: dict[tuple[int, int], int],
    old_space: dict[str, tuple[int | None, int | None]],
    x: str,
    both_ts: bool,
) -> _Stale | None:
    """Does the segment at ``i`` belong to the previous incarnation? Why, if so."""
    seg = conn.trace[i].seg
    y = _other(x)
    dup = old.get((seg.seq, seg.payload_len)) if seg.payload_len or _fl(seg, Bit.FIN) else None
    lo, hi = old_space[x]
    seq_old = _in(seg.seq, lo, hi) and _in(seq_add(seg.seq, seg.payload_len), lo, hi)
    seq_new = me.isn is None or _in(seg.seq, me.isn, me.top)
    plo, phi = old_space[y]
    ack_flag = _fl(seg, Bit.ACK)
    ack_old = ack_flag and _in(seg.ack, plo, phi)
    ack_new = not ack_flag or peer.isn is None or _in(seg.ack, peer.isn, peer.top)
    tsv = _tsval(seg)
    ts_old = tsv is not None and me.ts_first is not None and seq_lt(tsv, me.ts_first)
    if not (ts_old or ((dup is not None or seq_old or ack_old) and not (seq_new and ack_new))):
        return None
    reasons = []
    if dup is not None:
        reasons.append(f"it repeats conn {prev.conn_id}'s frame {dup}")
    elif seq_old and not seq_new:
        reasons.append(f"its sequence number lies in conn {prev.conn_id}'s range")
    if ack_old and not ack_new:
        reasons.append(f"its ACK acknowledges conn {prev.conn_id}'s data")
    if ts_old:
        reasons.append(f"its TSval {tsv} is older than the {x}'s SYN in this incarnation")
    return _Stale(tuple(reasons), dup)


def _stale_verdict(
    conn: Connection,
    i: int,
    stale: _Stale,
    me: _Dir,
    peer: _Dir,
    both_ts: bool,
    both_ws: bool,
    x: str,
) -> Finding:
    """Would the receiver take the stale segment? RFC 9293 3.10.7.4, RFC 7323 5, RFC 5961 5.2."""
    seg = conn.trace[i].seg
    y = _other(x)
    rejects = []
    # Receive window: RCV.NXT is what x has sent so far, RCV.WND what y advertised last.
    if me.top is not None and peer.window is not None:
        wnd = peer.window << min(peer.wscale or 0, 14) if both_ws else peer.window
        off = seq_diff(seg.seq, me.top)
        n = seg.payload_len + (1 if _fl(seg, Bit.FIN) else 0)
        last = off + n - 1
        inside = (0 <= off < wnd or (n > 0 and 0 <= last < wnd)) if wnd else off == 0
        if not inside:
            rejects.append(
                f"its sequence number is {off:+d} from RCV.NXT, outside the window {wnd}"
            )
        unknown = False
    else:
        unknown = True
    tsv = _tsval(seg)
    if both_ts and tsv is not None and me.ts_recent is not None and seq_lt(tsv, me.ts_recent):
        rejects.append(f"PAWS drops it (TSval {tsv} < TS.Recent {me.ts_recent})")
    if _fl(seg, Bit.ACK) and peer.top is not None:
        if seq_gt(seg.ack, peer.top):
            rejects.append(f"its ACK is for data the {y} never sent in this incarnation")
        # The receiver's SND.UNA is the highest ACK the sender sent; MAX.SND.WND the
        # largest window the sender advertised.
        elif me.acked is not None and seq_lt(seg.ack, seq_add(me.acked, -me.max_window)):
            rejects.append("its ACK is too old to be acceptable (RFC 5961 5.2)")
    evidence: list[int | None] = [stale.old_frame, seg.frame]
    reaction = ""
    for step in conn.trace[i + 1 :]:
        if _role(step) != y:
            continue
        ans = step.seg
        end = seq_add(seg.seq, seg.payload_len)
        dsack = ans.options is not None and any(
            seq_leq(left, seg.seq) and seq_geq(right, end)
            for left, right in ans.options.sack_blocks
        )
        if dsack and seg.payload_len:
            evidence.append(ans.frame)
            reaction = (
                f"; the {y} answered with a duplicate ACK carrying a D-SACK for it "
                f"(frame {ans.frame})"
            )
        elif (
            seg.payload_len and me.top is not None and seq_geq(ans.ack, end) and seq_gt(end, me.top)
        ):
            evidence.append(ans.frame)
            reaction = f"; the {y}'s ACK in frame {ans.frame} covers it: it was taken as data"
        break
    nbytes = f"{seg.payload_len}-byte " if seg.payload_len else ""
    head = (
        f"{x}'s {nbytes}segment (frame {seg.frame}, seq {seg.seq}) belongs to the previous "
        f"incarnation: {', '.join(stale.reasons)}"
    )
    if rejects:
        verdict = f"the {y} would reject it: {'; '.join(rejects)}"
    elif unknown:
        verdict = (
            f"the capture does not show the {y}'s receive window, so whether it took the "
            "segment as data cannot be told"
        )
    else:
        verdict = (
            f"it falls inside the {y}'s receive window with an acceptable ACK, so it would be "
            "taken as data of this connection: the corruption TIME_WAIT exists to prevent"
        )
    return Finding(
        conn.conn_id,
        Code.STALE_DUPLICATE,
        x,
        seg.frame,
        seg.ts_ns,
        _frames(evidence),
        "RFC9293 3.4, RFC7323 5" if rejects else "RFC9293 3.4, RFC1337",
        f"{head}; {verdict}{reaction}",
        1.0 if rejects else 1.5 if unknown else 2.0,
    )


# -- the close: simultaneous, half-close, lingering states, open at the end -------------


def _intervals(
    conn: Connection, role: str, state: State, capture_end_ns: int
) -> list[tuple[int, int, int | None, int | None, Event | None]]:
    """Periods ``role`` spent in ``state``: (start, end, start frame, end frame, leaving event).

    From the tracker's transitions, so each period starts and ends at the segment
    that showed the change (transitions.csv); a period still open at the end of
    the capture ends at ``capture_end_ns`` with no end frame and no event.
    """
    out: list[tuple[int, int, int | None, int | None, Event | None]] = []
    start: tuple[int, int | None] | None = None
    for t in conn.transitions:
        if t.endpoint != role or t.from_state is t.to_state:
            continue
        if t.from_state is state and start is not None:
            out.append((start[0], t.ts_ns, start[1], t.frame, t.event))
            start = None
        if t.to_state is state:
            start = (t.ts_ns, t.frame)
    if start is not None:
        out.append((start[0], max(capture_end_ns, start[0]), start[1], None, None))
    return out


def state_parts(conn: Connection, state: State) -> list[tuple[int, int | None]]:
    """Per endpoint that held ``state``: (ns in periods that ended, start of one still open)."""
    out: list[tuple[int, int | None]] = []
    for role in ("client", "server"):
        periods = _role_periods(conn, role, state)
        if periods.count or periods.opened:
            out.append((periods.total, periods.start if periods.opened else None))
    return out


def seconds_from_parts(
    parts: Sequence[tuple[int, int | None]], capture_end_ns: int
) -> float | None:
    """``state_seconds`` from ``state_parts``: an open period ends at ``capture_end_ns``."""
    longest = 0
    for k, (ended, start) in enumerate(parts):
        total = ended if start is None else ended + max(capture_end_ns, start) - start
        if k == 0 or total > longest:
            longest = total
    return seconds(longest) if parts else None


def state_seconds(conn: Connection, state: State, capture_end_ns: int) -> float | None:
    """Seconds the endpoint holding ``state`` spent in it (the longer of the two), or None."""
    return seconds_from_parts(state_parts(conn, state), capture_end_ns)


class _Periods:
    """One endpoint's periods in one state, each folded in as it ends: how many, their
    total and the longest (ns). A plain class (see _FinGroup)."""

    __slots__ = ("count", "opened", "start", "top", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.top = 0
        self.start = 0
        self.opened = False

    def enter(self, ts_ns: int) -> None:
        self.start = ts_ns
        self.opened = True

    def leave(self, ts_ns: int) -> None:
        if self.opened:
            span = ts_ns - self.start
            self.total += span
            if not self.count or span > self.top:
                self.top = span
            self.count += 1
            self.opened = False

    def ended(self, capture_end_ns: int) -> tuple[int, int, int]:
        """(periods, total, longest), a period still open ending at ``capture_end_ns``."""
        if not self.opened:
            return self.count, self.total, self.top
        span = capture_end_ns - self.start if capture_end_ns > self.start else 0
        top = span if not self.count or span > self.top else self.top
        return self.count + 1, self.total + span, top


def _state_periods(
    conn: Connection, role: str, state: State, capture_end_ns: int
) -> tuple[int, int, int]:
    """(periods, their total ns, the longest ns) of ``_intervals(conn, role, state, ...)``.

    The loop of ``_intervals`` with no period kept: each is folded in as it ends.
    """
    return _role_periods(conn, role, state).ended(capture_end_ns)


def _role_periods(conn: Connection, role: str, state: State) -> _Periods:
    """The periods ``role`` spent in ``state``, folded (one still open left open)."""
    periods = _Periods()
    for t in conn.transitions:
        if t.endpoint != role or t.from_state is t.to_state:
            continue
        if t.from_state is state:
            periods.leave(t.ts_ns)
        elif t.to_state is state:
            periods.enter(t.ts_ns)
    return periods


def _state_held(conn: Connection, state: State, capture_end_ns: int) -> tuple[bool, int, int]:
    """(held, longest ns, total ns): did an endpoint hold ``state``; its longest period
    (of either endpoint); the longer endpoint's total (``state_seconds`` in ns)."""
    return _both_held(
        _state_periods(conn, "client", state, capture_end_ns),
        _state_periods(conn, "server", state, capture_end_ns),
    )


def _both_held(client: tuple[int, int, int], server: tuple[int, int, int]) -> tuple[bool, int, int]:
    """``_state_held`` of the client's and the server's ``_state_periods``."""
    c_count, c_total, c_top = client
    s_count, s_total, s_top = server
    if not s_count:
        return bool(c_count), c_top, c_total
    if not c_count:
        return True, s_top, s_total
    return True, max(c_top, s_top), max(c_total, s_total)


def _held_place(state: State) -> int:
    """The place of ``state`` in (CLOSE_WAIT, FIN_WAIT_2, TIME_WAIT); -1 for another."""
    if state is _CLOSE_WAIT:
        return 0
    if state is _FIN_WAIT_2:
        return 1
    return 2 if state is _TIME_WAIT else -1


# _state_held of CLOSE_WAIT, FIN_WAIT_2 and TIME_WAIT (compiled: held unboxed).
_AllHeld = tuple[tuple[bool, int, int], tuple[bool, int, int], tuple[bool, int, int]]


def _all_held(conn: Connection, capture_end_ns: int) -> _AllHeld:
    """``_state_held`` of CLOSE_WAIT, FIN_WAIT_2 and TIME_WAIT, in one pass over the
    transitions."""
    # The client's three, the server's three; each made when first entered (a period
    # never entered folds nothing: None stands for it).
    periods: list[_Periods | None] = [None, None, None, None, None, None]
    for t in conn.transitions:
        old, new = t.from_state, t.to_state
        if old is new:
            continue
        left, entered = _held_place(old), _held_place(new)
        if left < 0 and entered < 0:
            continue
        endpoint = t.endpoint
        if endpoint == "client":
            base = 0
        elif endpoint == "server":
            base = 3
        else:
            continue
        if left >= 0:
            was = periods[base + left]
            if was is not None:
                was.leave(t.ts_ns)
        if entered >= 0:
            now = periods[base + entered]
            if now is None:
                now = periods[base + entered] = _Periods()
            now.enter(t.ts_ns)
    end = capture_end_ns
    return (
        _both_held(_ended(periods[0], end), _ended(periods[3], end)),
        _both_held(_ended(periods[1], end), _ended(periods[4], end)),
        _both_held(_ended(periods[2], end), _ended(periods[5], end)),
    )


def _ended(periods: _Periods | None, capture_end_ns: int) -> tuple[int, int, int]:
    """``periods.ended(capture_end_ns)``; none (None) for a period never entered."""
    return (0, 0, 0) if periods is None else periods.ended(capture_end_ns)


def _held_ns(tr: _Trace, capture_end_ns: int) -> dict[State, int]:
    """For each state of ``_HELD`` an endpoint was in: ``state_seconds`` in nanoseconds.

    The longer of the two endpoints' totals (``_state_held``).
    """
    out = {}
    for state in (_CLOSE_WAIT, _FIN_WAIT_2, _TIME_WAIT):
        held, _, total = tr.held(state, capture_end_ns)
        if held:
            out[state] = total
    return out


def _left_by(event: Event | None, peer: str) -> str:
    """How a state was left, for a sentence: 'its own FIN', "the server's RST", ..."""
    return (
        {
            Event.SND_FIN: "its own FIN",
            Event.SND_RST: "its RST",
            Event.RCV_RST: f"the {peer}'s RST",
            Event.RCV_FIN: f"its ACK of the {peer}'s FIN",
            Event.FIN_RETRANSMIT: f"the {peer}'s retransmitted FIN",
        }.get(event, "its next step")
        if event is not None
        else "the end of the capture"
    )


def _linger_findings(tr: _Trace, config: Config, capture_end_ns: int) -> list[Finding]:
    """``_lingering``, skipped when no period is over its threshold (its only finding)."""
    # (_lingering's test, on the longest period of each state)
    held, longest, _ = tr.held(_CLOSE_WAIT, capture_end_ns)
    if held and not longest <= config.close_wait_linger_s * _NS:
        return _lingering(tr, config, capture_end_ns)
    held, longest, _ = tr.held(_FIN_WAIT_2, capture_end_ns)
    if held and not longest <= config.fin_wait_2_linger_s * _NS:
        return _lingering(tr, config, capture_end_ns)
    return []


def _lingering(tr: _Trace, config: Config, capture_end_ns: int) -> list[Finding]:
    """CLOSE_WAIT and FIN_WAIT_2 periods held longer than their thresholds."""
    conn = tr.conn
    out = []
    periods = tr.periods(capture_end_ns)
    rules = (
        (State.CLOSE_WAIT, Code.CLOSE_WAIT_LINGER, config.close_wait_linger_s),
        (State.FIN_WAIT_2, Code.FIN_WAIT_2_LINGER, config.fin_wait_2_linger_s),
    )
    for state, code, limit in rules:
        for role in ("client", "server"):
            peer = _other(role)
            for start, end, f0, f1, event in periods.get((role, state), ()):
                held = end - start
                if held <= limit * _NS:
                    continue
                if state is State.CLOSE_WAIT:
                    since = f"acknowledging the {peer}'s FIN (frame {f0})"
                    if f1 is None:
                        why = (
                            f"{role} was still in CLOSE_WAIT at the end of the capture, "
                            f"{_dur(held)} after {since}: its application has not closed the "
                            "socket (or never accepted the connection)"
                        )
                    elif event is Event.RCV_RST:
                        why = (
                            f"{role} stayed in CLOSE_WAIT {_dur(held)}, from {since} until the "
                            f"{peer}'s RST (frame {f1}): its application had not closed the "
                            "socket in that time"
                        )
                    else:
                        why = (
                            f"{role} stayed in CLOSE_WAIT {_dur(held)}, from {since} to "
                            f"{_left_by(event, peer)} (frame {f1}): its application took that "
                            "long to close() the socket"
                        )
                else:
                    since = f"the {peer}'s ACK of its FIN (frame {f0})"
                    if f1 is None:
                        why = (
                            f"{role} was still in FIN_WAIT_2 at the end of the capture, "
                            f"{_dur(held)} after {since}: the {peer} has not closed its side"
                        )
                    elif event is Event.SND_RST:
                        why = (
                            f"{role} waited {_dur(held)} in FIN_WAIT_2, from {since} until its "
                            f"RST (frame {f1}), which shows it had dropped the connection by "
                            "then (Linux: net.ipv4.tcp_fin_timeout)"
                        )
                    else:
                        why = (
                            f"{role} waited {_dur(held)} in FIN_WAIT_2, from {since} to "
                            f"{_left_by(event, peer)} (frame {f1}): the {peer}'s application was "
                            "slow to close"
                        )
                out.append(
                    Finding(
                        conn.conn_id,
                        code,
                        role,
                        f0,
                        start,
                        _frames((f0, f1)),
                        "RFC9293 3.6",
                        f"{why} (threshold {_secs(limit)})",
                        seconds(held),
                    )
                )
    return out


def _close_findings(tr: _Trace, config: Config, capture_end_ns: int) -> list[Finding]:
    conn = tr.conn
    out: list[Finding] = []
    groups, _ = _fin_groups(tr)
    firsts = {role: g[0].copies[0] for role, g in groups.items() if g}
    if conn.simultaneous_close and len(firsts) == 2:
        a, b = sorted(firsts.values())
        fa, fb = tr.steps[a].seg, tr.steps[b].seg
        acks = [
            j
            for role, g in groups.items()
            for j in _acks_between(tr, _other(role), g[0].fin_seq, g[0].copies[0], len(tr.flags))[
                :1
            ]
        ]
        ends = f"{conn.client.state.value}/{conn.server.state.value}"
        out.append(
            Finding(
                conn.conn_id,
                Code.SIMULTANEOUS_CLOSE,
                "",
                fa.frame,
                fa.ts_ns,
                _frames((fa.frame, fb.frame, *(tr.steps[j].seg.frame for j in acks))),
                "RFC9293 3.6",
                f"{_role(tr.steps[a])} FIN (frame {fa.frame}) and {_role(tr.steps[b])} FIN "
                f"(frame {fb.frame}) crossed, {_dur(fb.ts_ns - fa.ts_ns)} apart here (each sent "
                "before the other arrived): both sides went through CLOSING, so both hold "
                f"TIME_WAIT (end states client/server: {ends})",
                0.0,
            )
        )
    if conn.first_fin is not None and conn.first_fin in firsts:
        out.extend(_half_close(tr, conn.first_fin, firsts[conn.first_fin]))
    out.extend(_linger_findings(tr, config, capture_end_ns))
    out.extend(_open_at_end(tr, capture_end_ns))
    return out


def _half_close(tr: _Trace, closer: str, fin_i: int) -> list[Finding]:
    """Data the other side sent after ``closer``'s FIN and ``closer`` acknowledged."""
    other = _other(closer)
    nbytes, idx = _new_data_after(tr, other, fin_i, len(tr.flags))
    if not nbytes:
        return []
    top_ack = _max_ack(tr, closer, fin_i, len(tr.flags))
    data = [tr.steps[j].seg for j in idx]
    acked = sum(
        s.payload_len
        for s in data
        if top_ack is not None and seq_leq(seq_add(s.seq, s.payload_len), top_ack)
    )
    if not acked:
        return []
    fin = tr.steps[fin_i].seg
    span = _dur(data[-1].ts_ns - fin.ts_ns)
    count = f"{nbytes} bytes in {_plural(len(data), 'segment')}"
    acked_text = "all acknowledged" if acked == nbytes else f"{acked} of them acknowledged"
    return [
        Finding(
            tr.conn.conn_id,
            Code.HALF_CLOSE,
            other,
            data[0].frame,
            data[0].ts_ns,
            _frames((fin.frame, data[0].frame, data[-1].frame)),
            "RFC9293 3.6",
            f"{other} kept sending after the {closer}'s FIN (frame {fin.frame}): {count} "
            f"(frames {data[0].frame}-{data[-1].frame}) over {span}, {acked_text} by the "
            f"{closer}: a half-close (the {closer} had shut down only its sending side)",
            float(acked),
        )
    ]


def _open_at_end(tr: _Trace, capture_end_ns: int) -> list[Finding]:
    conn = tr.conn
    c, s = conn.client.state, conn.server.state
    if c in _DONE or s in _DONE or not tr.flags:
        return []
    if c is State.SYN_SENT and s in (State.LISTEN, State.CLOSED, State.UNKNOWN):
        return []  # a SYN nobody answered: syn_unanswered says it
    last = tr.steps[-1].seg
    if c is s:
        states = f"both endpoints in {c.value}"
    else:
        states = f"the client in {c.value} and the server in {s.value}"
    nothing = "" if conn.first_fin or conn.first_rst else ": no FIN or RST was seen"
    return [
        Finding(
            conn.conn_id,
            Code.OPEN_AT_END,
            "",
            last.frame,
            last.ts_ns,
            (last.frame,),
            "RFC9293 3.3.2",
            f"the capture ends {_dur(capture_end_ns - last.ts_ns)} after this connection's last "
            f"segment (frame {last.frame}) with {states}{nothing}",
            seconds(capture_end_ns - last.ts_ns),
        )
    ]


# -- SYNs ------------------------------------------------------------------------------


def _syn_findings(tr: _Trace, capture_end_ns: int) -> list[Finding]:
    conn = tr.conn
    out = []
    copies: dict[str, list[Segment]] = {"client": [], "server": []}
    for i in tr.syns:  # SYN without RST
        step = tr.steps[i]
        seg = step.seg
        mine = copies[_role(step)]
        if not mine or (seg.seq == mine[0].seq and not _capture_duplicate(mine[-1], seg)):
            mine.append(seg)
    for role, segs in copies.items():
        if len(segs) < 2:
            continue
        what = "SYN-ACK" if _fl(segs[0], Bit.ACK) else "SYN"
        gaps = ", ".join(_dur(b.ts_ns - a.ts_ns) for a, b in pairwise(segs))
        answer = (
            "the client's ACK of it had not arrived"
            if what == "SYN-ACK"
            else "no SYN-ACK came back in between"
        )
        out.append(
            Finding(
                conn.conn_id,
                Code.SYN_RETRANSMIT,
                role,
                segs[1].frame,
                segs[1].ts_ns,
                _frames(s.frame for s in segs),
                "RFC6298 5.5, RFC9293 3.8.1",
                f"{role} sent its {what} {len(segs)} times (frames "
                f"{_list([s.frame for s in segs])}; resent after {gaps}): {answer}",
                float(len(segs) - 1),
            )
        )
    syns = copies["client"]
    if (
        syns
        and not _fl(syns[0], Bit.ACK)
        and not conn.saw_synack
        and conn.server.pkts == 0
        and not conn.client.rsts  # the client gave up itself: its RST finding says so
    ):
        tail = _dur(capture_end_ns - syns[-1].ts_ns)
        many = (
            f"{len(syns)} copies, frames {_list([s.frame for s in syns])}, over "
            f"{_dur(syns[-1].ts_ns - syns[0].ts_ns)}"
            if len(syns) > 1
            else f"frame {syns[0].frame}"
        )
        out.append(
            Finding(
                conn.conn_id,
                Code.SYN_UNANSWERED,
                "client",
                syns[0].frame,
                syns[0].ts_ns,
                _frames(s.frame for s in syns),
                "RFC9293 3.5, RFC6298 5.5",
                f"client's SYN ({many}) got neither SYN-ACK nor RST from the server "
                f"(the capture ends {tail} after the last one): the server dropped it (full SYN "
                "or accept queue), a filter dropped it, or it was lost; the capture cannot tell "
                "which",
                float(len(syns)),
            )
        )
    return out


# -- the tracker's anomalies -----------------------------------------------------------


def _anomaly_findings(conn: Connection) -> list[Finding]:
    return [
        Finding(
            conn.conn_id,
            _ANOMALY_CODE.get(a.code.value, Code.NO_TRANSITION),
            a.endpoint,
            a.frame,
            a.ts_ns,
            (a.frame,),
            _ANOMALY_RFC.get(a.code, "RFC9293 3.10"),
            f"{a.endpoint} in {a.state.value}: {a.detail} (frame {a.frame}, event {a.event}"
            + ("" if a.code.value in _ANOMALY_CODE else f", anomaly {a.code.value}")
            + ")",
            1.0,
        )
        for a in conn.anomalies
        if a.code not in _MERGED_ANOMALIES
    ]


# -- composition -----------------------------------------------------------------------


def detect(
    conn: Connection, prev: Connection | None, config: Config, capture_end_ns: int
) -> list[Finding]:
    """Every finding for one connection, in frame order.

    ``prev`` is the previous incarnation of the same 4-tuple (``conn.prev_conn_id``)
    or None; ``capture_end_ns`` is the capture's last TCP segment time.
    """
    return _detect(_Trace(conn), prev, config, capture_end_ns)


def detect_with_teardown(
    conn: Connection, prev: Connection | None, config: Config, capture_end_ns: int
) -> tuple[list[Finding], dict[str, Any]]:
    """``detect``, and ``teardown_facts`` of its findings as a dict, reading the trace once.

    The dict maps each ``TeardownFacts`` field, in order, to its value (the
    connections table's teardown columns): ``TeardownFacts(**columns)`` is
    ``teardown_facts(conn, prev, findings, capture_end_ns)``.
    """
    found, values = detect_with_teardown_values(conn, prev, config, capture_end_ns)
    return found, dict(zip(_TEARDOWN_NAMES, values, strict=True))


def detect_with_teardown_values(
    conn: Connection, prev: Connection | None, config: Config, capture_end_ns: int
) -> tuple[list[Finding], TeardownValues]:
    """``detect_with_teardown`` with the teardown columns as a tuple, in order (no dict):
    ``TeardownFacts(*values)`` is ``teardown_facts(conn, prev, findings, capture_end_ns)``."""
    tr = _Trace(conn)
    found = _detect(tr, prev, config, capture_end_ns)
    return found, _teardown_columns(tr, prev, found, capture_end_ns)


# Codes in vocabulary order: the tie-break among findings at one frame.
_CODE_ORDER: Final = list(Code)


def _detect(
    tr: _Trace, prev: Connection | None, config: Config, capture_end_ns: int
) -> list[Finding]:
    conn = tr.conn
    # A detector whose segments or records are absent has nothing to say: no FIN
    # moved or sent twice, no FIN finding; no RST, no RST finding; no previous
    # incarnation, no reuse and no stale segment; a SYN-ACK seen and one SYN per
    # endpoint at most, no SYN finding; no anomaly.
    found = []
    if tr.fins:
        _, moved = _fin_groups(tr)
        if moved or tr.fins_resent["client"] or tr.fins_resent["server"]:
            # (with neither, every FIN group is one copy: _fin_findings has nothing)
            found += _fin_findings(tr, capture_end_ns)
    if tr.rsts:
        found += _rst_findings(tr, prev, config)
    if prev is not None:
        found += _reuse_findings(conn, prev, config)
        found += _stale_findings(conn, prev)
    found += _close_findings(tr, config, capture_end_ns)
    syns = tr.syns
    if syns and (
        not conn.saw_synack  # syn_unanswered's first condition
        or len(syns) > 2
        or (len(syns) == 2 and tr.directions[syns[0]] == tr.directions[syns[1]])
    ):  # (else one SYN per endpoint at most: no copies to count either)
        found += _syn_findings(tr, capture_end_ns)
    if conn.anomalies:
        found += _anomaly_findings(conn)
    if len(found) < 2:
        return found
    order = _CODE_ORDER
    return sorted(
        found,
        key=lambda f: (f.frame if f.frame is not None else 1 << 62, order.index(f.code)),
    )


def detect_all(conns: Sequence[Connection], config: Config, capture_end_ns: int) -> list[Finding]:
    """Findings of every connection (each with its previous incarnation), by connection."""
    by_id = {c.conn_id: c for c in conns}
    out = []
    for conn in conns:
        prev = by_id.get(conn.prev_conn_id) if conn.prev_conn_id is not None else None
        out.extend(detect(conn, prev, config, capture_end_ns))
    return out


# -- per-connection facts for the connections table ---------------------------------------


@dataclass(frozen=True, slots=True)
class TeardownFacts:
    """The teardown columns of one connection (see docs/findings.md for each definition)."""

    client_fin_retransmits: int
    server_fin_retransmits: int
    final_ack_lost: bool
    final_ack_seen: bool | None
    rst_count: int
    rst_from: str
    rst_causes: str
    tuple_reused: bool
    reuse_gap_s: float | None
    reuse_within_time_wait: bool | None
    stale_segments: int
    close_wait_s: float | None
    fin_wait_2_s: float | None
    time_wait_s: float | None


_RST_CODES: Final = frozenset(
    {
        Code.RST_REFUSED,
        Code.RST_ABORT,
        Code.RST_UNREAD_DATA,
        Code.RST_DATA_AFTER_CLOSE,
        Code.RST_NO_STATE,
        Code.RST_IN_TIME_WAIT,
        Code.RST_OUT_OF_WINDOW,
    }
)


def teardown_facts(
    conn: Connection,
    prev: Connection | None,
    findings: Sequence[Finding],
    capture_end_ns: int,
) -> TeardownFacts:
    """The connection's teardown columns, from its trace and its findings."""
    return TeardownFacts(*_teardown_columns(_Trace(conn), prev, findings, capture_end_ns))


# TeardownFacts' fields, in order, and the types of their values (a tuple of these
# is held unboxed, compiled).
_TEARDOWN_NAMES: Final = tuple(f.name for f in fields(TeardownFacts))
TeardownValues = tuple[
    int,
    int,
    bool,
    bool | None,
    int,
    str,
    str,
    bool,
    float | None,
    bool | None,
    int,
    float | None,
    float | None,
    float | None,
]


def _teardown_columns(
    tr: _Trace,
    prev: Connection | None,
    findings: Sequence[Finding],
    capture_end_ns: int,
) -> TeardownValues:
    """``teardown_facts``' fields, in order (cheaper than the dataclass or a dict)."""
    conn = tr.conn
    groups, _ = _fin_groups(tr)
    retx = tr.fins_resent  # sum(len(g.copies) - 1 for g in groups[role])
    final_seen: bool | None = None
    # A last FIN (_is_last_fin: the peer's FIN went out before it) says whether the
    # final ACK was seen; with several, the last looked at (client's, then server's).
    client, server = groups["client"], groups["server"]
    for mine, peer, peer_role in ((client, server, "server"), (server, client, "client")):
        if not peer:
            continue
        peer_first = peer[0].copies[0]
        for g in mine:
            if peer_first < g.copies[0]:
                hi = g.copies[1] if len(g.copies) > 1 else len(tr.flags)
                first_ack = _first_ack_between(tr, peer_role, g.fin_seq, g.copies[0], hi)
                final_seen = first_ack is not None
    rst_from = ""
    if tr.rsts:
        rst_roles = {"client" if tr.directions[i] else "server" for i in tr.rsts}
        rst_from = "both" if len(rst_roles) == 2 else rst_roles.pop()
    causes: list[str] = []
    lost = False
    stale = 0
    for f in findings:
        if f.code in _RST_CODES:
            if f.code.value not in causes:
                causes.append(f.code.value)
        elif f.code is Code.LOST_FINAL_ACK:
            lost = True
        elif f.code is Code.STALE_DUPLICATE:
            stale += 1
    gap = within = None
    if prev is not None:
        gap_ns, _, cut_short = _reuse_facts(conn, prev)
        gap, within = seconds(gap_ns), cut_short
    close_wait = fin_wait_2 = time_wait = None
    held, _, total = tr.held(_CLOSE_WAIT, capture_end_ns)
    if held:
        close_wait = seconds(total)
    held, _, total = tr.held(_FIN_WAIT_2, capture_end_ns)
    if held:
        fin_wait_2 = seconds(total)
    held, _, total = tr.held(_TIME_WAIT, capture_end_ns)
    if held:
        time_wait = seconds(total)
    return (
        retx["client"],
        retx["server"],
        lost,
        final_seen,
        len(tr.rsts),
        rst_from,
        ";".join(causes),
        conn.prev_conn_id is not None,
        gap,
        within,
        stale,
        close_wait,
        fin_wait_2,
        time_wait,
    )
