"""Flow table and state tracker: every segment replayed for both endpoints.

Theory of operation
-------------------
Connections are keyed by VLAN tags + both (address, port) pairs. The client is
the endpoint that sent the first SYN; when the capture starts mid-connection
the roles are guessed (``roles`` says how). A SYN with a new ISN on a key whose
connection has ended (an endpoint is CLOSED or in TIME_WAIT) starts a new
*incarnation*; a SYN with the same ISN is a retransmission.

Each segment from endpoint S to endpoint D becomes events for both (see
``states.py`` for what the events do), in three steps:

1. What S's acknowledgment field proves S *received*. A SYN or a FIN from D
   takes effect at S only when S's own ACK covers it (or S sends a segment
   whose ACK covers it). Until then S may not have received it: it could have
   been lost after the capture point. This is how a simultaneous close is told
   from an ordinary one: the FIN that crossed the other in flight does not
   acknowledge it. An RST's ACK field proves nothing: the RST rejected the
   segment.
2. What S *did*: sent a SYN, a SYN-ACK, a FIN, an RST, or data/ACK. A FIN sent
   again after we saw it acknowledged means the ACK was lost after the capture
   point: the tracker moves the endpoint back (``fin_retransmit``).
3. What D *gets* at once: an RST (if acceptable: RFC 9293 3.10.7.3 in SYN-SENT,
   the receive window otherwise, RFC 5961; an RST D must reject changes neither
   endpoint, since it may be forged or stale), and the ACK field's news about D's
   own SYN or FIN. Also, a segment from S that lies *after* S's FIN in
   sequence space proves D got that FIN (TCP delivers in order).

TIME_WAIT ends 2*MSL after it was entered (or after the last FIN it re-ACKed);
that timeout is applied lazily, when the connection's next segment arrives or
at the end of the capture, with the exact expiry time and no frame.

The tracker never stops on a bad segment: an event with no rule in the
endpoint's state is recorded as an anomaly (``states.Anomaly``) and ignored.
"""

from __future__ import annotations

from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from .compact import Frozen, Trace
from .config import Config
from .segment import Bit, Segment, by_fields
from .seq import seq_add, seq_diff, seq_geq, seq_gt
from .states import Anomaly, Event, State, presumed_rule, presumed_state, transition
from .zeek import ZeekConn, _Switch

if TYPE_CHECKING:
    from .freeze import RowFreezer

__all__ = [
    "SAME_CONNECTION",
    "AnomalyRecord",
    "Connection",
    "Endpoint",
    "Step",
    "Stop",
    "Tracker",
    "TransitionRecord",
    "play",
    "track",
]

# Module switch for add's shortcut for a segment of the last segment's connection.
# Off, every segment finds its connection by its key; the tests replay every
# capture both ways and require identical results.
SAME_CONNECTION: Final = _Switch(True)

# Events whose self-loops are recorded in transitions (they mean something:
# a retransmitted SYN/FIN, a FIN re-ACKed in TIME_WAIT). ACKs and data are not.
_RECORDED_SELF_LOOPS: Final = frozenset(
    {
        Event.SND_SYN,
        Event.SND_SYN_ACK,
        Event.SND_FIN,
        Event.RCV_FIN,
        Event.RCV_SYN,
        Event.SND_RST,
        Event.RCV_RST,
    }
)

# Ports that name a service even above 1024: used to guess roles mid-connection.
_SERVICE_PORTS: Final = frozenset(
    {
        1433,
        1521,
        2049,
        3306,
        3389,
        5432,
        5672,
        5900,
        6379,
        6443,
        6667,
        8000,
        8080,
        8443,
        8888,
        9000,
        9092,
        9200,
        11211,
        27017,
    }
)


_T = TypeVar("_T")

_NEVER: Final = 1 << 126  # later than any capture time
_NO_HEAD: Final = 0  # no conn_id (they count from 1): the head of an empty table
_FETCH_EVERY: Final = 1024  # finish(): the frozen records of that many read together
_TIME_WAIT: Final = State.TIME_WAIT
_ESTABLISHED: Final = State.ESTABLISHED
_FINISHED: Final = (State.CLOSED, State.TIME_WAIT)
_FINISHED_OR_LISTEN: Final = (State.CLOSED, State.TIME_WAIT, State.LISTEN)
# An ACK with no SYN, FIN or RST (PSH, URG, ECE, CWR do not matter).
_ACK_ONLY_MASK: Final = Bit.ACK | Bit.SYN | Bit.FIN | Bit.RST

# How far (bytes of sequence space) an ACK may be from the other half's SND.NXT
# for two one-way halves on different VLANs to be joined.
_MERGE_SLACK: Final = 1 << 20


# The records below are made in numbers: slotted, not frozen, their __init__
# written out and __reduce__ by their fields (see segment.py).


@dataclass(slots=True, init=False)
class TransitionRecord:
    """One state change (or meaningful self-loop) of one endpoint."""

    endpoint: str  # "client" | "server"
    frame: int | None  # None for timer events (TIME_WAIT expiry)
    ts_ns: int
    from_state: State
    to_state: State
    event: Event
    rule: str

    def __init__(
        self,
        endpoint: str,
        frame: int | None,
        ts_ns: int,
        from_state: State,
        to_state: State,
        event: Event,
        rule: str,
    ) -> None:
        self.endpoint = endpoint
        self.frame = frame
        self.ts_ns = ts_ns
        self.from_state = from_state
        self.to_state = to_state
        self.event = event
        self.rule = rule

    def __reduce__(self) -> tuple[type[Any], tuple[object, ...]]:
        return by_fields(self)


@dataclass(slots=True, init=False)
class Step:
    """One segment of a connection's replayed trace, with both states after it."""

    seg: Segment
    from_client: bool
    client_state: State
    server_state: State

    def __init__(
        self, seg: Segment, from_client: bool, client_state: State, server_state: State
    ) -> None:
        self.seg = seg
        self.from_client = from_client
        self.client_state = client_state
        self.server_state = server_state

    def __reduce__(self) -> tuple[type[Any], tuple[object, ...]]:
        return by_fields(self)


@dataclass(slots=True, init=False)
class AnomalyRecord:
    """A segment that had no legal transition, or was not acceptable."""

    endpoint: str
    frame: int
    ts_ns: int
    state: State
    event: str
    code: Anomaly
    detail: str

    def __init__(
        self,
        endpoint: str,
        frame: int,
        ts_ns: int,
        state: State,
        event: str,
        code: Anomaly,
        detail: str,
    ) -> None:
        self.endpoint = endpoint
        self.frame = frame
        self.ts_ns = ts_ns
        self.state = state
        self.event = event
        self.code = code
        self.detail = detail

    def __reduce__(self) -> tuple[type[Any], tuple[object, ...]]:
        return by_fields(self)


