"""A tiny segment builder for tracker tests: one connection on the wire, both sides.

Theory of operation
-------------------
``Wire`` holds a client (10.0.0.1:40000) and a server (10.0.0.2:80) and a
``Tracker``. Each side remembers its ISN and the next sequence number it will
send (``nxt``); a segment's sequence number defaults to its sender's ``nxt``
and its ACK number to the peer's ``nxt`` (everything the peer has sent so far),
so ordinary conversations need no numbers at all. Overrides build the unusual
ones: ``seq=`` for a retransmission or an out-of-window RST (``advance=False``
for a stray segment that is not part of the sender's stream), ``ack=`` for an
ACK that does not cover a FIN (FINs crossing in a simultaneous close, an ACK
lost after the capture point), ``window=`` and ``length=``.

``send`` builds a segment and feeds it to the tracker with the next frame
number; ``seen=False`` builds it without feeding it (lost before the capture
point, or missed by the capture): the sender's sequence space still advances
and the frame number is not used. Timestamps are integer nanoseconds, 1 ms
apart unless ``ts_ns=`` is given (later segments continue from there).

The state-pair methods (``established()``, ``fin_wait_2()``, ``time_wait()``,
...) play the usual segments and check that both endpoints got where their
name says, so a test can start straight from a state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tcpflow_analyzer.config import Config
from tcpflow_analyzer.segment import Flags, Segment
from tcpflow_analyzer.seq import seq_add, seq_gt
from tcpflow_analyzer.states import Anomaly, State
from tcpflow_analyzer.tracker import AnomalyRecord, Connection, Endpoint, Tracker, TransitionRecord

__all__ = ["CLIENT", "MS", "SECOND", "SERVER", "Side", "Wire", "other"]

CLIENT = "client"
SERVER = "server"
MS = 1_000_000
SECOND = 1_000_000_000

_START_NS = 1_700_000_000 * SECOND


@dataclass
class Side:
    """What one side has sent so far."""

    addr: bytes
    port: int
    isn: int
    nxt: int | None = None  # next sequence number to send; None before the SYN
    window: int = 65535


class Wire:
    """A client and a server exchanging segments, replayed by a ``Tracker`` as they go."""

    def __init__(
        self,
        *,
        client_isn: int = 1_000,
        server_isn: int = 500_000,
        msl: float | None = None,
        start_ns: int = _START_NS,
        step_ns: int = MS,
    ) -> None:
        self.tracker = Tracker(Config() if msl is None else Config(msl=msl))
        self.client = Side(bytes([10, 0, 0, 1]), 40000, client_isn)
        self.server = Side(bytes([10, 0, 0, 2]), 80, server_isn)
        self.frame = 0
        self.ts_ns = start_ns - step_ns
        self.step_ns = step_ns
        self.sent: list[Segment] = []  # every segment fed to the tracker

    # -- building segments ---------------------------------------------------

    def side(self, role: str) -> Side:
        return self.client if role == CLIENT else self.server

    def peer(self, role: str) -> Side:
        return self.server if role == CLIENT else self.client

    def nxt(self, role: str) -> int:
        """The next sequence number ``role`` would send (its ISN before its SYN)."""
        side = self.side(role)
        return side.isn if side.nxt is None else side.nxt

    def send(
        self,
        sender: str,
        flags: int,
        *,
        seq: int | None = None,
        ack: int | None = None,
        window: int | None = None,
        length: int = 0,
        ts_ns: int | None = None,
        seen: bool = True,
        advance: bool = True,
    ) -> Segment:
        """Build one segment from ``sender`` and, if ``seen``, feed it to the tracker.

        ``advance=False``: a stray segment (a stale duplicate, a SYN with a foreign
        ISN) that does not move the sender's own sequence space.
        """
        s, d = self.side(sender), self.peer(sender)
        if seq is None:
            seq = s.isn if flags & Flags.SYN else self.nxt(sender)
        if ack is None:
            ack = d.nxt if flags & Flags.ACK and d.nxt is not None else 0
        self.ts_ns = self.ts_ns + self.step_ns if ts_ns is None else ts_ns
        seg = Segment(
            frame=self.frame + 1 if seen else 0,
            ts_ns=self.ts_ns,
            vlan=(),
            src=s.addr,
            dst=d.addr,
            sport=s.port,
            dport=d.port,
            seq=seq,
            ack=ack,
            flags=int(flags),
            window=s.window if window is None else window,
            payload_len=length,
            ip_len=40 + length,
        )
        end = seq_add(seq, seg.seg_len)
        if advance and not flags & Flags.RST and (s.nxt is None or seq_gt(end, s.nxt)):
            s.nxt = end
        if seen:
            self.frame += 1
            self.sent.append(seg)
            self.tracker.add(seg)
        return seg

    def play(self, segments: Iterable[tuple[str, int, int, int, int, bool]]) -> Wire:
        """Send generated segments: (sender, flags, seq offset from the sender's next,
        payload (none on a SYN or RST), ms since the previous segment, seen)."""
        for sender, flags, offset, length, gap_ms, seen in segments:
            self.send(
                sender,
                flags,
                seq=seq_add(self.nxt(sender), offset),
                length=0 if flags & (Flags.SYN | Flags.RST) else length,
                ts_ns=self.ts_ns + gap_ms * MS + 1,
                seen=seen,
            )
        return self

    def syn(self, sender: str = CLIENT, *, isn: int | None = None, **kw: Any) -> Segment:
        """A SYN; ``isn=`` starts a new ISN (a new incarnation), else the side's own."""
        if isn is not None:
            self.side(sender).isn, self.side(sender).nxt = isn, None
        return self.send(sender, Flags.SYN, **kw)

    def synack(self, sender: str = SERVER, *, isn: int | None = None, **kw: Any) -> Segment:
        if isn is not None:
            self.side(sender).isn, self.side(sender).nxt = isn, None
        return self.send(sender, Flags.SYN | Flags.ACK, **kw)

    def ack(self, sender: str, **kw: Any) -> Segment:
        return self.send(sender, Flags.ACK, **kw)

    def data(self, sender: str, length: int = 100, **kw: Any) -> Segment:
        return self.send(sender, Flags.ACK | Flags.PSH, length=length, **kw)

    def fin(self, sender: str, **kw: Any) -> Segment:
        """FIN+ACK, as every stack sends it after the handshake."""
        return self.send(sender, Flags.FIN | Flags.ACK, **kw)

    def rst(self, sender: str, *, with_ack: bool = False, **kw: Any) -> Segment:
        flags = Flags.RST | Flags.ACK if with_ack else Flags.RST
        return self.send(sender, flags, **kw)

    def idle_until(self, ts_ns: int) -> Segment:
        """Move capture time to ``ts_ns`` with a segment of an unrelated flow, then finish.

        TIME_WAIT expiry is applied lazily; ``Tracker.finish`` applies it up to
        the capture's last timestamp, which this sets exactly.
        """
        self.frame += 1
        seg = Segment(
            frame=self.frame,
            ts_ns=ts_ns,
            vlan=(),
            src=bytes([10, 9, 9, 9]),
            dst=bytes([10, 9, 9, 8]),
            sport=50000,
            dport=443,
            seq=1,
            ack=1,
            flags=int(Flags.ACK),
            window=1000,
            payload_len=0,
            ip_len=40,
        )
        self.ts_ns = ts_ns
        self.tracker.add(seg)
        self.tracker.finish()
        return seg

    # -- reading the tracker -------------------------------------------------

    @property
    def conns(self) -> list[Connection]:
        """Every incarnation of this wire's 4-tuple, oldest first."""
        mine = {(self.client.addr, self.client.port), (self.server.addr, self.server.port)}
        return [
            c
            for c in self.tracker.connections
            if {(c.client.addr, c.client.port), (c.server.addr, c.server.port)} == mine
        ]

    @property
    def conn(self) -> Connection:
        """The latest incarnation."""
        return self.conns[-1]

    def endpoint(self, role: str, conn: Connection | None = None) -> Endpoint:
        c = self.conn if conn is None else conn
        return c.client if role == CLIENT else c.server

    def state(self, role: str) -> State:
        return self.endpoint(role).state

    def records(
        self, role: str | None = None, seg: Segment | None = None, conn: Connection | None = None
    ) -> list[TransitionRecord]:
        """Transition records of the latest connection, for one role and/or one segment."""
        c = self.conn if conn is None else conn
        return [
            r
            for r in c.transitions
            if (role is None or r.endpoint == role) and (seg is None or r.frame == seg.frame)
        ]

    def anomalies(self, code: Anomaly | None = None) -> list[AnomalyRecord]:
        return [a for a in self.conn.anomalies if code is None or a.code is code]

    def expect(self, client: State, server: State) -> Wire:
        """Check both endpoints' states (for the state-pair methods)."""
        got = (self.state(CLIENT), self.state(SERVER))
        if got != (client, server):
            lines = [f"expected {client}/{server}, tracker has {got[0]}/{got[1]}"]
            lines += [f"  {r}" for r in self.conn.transitions]
            lines += [f"  {a}" for a in self.conn.anomalies]
            raise AssertionError("\n".join(lines))
        return self

    # -- straight into a state pair --------------------------------------------

    def syn_sent(self) -> Wire:
        """Client SYN_SENT, server LISTEN."""
        self.syn(CLIENT)
        return self.expect(State.SYN_SENT, State.LISTEN)

    def syn_received(self) -> Wire:
        """Client SYN_SENT, server SYN_RECEIVED (SYN-ACK sent, not yet ACKed)."""
        self.syn_sent()
        self.synack(SERVER)
        return self.expect(State.SYN_SENT, State.SYN_RECEIVED)

    def established(self) -> Wire:
        """Three-way handshake done."""
        self.syn_received()
        self.ack(CLIENT)
        return self.expect(State.ESTABLISHED, State.ESTABLISHED)

    def _pair(self, closer: str, closer_state: State, other_state: State) -> Wire:
        if closer == CLIENT:
            return self.expect(closer_state, other_state)
        return self.expect(other_state, closer_state)

    def fin_wait_1(self, closer: str = CLIENT) -> Wire:
        """``closer`` FIN_WAIT_1 (FIN sent, unacknowledged), the other ESTABLISHED."""
        self.established()
        self.fin(closer)
        return self._pair(closer, State.FIN_WAIT_1, State.ESTABLISHED)

    def fin_wait_2(self, closer: str = CLIENT) -> Wire:
        """``closer`` FIN_WAIT_2, the other CLOSE_WAIT (it ACKed the FIN)."""
        self.fin_wait_1(closer)
        self.ack(other(closer))
        return self._pair(closer, State.FIN_WAIT_2, State.CLOSE_WAIT)

    close_wait = fin_wait_2

    def last_ack(self, closer: str = CLIENT) -> Wire:
        """``closer`` FIN_WAIT_2, the other LAST_ACK (its FIN sent, not yet ACKed)."""
        self.fin_wait_2(closer)
        self.fin(other(closer))
        return self._pair(closer, State.FIN_WAIT_2, State.LAST_ACK)

    def time_wait(self, closer: str = CLIENT) -> Wire:
        """Four-segment close done: ``closer`` TIME_WAIT, the other CLOSED."""
        self.last_ack(closer)
        self.ack(closer)
        return self._pair(closer, State.TIME_WAIT, State.CLOSED)

    def fins_crossed(self) -> Wire:
        """Both FIN_WAIT_1: the FINs crossed, neither acknowledges the other."""
        self.established()
        client_fin = self.fin(CLIENT)
        self.fin(SERVER, ack=client_fin.seq)
        return self.expect(State.FIN_WAIT_1, State.FIN_WAIT_1)

    def closing(self) -> Wire:
        """Client CLOSING (got the server's FIN, its own not ACKed); server TIME_WAIT.

        The client's ACK of the server's FIN lies after the client's FIN, which
        proves the server got that FIN too: CLOSING, then TIME_WAIT at once.
        """
        self.fins_crossed()
        self.ack(CLIENT)
        return self.expect(State.CLOSING, State.TIME_WAIT)


def other(role: str) -> str:
    return SERVER if role == CLIENT else CLIENT