@dataclass(slots=True, init=False)
class Endpoint:
    """One side of a connection, as the capture lets us infer it (cf. Zeek's TCP_Endpoint)."""

    role: str  # "client" | "server"
    state: State
    addr: bytes
    port: int
    isn: int | None = None  # sequence number of the SYN this endpoint sent
    syn_is_synack: bool = False
    syn_acked: bool = False
    fin_seq: int | None = None  # sequence number the FIN occupies
    fin_acked: bool = False
    fins: int = 0  # FIN segments sent
    rsts: int = 0  # RST segments sent
    got_peer_syn: bool = False
    got_peer_fin: bool = False
    snd_nxt: int | None = None  # highest sequence number sent + 1
    window: int | None = None  # last raw window advertised
    wscale: int | None = None  # window scale option from its SYN
    tw_deadline_ns: int | None = None
    pkts: int = 0
    payload_bytes: int = 0
    bad_checksums: int = 0  # segments whose IPv4 or TCP checksum did not verify

    # Two made per connection: written out (see segment.py), as generated.
    def __init__(
        self,
        role: str,
        state: State,
        addr: bytes,
        port: int,
        isn: int | None = None,
        syn_is_synack: bool = False,
        syn_acked: bool = False,
        fin_seq: int | None = None,
        fin_acked: bool = False,
        fins: int = 0,
        rsts: int = 0,
        got_peer_syn: bool = False,
        got_peer_fin: bool = False,
        snd_nxt: int | None = None,
        window: int | None = None,
        wscale: int | None = None,
        tw_deadline_ns: int | None = None,
        pkts: int = 0,
        payload_bytes: int = 0,
        bad_checksums: int = 0,
    ) -> None:
        self.role = role
        self.state = state
        self.addr = addr
        self.port = port
        self.isn = isn
        self.syn_is_synack = syn_is_synack
        self.syn_acked = syn_acked
        self.fin_seq = fin_seq
        self.fin_acked = fin_acked
        self.fins = fins
        self.rsts = rsts
        self.got_peer_syn = got_peer_syn
        self.got_peer_fin = got_peer_fin
        self.snd_nxt = snd_nxt
        self.window = window
        self.wscale = wscale
        self.tw_deadline_ns = tw_deadline_ns
        self.pkts = pkts
        self.payload_bytes = payload_bytes
        self.bad_checksums = bad_checksums

    def __reduce__(self) -> tuple[type[Any], tuple[object, ...]]:
        return by_fields(self)


@dataclass(slots=True, init=False)
class Connection:
    """One incarnation of a 4-tuple (plus VLAN tags)."""

    conn_id: int
    key: tuple[object, ...]
    vlan: tuple[int, ...]
    client: Endpoint
    server: Endpoint
    incarnation: int
    prev_conn_id: int | None
    roles: str  # how the client was chosen: syn | synack | port | first_packet
    first_frame: int
    start_ns: int
    first_sender: tuple[bytes, int]
    # Zeek's view: the conn.log records this connection makes, each with its
    # first packet's sender. Zeek splits a 4-tuple by its own timers, so one
    # incarnation can be several Zeek records (zeek.zeek_starts_new_conn).
    zeek_records: list[tuple[tuple[bytes, int], ZeekConn]]
    reverse_vlan: tuple[int, ...] | None = None  # server->client tags when they differ
    prev: Connection | None = None  # the previous incarnation, while this one is held
    retired_ns: int | None = None  # when the record was closed (see Tracker)
    dropped: bool = False  # half-open, dropped under memory pressure (counted only)
    retired: bool = False
    last_frame: int = 0
    end_ns: int = 0
    packets: int = 0
    saw_syn: bool = False
    saw_synack: bool = False
    handshake_acked: bool = False
    first_fin: str | None = None  # role of the first FIN sender
    first_fin_frame: int | None = None
    first_rst: str | None = None
    first_rst_frame: int | None = None
    fin_before_rst: bool = False
    simultaneous_close: bool = False
    half_close_bytes: int = 0
    trace: Trace = field(init=False)  # packed; reads as a sequence of Step
    transitions: list[TransitionRecord] = field(default_factory=list)
    anomalies: list[AnomalyRecord] = field(default_factory=list)

    # One made per connection: written out (see segment.py). It takes what the
    # generated one would, but for the two lists: None (the default) is a new list.
    def __init__(
        self,
        conn_id: int,
        key: tuple[object, ...],
        vlan: tuple[int, ...],
        client: Endpoint,
        server: Endpoint,
        incarnation: int,
        prev_conn_id: int | None,
        roles: str,
        first_frame: int,
        start_ns: int,
        first_sender: tuple[bytes, int],
        zeek_records: list[tuple[tuple[bytes, int], ZeekConn]],
        reverse_vlan: tuple[int, ...] | None = None,
        prev: Connection | None = None,
        retired_ns: int | None = None,
        dropped: bool = False,
        retired: bool = False,
        last_frame: int = 0,
        end_ns: int = 0,
        packets: int = 0,
        saw_syn: bool = False,
        saw_synack: bool = False,
        handshake_acked: bool = False,
        first_fin: str | None = None,
        first_fin_frame: int | None = None,
        first_rst: str | None = None,
        first_rst_frame: int | None = None,
        fin_before_rst: bool = False,
        simultaneous_close: bool = False,
        half_close_bytes: int = 0,
        transitions: list[TransitionRecord] | None = None,
        anomalies: list[AnomalyRecord] | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.key = key
        self.vlan = vlan
        self.client = client
        self.server = server
        self.incarnation = incarnation
        self.prev_conn_id = prev_conn_id
        self.roles = roles
        self.first_frame = first_frame
        self.start_ns = start_ns
        self.first_sender = first_sender
        self.zeek_records = zeek_records
        self.reverse_vlan = reverse_vlan
        self.prev = prev
        self.retired_ns = retired_ns
        self.dropped = dropped
        self.retired = retired
        self.last_frame = last_frame
        self.end_ns = end_ns
        self.packets = packets
        self.saw_syn = saw_syn
        self.saw_synack = saw_synack
        self.handshake_acked = handshake_acked
        self.first_fin = first_fin
        self.first_fin_frame = first_fin_frame
        self.first_rst = first_rst
        self.first_rst_frame = first_rst_frame
        self.fin_before_rst = fin_before_rst
        self.simultaneous_close = simultaneous_close
        self.half_close_bytes = half_close_bytes
        self.trace = Trace((client.addr, client.port), (server.addr, server.port), vlan)
        self.transitions = [] if transitions is None else transitions
        self.anomalies = [] if anomalies is None else anomalies

    def __reduce__(self) -> tuple[Any, tuple[object, ...]]:
        return _connection_by_fields, by_fields(self)[1]

    @property
    def zeek(self) -> ZeekConn:
        """The Zeek record that starts with this connection's first packet."""
        return self.zeek_records[0][1]

    def endpoints(self) -> tuple[Endpoint, Endpoint]:
        return self.client, self.server

    def done(self) -> bool:
        """Both endpoints closed (or in TIME_WAIT): only late segments can still come."""
        return self.client.state in _FINISHED and self.server.state in _FINISHED_OR_LISTEN

    def ended(self) -> bool:
        """True when a new SYN may reopen the 4-tuple (RFC 9293 3.10.7.1, RFC 1122 4.2.2.13)."""
        idle = (State.CLOSED, State.TIME_WAIT)
        return self.client.state in idle or self.server.state in idle


def _connection_by_fields(*values: Any) -> Connection:
    """``Connection.__reduce__``'s maker: the connection with these fields (its trace too)."""
    names = [f.name for f in fields(Connection)]
    kwargs = dict(zip(names, values, strict=True))
    trace = kwargs.pop("trace")
    conn = Connection(**kwargs)
    conn.trace = trace
    return conn


def _scaled_window(ep: Endpoint, both_scale: bool) -> int | None:
    if ep.window is None:
        return None
    if both_scale and ep.wscale is not None:
        return ep.window << min(ep.wscale, 14)
    return ep.window


class Tracker:
    """Feed segments in capture order; call ``finish`` at the end.

    A connection is *retired* once it is done (see ``Config.idle_timeout``):
    a later segment on its 4-tuple starts a new connection (the next
    incarnation number). Its ``retired_ns`` is when its record was closed: the
    capture's end, or the time of the segment at which it timed out; states
    and durations "at the end" are as of then. Without ``on_retire`` every
    connection is also kept in ``connections``; with it, each is handed to
    ``on_retire`` when retired and then forgotten, so memory follows the
    connections open at one time, not the capture's length.
    """

    def __init__(
        self,
        config: Config | None = None,
        on_retire: Callable[[Connection], None] | None = None,
        freezer: RowFreezer | None = None,
    ) -> None:
        self.config = config or Config()
        self._freezer = freezer if on_retire is not None else None
        self.connections: list[Connection] = []
        self.expired: Counter[str] = Counter()  # half-open connections dropped, by state
        self._on_retire = on_retire
        self._table: dict[tuple[object, ...], Connection | Frozen] = {}
        # Held connections by last activity: open ones, and closed ones waiting out 2*MSL.
        self._open: OrderedDict[int, Connection] = OrderedDict()
        # Closed ones, live or frozen (freeze.Frozen), by last activity.
        self._closed: OrderedDict[int, Connection | Frozen] = OrderedDict()
        # Closed live ones not yet considered for freezing, by last activity.
        self._to_freeze: OrderedDict[int, Connection] = OrderedDict()
        # Last retired incarnation per key (conn_id, incarnation), bounded.
        self._retired: OrderedDict[tuple[object, ...], tuple[int, int]] = OrderedDict()
        self._by_pair: dict[tuple[object, ...], list[Connection]] = {}
        self._next_id = 1
        self._last_ts_ns = 0
        self.frame = 0  # the frame of the segment add() replays (a native field: see play)
        self.stopped = False  # an on_retire callback raised Stop (see play)
        # Connections the caller wants whole when retired: never frozen (show's).
        self.keep: Callable[[Connection], bool] | None = None
        self._closed_hold_ns = self.config.closed_hold_ns
        self._freeze_ns = self.config.freeze_after_ns
        self._freeze_check_at = 0  # no freezing pass before this time (see _sweep)
        self._idle_ns = self.config.idle_ns
        self._time_wait_ns = self.config.time_wait_ns
        self._max_connections = self.config.max_connections
        self._sweep_at = _NEVER  # no retirement is due before this time (see _sweep)
        self._heads = (_NO_HEAD, _NO_HEAD, _NO_HEAD)  # keys of the heads noted last
        # Sharded runs (shard.py): the first frame of every connection made, in
        # order, and the conn_id rows show for a local one (swapped in while
        # rows are made: _public_ids).
        self.firsts: array[int] | None = None
        self.public_id: Callable[[int], int] | None = None
        # The connection of the last segment, its addresses and ports, and whether
        # it was done (closed) then; see add. None once anything else may move.
        self._last: Connection | None = None
        self._last_vlan: tuple[int, ...] = ()
        self._last_a: bytes = b""
        self._last_pa = 0
        self._last_b: bytes = b""
        self._last_pb = 0
        self._last_done = False
        self.repeats = 0  # segments that took that shortcut

    # -- flow table --------------------------------------------------------

    def tick(self, ts: int) -> None:
        """Move the clock to a segment's time: what ``add`` does before the segment itself.

        A sharded run (shard.py) calls it for the segments of other shards, so
        that timers fire at the same segments as in a one-process run.
        """
        if ts > self._last_ts_ns:
            self._last_ts_ns = ts
        if ts >= self._sweep_at or len(self._open) + len(self._closed) >= self._max_connections:
            self._sweep(ts)

    def add(self, seg: Segment) -> None:
        """Replay one segment.

        Most segments (about 4 in 5 in a busy capture) belong to the connection
        of the segment before. Unless a sweep ran since (``_sweep`` forgets it),
        nothing but that segment's own replay has touched the tables: the key
        still finds that connection, and it is still last in its table. So it is
        recognized by its address pair without making the key, and need not be
        moved to the end of its table (``_hold``) unless it closed.
        """
        self.frame = seg.frame
        self.tick(seg.ts_ns)
        src, dst, sport, dport = seg.src, seg.dst, seg.sport, seg.dport
        last = self._last
        if (
            last is not None
            and (
                (
                    sport == self._last_pa
                    and dport == self._last_pb
                    and src == self._last_a
                    and dst == self._last_b
                )
                or (
                    sport == self._last_pb
                    and dport == self._last_pa
                    and src == self._last_b
                    and dst == self._last_a
                )
            )
            and (seg.vlan is self._last_vlan or seg.vlan == self._last_vlan)
            and not self._starts_new_incarnation(last, seg)
        ):
            self.repeats += 1
            end = last.end_ns
            self._process(last, seg)
            if last.done() != self._last_done or last.end_ns < end:
                self._hold(last)
            # Else it is last in its table already. If it is a head, its due time only
            # moved later: _sweep_at, a lower bound, stays right. (A segment earlier
            # than the one before, as from another NIC queue, moves it earlier:
            # _hold then notes the heads again.)
            return
        # The key: the tags, then both (address, port) pairs, the lesser first.
        if src < dst or (sport <= dport and src == dst):
            key: tuple[object, ...] = (seg.vlan, src, sport, dst, dport)
        else:
            key = (seg.vlan, dst, dport, src, sport)
        conn = self._table.get(key)
        if isinstance(conn, Frozen):
            conn = self._thaw(conn)
        if conn is None and (conn := self._other_vlan_half(key[1:], seg)) is not None:
            self._table[key] = conn
            conn.reverse_vlan = seg.vlan
        if conn is None:
            conn = self._new_connection(key, seg, None)
            self._by_pair.setdefault(key[1:], []).append(conn)
        elif self._starts_new_incarnation(conn, seg):
            prev = conn
            conn = self._new_connection(key, seg, prev)
            self._retire(prev, seg.ts_ns)
            self._note_heads()
        self._process(conn, seg)
        self._hold(conn)
        # The key finds conn now: it was found by it (a frozen one thawed under its own
        # key, the only one a frozen connection has), or filed under it just above.
        if SAME_CONNECTION.on:
            self._last = conn
            self._last_vlan = seg.vlan
            self._last_a, self._last_pa, self._last_b, self._last_pb = src, sport, dst, dport
        else:
            self._last = None

    def finish(self) -> list[Connection]:
        """Apply timers up to the capture's last packet; return the connections kept.

        Every connection still held is retired (in order of first frame); with
        ``on_retire`` the list returned is empty, without it it holds them all
        (but the half-open ones dropped under memory pressure).
        """
        self._last = None
        held = sorted([*self._open.values(), *self._closed.values()], key=_by_id)
        freezer = self._freezer
        for i in range(len(held)):
            conn = held[i]
            if freezer is not None and i % _FETCH_EVERY == 0:
                # The frozen records of the next ones, read together (Spill.fetch).
                some = held[i : i + _FETCH_EVERY]
                freezer.fetch([c for c in some if isinstance(c, Frozen) and not c.retired])
            if self._on_retire is not None or isinstance(conn, Frozen):
                self._retire(conn, self._last_ts_ns)
            else:
                # Kept connections stay in the table: more segments may still be
                # added (a capture read in parts); timers run to the latest time.
                self._expire(conn, self._last_ts_ns)
                conn.retired_ns = self._last_ts_ns
        self._note_heads()
        if self.expired:
            self.connections = [c for c in self.connections if not c.dropped]
        return self.connections

    # -- retiring connections (streaming) ------------------------------------

    def _hold(self, conn: Connection) -> None:
        """File ``conn`` as most recently active, among the open or the closed.

        A table's head changes here only if ``conn`` was a head (it moves to the
        end, or to the other table) or it goes into an empty table: only then are
        the heads noted again (``_note_heads``); otherwise that would change nothing.
        """
        cid = conn.conn_id
        key: Any = cid  # (boxed once for the tables)
        home: OrderedDict[int, Any]
        other: OrderedDict[int, Any]
        done = self._last_done = conn.done()
        if done:
            home, other = self._closed, self._open
        else:
            home, other = self._open, self._closed
        moved = cid in self._heads or not home
        if key in home:
            home.move_to_end(key)
        else:
            if key in other:
                del other[key]
            home[key] = conn  # (a new key goes last)
        if self._freezer is not None:
            to_freeze = self._to_freeze
            if home is self._closed:
                moved = moved or not to_freeze
                if key in to_freeze:
                    to_freeze.move_to_end(key)
                else:
                    to_freeze[key] = conn
            elif key in to_freeze:
                del to_freeze[key]
        if moved:
            self._note_heads()

    def _note_heads(self) -> None:
        """Keep ``_sweep_at`` at or below the due time of the heads (they may have moved).

        A sweep retires from the head of each table, least recently active first,
        and stops at the first that is not due: nothing is due before the earlier
        of the two heads' due times. Every change of a head passes here (a sweep's
        once, when it is done; nothing reads the heads while it runs). The head
        of ``_to_freeze`` is due for the next freezing pass after it is quiet.
        The heads' keys are kept in ``_heads`` for ``_hold``: while they stay the
        heads, their due times stay those noted (a head's ``end_ns`` changes only
        with a segment of its own, after which ``_hold`` moves it; freezing or
        thawing it keeps its key and ``end_ns``).
        """
        at = self._sweep_at
        closed_head = open_head = freeze_head = _NO_HEAD
        # Each table's first key: a loop left at once (compiled, next(iter(...)) is a
        # call through the builtins module).
        for closed_head in self._closed:
            due = self._closed[closed_head].end_ns + self._closed_hold_ns + 1
            if due < at:
                at = due
            break
        for open_head in self._open:
            due = self._open[open_head].end_ns + self._idle_ns + 1
            if due < at:
                at = due
            break
        for freeze_head in self._to_freeze:
            due = max(
                self._to_freeze[freeze_head].end_ns + self._freeze_ns + 1, self._freeze_check_at
            )
            if due < at:
                at = due
            break
        self._sweep_at = at
        self._heads = (closed_head, open_head, freeze_head)

    def _sweep(self, now_ns: int) -> None:
        """Retire what has been quiet long enough, and the oldest past the limit.

        ``add`` calls this only when something may be due (``_sweep_at``, a
        lower bound of the heads' due times; see ``_note_heads``) or when the
        table is full. Timestamps may go backwards: the heads are then not
        always the earliest, but a sweep looks at the heads only, at any time.
        """
        self._last = None  # what it retires or freezes may be the last segment's
        tw, idle = self._closed_hold_ns, self._idle_ns
        while self._closed:
            conn = _first(self._closed)
            if now_ns - conn.end_ns <= tw:
                break
            self._retire(conn, now_ns)
        while self._open:
            conn = _first(self._open)
            if now_ns - conn.end_ns <= idle:
                break
            self._retire(conn, now_ns)
        while len(self._open) + len(self._closed) >= self._max_connections:
            if self._closed:
                self._retire(_first(self._closed), now_ns)
                continue
            conn = _first(self._open)
            if not conn.handshake_acked and not (
                conn.client.payload_bytes or conn.server.payload_bytes
            ):
                self._drop(conn)
            else:
                self._retire(conn, now_ns)
        if self._freezer is not None and self._to_freeze and now_ns >= self._freeze_check_at:
            # Freezing changes no result, so it is done in passes a fraction of
            # freeze_after_s apart rather than the moment each connection is due.
            while self._to_freeze:
                conn = _first(self._to_freeze)
                if now_ns - conn.end_ns <= self._freeze_ns:
                    break
                del self._to_freeze[conn.conn_id]
                self._freeze(conn, now_ns)
            self._freeze_check_at = now_ns + self._freeze_ns // 4
        self._sweep_at = _NEVER
        self._note_heads()

    def _forget(self, conn: Connection | Frozen) -> None:
        """Take ``conn`` out of the tables; the caller then notes the heads (``_note_heads``)."""
        cid: Any = conn.conn_id  # (boxed once for the three tables)
        if cid in self._open:
            del self._open[cid]
        if cid in self._closed:
            del self._closed[cid]
        if cid in self._to_freeze:
            del self._to_freeze[cid]
        key = conn.key
        if self._table.get(key) is conn:
            del self._table[key]
        if conn.reverse_vlan is not None:  # filed under the other direction's tags too
            key = (conn.reverse_vlan, *key[1:])
            if self._table.get(key) is conn:
                del self._table[key]
        self._unpair(conn)
        # (The heads may have changed: the caller notes them, a sweep once at its end.)

    def _unpair(self, conn: Connection | Frozen) -> None:
        """Take ``conn`` out of the list of live connections of its address pair."""
        pair = conn.key[1:]
        halves = self._by_pair.get(pair)
        if halves is not None:
            if conn in halves:
                halves.remove(conn)
            if not halves:
                del self._by_pair[pair]

    def _retire(self, conn: Connection | Frozen, now_ns: int) -> None:
        """Close ``conn``'s record and hand it out; keep only its number for the key."""
        if conn.retired:
            return
        if isinstance(conn, Frozen):
            if now_ns < conn.frozen_at:
                conn = self._thaw(conn)  # time went backwards: the rows made are too late
            else:
                conn.retired, conn.retired_ns = True, now_ns
                self._forget(conn)
                self._remember(conn)
                assert self._freezer is not None
                self._freezer.retire(conn, now_ns)
                return
        conn.retired = True
        self._expire(conn, now_ns)
        conn.retired_ns = now_ns
        self._forget(conn)
        self._remember(conn)
        if self._on_retire is not None:
            saved = self._public_ids(conn)
            self._on_retire(conn)
            if saved is not None:
                self._local_ids(conn, saved)
            conn.prev = None  # the previous incarnation is needed no longer

    def _remember(self, conn: Connection | Frozen) -> None:
        """Keep the retired connection's number for its key (the next incarnation's)."""
        self._retired[conn.key] = (conn.conn_id, conn.incarnation)
        self._retired.move_to_end(conn.key)
        while len(self._retired) > self._max_connections:
            self._retired.popitem(last=False)

    # -- freezing closed connections (streaming; see freeze.py) ---------------

    def _freeze(self, conn: Connection, now_ns: int) -> None:
        """Put a small record in the place of a closed connection quiet long enough."""
        assert self._freezer is not None
        if conn.prev is not None or conn.reverse_vlan is not None:
            return
        if self.keep is not None and self._kept(conn):
            return
        self._expire(conn, now_ns)
        pending = [
            ep.tw_deadline_ns
            for ep in conn.endpoints()
            if ep.state is State.TIME_WAIT and ep.tw_deadline_ns is not None
        ]
        if len(pending) > 1:
            return
        saved = self._public_ids(conn)  # frozen with no previous incarnation held
        frozen = self._freezer.freeze(
            conn,
            now_ns,
            pending[0] if pending else None,
            lambda at: self._expire(conn, at),
        )
        if saved is not None:
            self._local_ids(conn, saved)
            if frozen is not None:
                frozen.conn_id, frozen.prev_conn_id = conn.conn_id, conn.prev_conn_id
        if frozen is None:
            return
        self._closed[conn.conn_id] = frozen  # keeps its place in the order
        self._table[conn.key] = frozen
        self._unpair(conn)

    def _kept(self, conn: Connection) -> bool:
        """Whether the caller wants ``conn`` whole (``keep``), asked with its public ids."""
        keep = self.keep
        assert keep is not None
        saved = self._public_ids(conn)
        try:
            return keep(conn)
        finally:
            if saved is not None:
                self._local_ids(conn, saved)

    def _public_ids(self, conn: Connection) -> tuple[int, int | None] | None:
        """In a sharded run, give ``conn`` and its previous incarnation their public ids.

        Returns the local ids for ``_local_ids`` to put back once the rows are
        made, or None when the run is not sharded.
        """
        public = self.public_id
        if public is None:
            return None
        saved = (conn.conn_id, conn.prev_conn_id)
        conn.conn_id = public(conn.conn_id)
        if conn.prev_conn_id is not None:
            conn.prev_conn_id = public(conn.prev_conn_id)
            if conn.prev is not None:  # held: the findings name it by its conn_id
                conn.prev.conn_id = conn.prev_conn_id
        return saved

    def _local_ids(self, conn: Connection, saved: tuple[int, int | None]) -> None:
        conn.conn_id, conn.prev_conn_id = saved
        if conn.prev is not None and saved[1] is not None:
            conn.prev.conn_id = saved[1]

    def _thaw(self, frozen: Frozen) -> Connection:
        """Rebuild a frozen connection by replaying its segments; it takes the record's place."""
        assert self._freezer is not None
        segments = self._freezer.segments(frozen)
        conn = self._make_connection(
            frozen.key, segments[0], frozen.conn_id, frozen.incarnation, frozen.prev_conn_id, None
        )
        for seg in segments:
            self._process(conn, seg)
        self._table[conn.key] = conn
        self._closed[conn.conn_id] = conn
        self._by_pair.setdefault(conn.key[1:], []).append(conn)
        return conn

    def _drop(self, conn: Connection) -> None:
        """Forget a half-open connection under memory pressure; count it only."""
        self._forget(conn)
        conn.retired, conn.retired_ns, conn.dropped = True, conn.end_ns, True
        self.expired[f"{conn.client.state.value}/{conn.server.state.value}"] += 1

    @property
    def capture_end_ns(self) -> int:
        return self._last_ts_ns

    def _other_vlan_half(self, pair: tuple[object, ...], seg: Segment) -> Connection | None:
        """The live connection whose other direction travels on another VLAN, if any.

        Routed between VLANs, a connection's two directions can carry different
        tags. A connection seen so far in one direction only, on other tags, whose
        sequence numbers this segment acknowledges, is the same connection.
        """
        if not seg.flags & Bit.ACK or seg.flags & Bit.RST:
            return None
        for conn in reversed(self._by_pair.get(pair, ())):
            if conn.vlan == seg.vlan or conn.reverse_vlan is not None or conn.ended():
                continue
            sender = (
                conn.client
                if (conn.client.addr, conn.client.port) == (seg.dst, seg.dport)
                else conn.server
            )
            other = conn.server if sender is conn.client else conn.client
            if other.pkts or sender.snd_nxt is None:
                continue
            if abs(seq_diff(seg.ack, sender.snd_nxt)) <= _MERGE_SLACK:
                return conn
        return None

    def _starts_new_incarnation(self, conn: Connection, seg: Segment) -> bool:
        fl = seg.flags
        if not fl & Bit.SYN or fl & (Bit.ACK | Bit.RST):
            return False
        from_client = (seg.src, seg.sport) == (conn.client.addr, conn.client.port)
        if from_client:
            if conn.client.isn is not None and seg.seq == conn.client.isn:
                return False  # retransmitted SYN (same ISN)
            # A new ISN: after the previous connection ended, or when the previous
            # attempt was never answered (the application retried on the same port).
            return conn.ended() or (conn.client.state is State.SYN_SENT and not conn.saw_synack)
        if conn.server.isn is not None and seg.seq == conn.server.isn:
            return False
        return conn.ended() and conn.saw_syn

    def _new_connection(
        self, key: tuple[object, ...], seg: Segment, prev: Connection | None
    ) -> Connection:
        retired = None if prev is not None else self._retired.pop(key, None)
        if prev is not None:
            self._expire(prev, seg.ts_ns)
            for ep in prev.endpoints():
                if ep.state is State.TIME_WAIT:
                    self._apply(prev, ep, Event.NEW_INCARNATION, seg.frame, seg.ts_ns)
        conn = self._make_connection(
            key,
            seg,
            self._next_id,
            prev.incarnation + 1 if prev is not None else retired[1] + 1 if retired else 1,
            prev.conn_id if prev is not None else retired[0] if retired else None,
            prev,
        )
        self._next_id += 1
        if self.firsts is not None:
            self.firsts.append(seg.frame)
        if self._on_retire is None:
            self.connections.append(conn)
        self._table[key] = conn
        return conn

    def _make_connection(
        self,
        key: tuple[object, ...],
        seg: Segment,
        conn_id: int,
        incarnation: int,
        prev_conn_id: int | None,
        prev: Connection | None,
    ) -> Connection:
        """A new connection record whose first segment is ``seg`` (not yet processed)."""
        fl = seg.flags
        src = (seg.src, seg.sport)
        dst = (seg.dst, seg.dport)
        if fl & Bit.SYN and not fl & Bit.ACK:
            client, server, roles = src, dst, "syn"
        elif fl & Bit.SYN and fl & Bit.ACK:
            client, server, roles = dst, src, "synack"
        else:
            client, server, roles = _guess_roles(src, dst)
        starts_with_syn = roles == "syn"
        return Connection(
            conn_id=conn_id,
            key=key,
            vlan=seg.vlan,
            client=Endpoint(
                "client",
                State.CLOSED if starts_with_syn else State.UNKNOWN,
                client[0],
                client[1],
            ),
            server=Endpoint(
                "server",
                State.LISTEN if starts_with_syn else State.UNKNOWN,
                server[0],
                server[1],
            ),
            incarnation=incarnation,
            prev_conn_id=prev_conn_id,
            roles=roles,
            first_frame=seg.frame,
            start_ns=seg.ts_ns,
            first_sender=src,
            zeek_records=[(src, ZeekConn())],
            prev=prev,
        )

    # -- per-segment replay ------------------------------------------------

    def _process(self, conn: Connection, seg: Segment) -> None:
        c = conn.client
        from_client = seg.sport == c.port and seg.src == c.addr
        s, d = (c, conn.server) if from_client else (conn.server, c)
        frame, ts = seg.frame, seg.ts_ns
        fl = seg.flags
        if s.state is _TIME_WAIT or d.state is _TIME_WAIT:
            self._expire(conn, ts)

        conn.packets += 1
        conn.last_frame = frame
        conn.end_ns = ts
        s.pkts += 1
        s.payload_bytes += seg.payload_len
        if seg.checksum_ok is False:
            s.bad_checksums += 1
        self._zeek(conn, seg)

        if (
            fl & _ACK_ONLY_MASK == Bit.ACK
            and s.state is _ESTABLISHED
            and d.state is _ESTABLISHED
            and conn.handshake_acked
            and conn.first_fin is None
            and s.fin_seq is None
            and d.fin_seq is None
            and (s.got_peer_syn or d.isn is None)
            and (d.syn_acked or d.isn is None)
        ):
            # The common segment: data or an ACK between two established endpoints,
            # no FIN anywhere yet, every SYN already acknowledged. Of the steps below
            # only the bookkeeping applies (SND_ACK in ESTABLISHED is a self-loop that
            # is not recorded); tests/test_states.py and the captures check the rest.
            s.window = seg.window
            conn.trace.add(seg, from_client, _ESTABLISHED, _ESTABLISHED)  # (s's and d's)
            end = seq_add(seg.seq, seg.payload_len)
            if s.snd_nxt is None or seq_gt(end, s.snd_nxt):
                s.snd_nxt = end
            return

        syn, fin, rst, ack = (
            bool(fl & Bit.SYN),
            bool(fl & Bit.FIN),
            bool(fl & Bit.RST),
            bool(fl & Bit.ACK),
        )
        if syn and (fin or rst):
            self._anomaly(
                conn,
                s,
                seg,
                "flags",
                Anomaly.INVALID_FLAGS,
                f"SYN with {'FIN' if fin else 'RST'} in one segment",
            )

        # Handshake bookkeeping for the summary.
        if syn and not ack and not rst and s is conn.client:
            conn.saw_syn = True
        if syn and ack and not rst and s is conn.server:
            conn.saw_synack = True
        if (
            not syn
            and not rst
            and ack
            and s is conn.client
            and conn.saw_synack
            and conn.server.isn is not None
            and seq_geq(seg.ack, seq_add(conn.server.isn, 1))
        ):
            conn.handshake_acked = True

        # Mid-connection start: a plain segment shows both ends were synchronized.
        if not syn and not rst and d.state is State.UNKNOWN:
            self._record(conn, d, frame, ts, State.ESTABLISHED, Event.PRESUMED, presumed_rule())

        # Step 1: what S's ACK proves S received.
        if not rst and ack:
            if d.isn is not None and not s.got_peer_syn and seq_geq(seg.ack, seq_add(d.isn, 1)):
                s.got_peer_syn = True
                ev = Event.RCV_SYN_ACK if d.syn_is_synack else Event.RCV_SYN
                self._apply(conn, s, ev, frame, ts, seg)
            if (
                d.fin_seq is not None
                and not s.got_peer_fin
                and seq_geq(seg.ack, seq_add(d.fin_seq, 1))
            ):
                s.got_peer_fin = True
                self._apply(conn, s, Event.RCV_FIN, frame, ts, seg)

        # Step 2: what S did. An RST its receiver must reject (out of window, or
        # not acknowledging our SYN) may be forged or stale: it changes no state.
        rst_ok = False
        if rst:
            s.rsts += 1
            rst_ok = self._rst_acceptable(conn, s, d, seg)
            if rst_ok and conn.first_rst is None:
                conn.first_rst, conn.first_rst_frame = s.role, frame
                conn.fin_before_rst = conn.first_fin is not None
            if rst_ok:
                self._apply(conn, s, Event.SND_RST, frame, ts, seg)
        elif syn:
            self._send_syn(conn, s, seg, ack)
        elif fin:
            self._send_fin(conn, s, d, seg)
        else:
            self._send_data(conn, s, d, seg)

        # Window bookkeeping after the send (the RST check in step 3 uses D's).
        if seg.options is not None and syn and seg.options.wscale is not None:
            s.wscale = seg.options.wscale
        if not rst:
            s.window = seg.window

        # Step 3: what D gets at once.
        if rst:
            if rst_ok:
                self._apply(conn, d, Event.RCV_RST, frame, ts, seg)
        else:
            if (
                s.fin_seq is not None
                and not d.got_peer_fin
                and not syn
                and seq_geq(seg.seq, seq_add(s.fin_seq, 1))
            ):
                d.got_peer_fin = True
                self._apply(conn, d, Event.RCV_FIN, frame, ts, seg)
            if ack:
                if d.isn is not None and not d.syn_acked and seq_geq(seg.ack, seq_add(d.isn, 1)):
                    d.syn_acked = True
                    if d.state in (State.SYN_RECEIVED, State.UNKNOWN):
                        self._apply(conn, d, Event.RCV_ACK_OF_SYN, frame, ts, seg)
                if (
                    d.fin_seq is not None
                    and not d.fin_acked
                    and seq_geq(seg.ack, seq_add(d.fin_seq, 1))
                ):
                    d.fin_acked = True
                    self._apply(conn, d, Event.RCV_ACK_OF_FIN, frame, ts, seg)

        conn.trace.add(seg, from_client, conn.client.state, conn.server.state)

        # Sequence bookkeeping last, so step 3's RST check saw the old snd_nxt.
        end = seq_add(seg.seq, seg.seg_len)
        if not rst and (s.snd_nxt is None or seq_gt(end, s.snd_nxt)):
            s.snd_nxt = end

    def _zeek(self, conn: Connection, seg: Segment) -> None:
        records = conn.zeek_records
        first, zc = records[-1]
        from_first = seg.sport == first[1] and seg.src == first[0]
        if not zc.add_unless_new(seg, from_first):
            zc = ZeekConn()
            records.append(((seg.src, seg.sport), zc))
            zc.add(seg, True)

    def _send_syn(self, conn: Connection, s: Endpoint, seg: Segment, ack: bool) -> None:
        if s.isn is None:
            s.isn = seg.seq
            s.syn_is_synack = ack
        elif seg.seq != s.isn:
            self._anomaly(
                conn,
                s,
                seg,
                "snd_syn",
                Anomaly.SYN_IN_SYNCHRONIZED_STATE,
                f"SYN with ISN {seg.seq} after ISN {s.isn} on a live connection",
            )
            return
        if ack:
            if s.state is State.ESTABLISHED and s.syn_acked:
                s.syn_acked = False
                self._apply(conn, s, Event.SYNACK_RETRANSMIT, seg.frame, seg.ts_ns, seg)
            else:
                self._apply(conn, s, Event.SND_SYN_ACK, seg.frame, seg.ts_ns, seg)
        else:
            self._apply(conn, s, Event.SND_SYN, seg.frame, seg.ts_ns, seg)

    def _send_fin(self, conn: Connection, s: Endpoint, d: Endpoint, seg: Segment) -> None:
        fin_seq = seq_add(seg.seq, seg.payload_len)
        s.fins += 1
        if conn.first_fin is None and conn.first_rst is None:
            conn.first_fin, conn.first_fin_frame = s.role, seg.frame
        if s.fin_seq is None:
            s.fin_seq = fin_seq
            self._apply(conn, s, Event.SND_FIN, seg.frame, seg.ts_ns, seg)
        elif fin_seq == s.fin_seq:
            # A FIN sent again must be received again: the peer's next ACK covering
            # it is a new receipt (TIME_WAIT restarts its timer on it).
            d.got_peer_fin = False
            if s.fin_acked:
                s.fin_acked = False
                self._apply(conn, s, Event.FIN_RETRANSMIT, seg.frame, seg.ts_ns, seg)
            else:
                self._apply(conn, s, Event.SND_FIN, seg.frame, seg.ts_ns, seg)
        else:
            self._anomaly(
                conn,
                s,
                seg,
                "snd_fin",
                Anomaly.FIN_MOVED,
                f"FIN at relative position {seq_diff(fin_seq, s.fin_seq):+d} "
                "from this endpoint's first FIN",
            )
            if seq_gt(fin_seq, s.fin_seq):
                s.fin_seq, s.fin_acked = fin_seq, False
        self._count_half_close(conn, s, seg)

    def _send_data(self, conn: Connection, s: Endpoint, d: Endpoint, seg: Segment) -> None:
        if (
            seg.payload_len
            and s.fin_seq is not None
            and seq_gt(seq_add(seg.seq, seg.payload_len), s.fin_seq)
        ):
            self._anomaly(
                conn,
                s,
                seg,
                "snd_ack",
                Anomaly.DATA_AFTER_FIN,
                f"{seg.payload_len} bytes beyond this endpoint's FIN",
            )
        self._count_half_close(conn, s, seg)
        if s.state is State.CLOSED:
            self._anomaly(
                conn,
                s,
                seg,
                "snd_ack",
                Anomaly.SEGMENT_AFTER_CLOSE,
                "segment sent by an endpoint in CLOSED",
            )
            return
        self._apply(conn, s, Event.SND_ACK, seg.frame, seg.ts_ns, seg)

    def _count_half_close(self, conn: Connection, s: Endpoint, seg: Segment) -> None:
        """Count new data a side sends after the other side's FIN (a half-close)."""
        if (
            seg.payload_len
            and conn.first_fin is not None
            and conn.first_fin != s.role
            and (s.snd_nxt is None or seq_gt(seq_add(seg.seq, seg.payload_len), s.snd_nxt))
        ):
            conn.half_close_bytes += seg.payload_len

    def _rst_acceptable(self, conn: Connection, s: Endpoint, d: Endpoint, seg: Segment) -> bool:
        """May D accept this RST? If not, record why (the RST then changes nothing)."""
        if d.state is State.SYN_SENT:
            # RFC 9293 3.10.7.3: in SYN-SENT an RST counts only if its ACK covers our SYN.
            if not (seg.flags & Bit.ACK and d.isn is not None and seg.ack == seq_add(d.isn, 1)):
                self._anomaly(
                    conn,
                    d,
                    seg,
                    "rcv_rst",
                    Anomaly.RST_IGNORED_IN_SYN_SENT,
                    "RST whose ACK does not acknowledge our SYN",
                )
                return False
        elif d.state not in (State.CLOSED, State.LISTEN, State.UNKNOWN) and s.snd_nxt is not None:
            # RFC 9293 3.10.7.4 first check / RFC 5961 3: RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND.
            wnd = _scaled_window(d, d.wscale is not None and s.wscale is not None)
            off = seq_diff(seg.seq, s.snd_nxt)
            if wnd is not None and not (off == 0 or 0 <= off < wnd):
                self._anomaly(
                    conn,
                    d,
                    seg,
                    "rcv_rst",
                    Anomaly.RST_OUT_OF_WINDOW,
                    f"RST sequence {off:+d} from RCV.NXT, window {wnd}",
                )
                return False
        return True

    # -- state changes -----------------------------------------------------

    def _expire(self, conn: Connection, now_ns: int) -> None:
        # The client, then the server (conn.endpoints(), without making the pair).
        self._expire_endpoint(conn, conn.client, now_ns)
        self._expire_endpoint(conn, conn.server, now_ns)

    def _expire_endpoint(self, conn: Connection, ep: Endpoint, now_ns: int) -> None:
        deadline = ep.tw_deadline_ns
        if ep.state is _TIME_WAIT and deadline is not None and now_ns >= deadline:
            self._apply(conn, ep, Event.TIMEOUT_2MSL, None, deadline)

    def _apply(
        self,
        conn: Connection,
        ep: Endpoint,
        event: Event,
        frame: int | None,
        ts_ns: int,
        seg: Segment | None = None,
    ) -> None:
        if ep.state is State.UNKNOWN and transition(State.UNKNOWN, event) is None:
            presumed = presumed_state(event)
            self._record(conn, ep, frame, ts_ns, presumed, Event.PRESUMED, presumed_rule())
        found = transition(ep.state, event)
        if found is None:
            if seg is not None:
                code = (
                    Anomaly.SEGMENT_AFTER_CLOSE
                    if ep.state is State.CLOSED and event.value.startswith("snd_")
                    else Anomaly.NO_TRANSITION
                )
                self._anomaly(
                    conn,
                    ep,
                    seg,
                    event.value,
                    code,
                    f"no rule for {event.value} in {ep.state.value}",
                )
            return
        new_state, rule = found
        if new_state is ep.state and event not in _RECORDED_SELF_LOOPS:
            return
        if new_state is State.CLOSING or (
            ep.state is State.CLOSING and new_state is State.TIME_WAIT
        ):
            conn.simultaneous_close = True
        old_state = ep.state
        self._record(conn, ep, frame, ts_ns, new_state, event, rule)
        if new_state is State.TIME_WAIT and (
            event is Event.RCV_FIN or old_state is not State.TIME_WAIT
        ):
            ep.tw_deadline_ns = ts_ns + self._time_wait_ns

    def _record(
        self,
        conn: Connection,
        ep: Endpoint,
        frame: int | None,
        ts_ns: int,
        new_state: State,
        event: Event,
        rule: str,
    ) -> None:
        conn.transitions.append(
            TransitionRecord(ep.role, frame, ts_ns, ep.state, new_state, event, rule)
        )
        ep.state = new_state

    def _anomaly(
        self, conn: Connection, ep: Endpoint, seg: Segment, event: str, code: Anomaly, detail: str
    ) -> None:
        conn.anomalies.append(
            AnomalyRecord(ep.role, seg.frame, seg.ts_ns, ep.state, event, code, detail)
        )


def _by_id(conn: Connection | Frozen) -> int:
    return conn.conn_id


def _first(table: OrderedDict[int, _T]) -> _T:
    """The value of the first entry of a table that is not empty.

    (Compiled, ``next(iter(table.values()))`` is a call through the builtins module.)
    """
    for key in table:
        return table[key]
    raise KeyError("empty table")


def _guess_roles(
    src: tuple[bytes, int], dst: tuple[bytes, int]
) -> tuple[tuple[bytes, int], tuple[bytes, int], str]:
    """Mid-connection: the server is the endpoint on a service port (client, server, how)."""
    sp, dp = src[1], dst[1]
    s_srv = sp < 1024 or sp in _SERVICE_PORTS
    d_srv = dp < 1024 or dp in _SERVICE_PORTS
    if s_srv != d_srv:
        return (dst, src, "port") if s_srv else (src, dst, "port")
    if sp != dp and (s_srv or sp >= 32768 or dp >= 32768):
        return (dst, src, "port") if sp < dp else (src, dst, "port")
    return src, dst, "first_packet"


class Stop(Exception):
    """Raised by an ``on_retire`` callback to end the replay at once: ``play`` returns.

    The tracker is left as it was (``Tracker.stopped`` set): the connections
    still held are not retired. ``show`` stops once it has its connection.
    """


class Progress(Protocol):
    """What ``play`` tells of its progress: a sharded run's ``shard.ShardIds``.

    Between the segments where ``play`` sets ``position``, the tracker's own
    ``frame`` says how far the replay is (``ShardIds`` reads both).
    """

    position: int

    def publish(self) -> None: ...


def play(
    tracker: Tracker,
    segments: Iterable[Segment],
    progress: Progress | None = None,
    every: int = 1,
) -> int:
    """Replay ``segments`` into ``tracker``; return how many there were (up to the one
    whose replay raised :class:`Stop`, if one did).

    The loop of ``replay.replay``, here to be compiled with the tracker. With
    ``progress``, before every ``every``-th segment its ``position`` is set to
    that segment's frame and ``publish()`` is called; between those, the
    segment being replayed is the tracker's ``frame`` (a native field, where
    setting an attribute of the Python object ``progress`` for every segment
    cost a boxed integer and a dictionary store each).
    """
    count = 0
    try:
        if progress is None:
            for seg in segments:
                count += 1
                tracker.add(seg)
            return count
        for seg in segments:
            count += 1
            if count % every == 0:
                progress.position = seg.frame
                progress.publish()
            tracker.add(seg)
    except Stop:
        tracker.stopped = True  # (the segment that raised it is counted)
    return count


def track(segments: Iterable[Segment], config: Config | None = None) -> Tracker:
    """Replay ``segments`` (capture order) and return the finished tracker."""
    tracker = Tracker(config)
    for seg in segments:
        tracker.add(seg)
    tracker.finish()
    return tracker
