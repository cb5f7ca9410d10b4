"""One connection drawn as a ladder diagram for the terminal.

Theory of operation
-------------------
Both endpoints are columns; each segment is one line, an arrow in its
direction carrying its flags (tcpdump's letters), sequence and
acknowledgment numbers relative to each side's first sequence number, and its
payload length. Each endpoint's state *after* the segment stands in its
column (blank when unchanged, so changes stand out), and the notes the caller
passes for a frame (findings, anomalies) go at the right. A TIME_WAIT expiry,
which has no frame, is drawn as its own line.

Connections are named by a ``conn_id``, or ``IP:PORT-IP:PORT`` (either order;
IPv6 in brackets) with an optional ``#N`` for the Nth incarnation of that
4-tuple (``parse_spec``), and chosen among connections by ``select``. ``pick``
(the command line's ``show``) streams: it replays the capture retiring
connections as they finish, keeps those the name matches with their findings,
and stops reading once the choice is made.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from .config import Config
from .findings import Finding, detect
from .freeze import SUMMARY_COLUMNS, RowFreezer
from .replay import Replay, Source, replay
from .segment import Flags, addr_text
from .seq import seq_diff
from .states import Event, State
from .tracker import Connection, Stop

if TYPE_CHECKING:
    from .shard import ShardIds

__all__ = [
    "ConnSpec",
    "ConnSpecError",
    "Picker",
    "Shown",
    "choose",
    "drawing",
    "flags_text",
    "parse_spec",
    "pick",
    "render",
    "select",
]

_T = TypeVar("_T")

_ARROW = 46
_STATE = 13
_NS = 1_000_000_000

# tcpdump's flag letters, in tcpdump's order.
_LETTERS = (
    (Flags.SYN, "S"),
    (Flags.FIN, "F"),
    (Flags.RST, "R"),
    (Flags.PSH, "P"),
    (Flags.URG, "U"),
    (Flags.ECE, "E"),
    (Flags.CWR, "W"),
)


class ConnSpecError(ValueError):
    """A ``--conn`` value that names no connection, or is malformed."""


def flags_text(flags: int) -> str:
    """Flags as tcpdump prints them: ``S``, ``S.``, ``F.``, ``R``, ``P.``; ``.`` is ACK."""
    text = "".join(letter for bit, letter in _LETTERS if flags & bit)
    if flags & Flags.ACK:
        text += "."
    return text or "none"


def _endpoint(addr: bytes, port: int) -> str:
    text = addr_text(addr)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def _parse_endpoint(text: str) -> tuple[bytes, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConnSpecError(f"not IP:PORT: {text!r}")
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).packed, int(port)
    except ValueError:
        raise ConnSpecError(f"not an IP address: {host!r}") from None


@dataclass(frozen=True)
class ConnSpec:
    """A ``--conn`` read: a ``conn_id``, or the two endpoints of a 4-tuple (as
    written, and as (address bytes, port)) with the incarnation wanted, if one is."""

    conn_id: int | None = None
    pair: tuple[str, str] = ("", "")
    ends: frozenset[tuple[bytes, int]] = frozenset()
    nth: int | None = None

    def matches(self, conn: Connection) -> bool:
        """Whether ``conn`` is the one meant, or (a 4-tuple) one of its incarnations."""
        if self.conn_id is not None:
            return conn.conn_id == self.conn_id
        ends = {(conn.client.addr, conn.client.port), (conn.server.addr, conn.server.port)}
        return ends == self.ends

    def settled(self, conn: Connection) -> bool:
        """Whether the choice is made once ``conn`` (which it matches) is known: it is
        the one named. A 4-tuple without ``#N`` needs all of its incarnations."""
        return self.conn_id is not None or self.nth == conn.incarnation


def parse_spec(spec: str) -> ConnSpec:
    """``ID``, or ``IP:PORT-IP:PORT[#N]`` (either order; IPv6 in brackets); a
    :class:`ConnSpecError` says what is wrong with any other text."""
    spec = spec.strip()
    if spec.isdigit():
        return ConnSpec(conn_id=int(spec))
    pair, _, nth = spec.partition("#")
    # Split at the '-' that separates two endpoints (IPv6 brackets contain no '-').
    cut = pair.find("-", pair.rfind("]") + 1 if pair.startswith("[") else 0)
    if cut < 0:
        raise ConnSpecError(f"expected ID or IP:PORT-IP:PORT[#N], not {spec!r}")
    a, b = _parse_endpoint(pair[:cut]), _parse_endpoint(pair[cut + 1 :])
    if nth and not nth.isdigit():
        raise ConnSpecError(f"incarnation must be a number, not {nth!r}")
    return ConnSpec(
        pair=(pair[:cut], pair[cut + 1 :]),
        ends=frozenset((a, b)),
        nth=int(nth) if nth else None,
    )


def select(
    conns: Sequence[Connection], spec: str | ConnSpec, total: int | None = None
) -> Connection:
    """The connection of ``conns`` named by ``spec`` (text, or read by :func:`parse_spec`).

    ``total`` is the number of connections in the capture, for the message when
    the one asked for is not there (default: ``len(conns)``).
    """
    want = parse_spec(spec) if isinstance(spec, str) else spec
    matches = [(c.conn_id, c.incarnation, c) for c in conns if want.matches(c)]
    return choose(matches, want, len(conns) if total is None else total)


def choose(matches: Sequence[tuple[int, int, _T]], spec: ConnSpec, total: int) -> _T:
    """Of the connections ``spec`` matches, as (conn_id, incarnation, what is kept of
    it) in ``conn_id`` order, the one it names. A :class:`ConnSpecError` when there is
    none (``total``: the capture's connections, for its message) or, for a 4-tuple
    without ``#N``, several."""
    if spec.conn_id is not None:
        if not matches:
            raise ConnSpecError(f"no connection {spec.conn_id} (the capture has {total})")
        return matches[0][2]
    if not matches:
        raise ConnSpecError(f"no connection between {spec.pair[0]} and {spec.pair[1]}")
    if spec.nth is None:
        if len(matches) > 1:
            ids = ", ".join(f"#{inc} (id {cid})" for cid, inc, _ in matches)
            raise ConnSpecError(f"{len(matches)} connections on that 4-tuple: add one of {ids}")
        return matches[0][2]
    for _, incarnation, kept in matches:
        if incarnation == spec.nth:
            return kept
    raise ConnSpecError(f"no incarnation #{spec.nth} on that 4-tuple (it has {len(matches)})")


@dataclass
class Shown:
    """What ``show`` draws: the connection, its findings, and the capture's warnings;
    whether the replay stopped once it had them (``Replay.stopped``)."""

    conn: Connection
    findings: list[Finding]
    warnings: list[str]
    stopped: bool = False


_NO_SUMMARY: tuple[None, ...] = (None,) * len(SUMMARY_COLUMNS)


def _no_rows(conn: Connection) -> tuple[tuple[None, ...], list[str], dict[str, str], list[Finding]]:
    """A frozen connection's rows, for ``pick``: none (``freeze.MadeFn``)."""
    return _NO_SUMMARY, [], {}, []


class Picker(Generic[_T]):
    """Replays a capture (or one shard of it) for ``show``: the connections ``spec``
    matches are kept as ``made(conn, findings)`` (their findings made at their
    retirement, while the previous incarnation is still held, as the streamed tables
    make them), in ``matches`` as (conn_id, incarnation, made), in the order they
    retired; the others only counted (``seen``: every connection retired).

    Closed connections are frozen as ``analyze`` freezes them (never those ``spec``
    matches), with no rows made: memory follows the connections open at one time.
    Once the choice is made (a ``conn_id``, or a 4-tuple's ``#N``) the replay stops
    there (``tracker.Stop``): nothing after can change that connection.
    """

    def __init__(
        self, spec: ConnSpec, config: Config, made: Callable[[Connection, list[Finding]], _T]
    ) -> None:
        self.spec = spec
        self.config = config
        self._made = made
        self.matches: list[tuple[int, int, _T]] = []
        self.seen = 0

    def replay(
        self, source: Source | Sequence[str | os.PathLike[str]], shard: ShardIds | None = None
    ) -> Replay:
        freezer = RowFreezer(_no_rows, None, None, self._frozen_retired)
        try:
            return replay(
                source,
                self.config,
                on_retire=self._retired,
                freezer=freezer,
                shard=shard,
                keep=self.spec.matches,
            )
        finally:
            freezer.close()

    def _retired(self, conn: Connection) -> None:
        # In a sharded run the public conn_id (and the previous incarnation's) are in
        # place here.
        self.seen += 1
        if not self.spec.matches(conn):
            return
        end_ns = conn.retired_ns if conn.retired_ns is not None else conn.end_ns
        found = detect(conn, conn.prev, self.config, end_ns)
        self.matches.append((conn.conn_id, conn.incarnation, self._made(conn, found)))
        if self.spec.settled(conn):
            raise Stop

    def _frozen_retired(self, row: object, texts: object, found: object) -> None:
        self.seen += 1


def _kept(conn: Connection, found: list[Finding]) -> tuple[Connection, list[Finding]]:
    return conn, found


def pick(
    source: Source | Sequence[str | os.PathLike[str]], config: Config, spec: ConnSpec
) -> Shown:
    """The connection ``spec`` names in the capture, with its findings, streamed in one
    process (:class:`Picker`). Raises :class:`ConnSpecError` if the capture does not
    hold it (the message as :func:`select` words it)."""
    picker = Picker(spec, config, _kept)
    result = picker.replay(source)
    conn, found = choose(sorted(picker.matches, key=_by_conn_id), spec, picker.seen)
    return Shown(conn, found, list(result.stats.warnings), result.stopped)


def _by_conn_id(match: tuple[int, int, object]) -> int:
    return match[0]


def _cell(text: str, width: int) -> str:
    return text[:width].ljust(width)


def render(conn: Connection, notes: Mapping[int, Sequence[str]] | None = None) -> str:
    """The ladder diagram of ``conn``; ``notes`` maps frame numbers to labels."""
    notes = notes or {}
    c, s = conn.client, conn.server
    base = {True: _first_seq(conn, True), False: _first_seq(conn, False)}
    lines = [
        f"connection {conn.conn_id}: {_endpoint(c.addr, c.port)} (client) <-> "
        f"{_endpoint(s.addr, s.port)} (server)"
        + (f"  vlan {'.'.join(map(str, conn.vlan))}" if conn.vlan else "")
        + f"  incarnation {conn.incarnation}",
        "seq/ack relative to each side's first sequence number; a state is shown when it changes",
        "",
        f"{'frame':>7} {'time (s)':>10}  {_cell('client', _STATE)}  {'':{_ARROW}}  "
        f"{_cell('server', _STATE)}  notes",
    ]
    first_states = _initial_states(conn)
    lines.append(
        f"{'':>7} {'':>10}  {_cell(first_states[0], _STATE)}  {'':{_ARROW}}  "
        f"{_cell(first_states[1], _STATE)}"
    )
    # Transitions with no segment of this connection behind them: the TIME_WAIT
    # timer, and a new incarnation's SYN replacing a TIME_WAIT.
    frames = {step.seg.frame for step in conn.trace}
    timers = sorted(
        (t.ts_ns, t.endpoint, t.to_state, t.event, t.frame)
        for t in conn.transitions
        if t.frame is None or t.frame not in frames
    )
    prev_c, prev_s = first_states
    for step in conn.trace:
        seg = step.seg
        while timers and timers[0][0] <= seg.ts_ns:
            ts_ns, endpoint, to_state, event, frame = timers.pop(0)
            lines.append(_timer_line(conn, ts_ns, endpoint, to_state, event, frame))
            if endpoint == "client":
                prev_c = to_state.value
            else:
                prev_s = to_state.value
        label = f"{flags_text(seg.flags)} seq={_rel(seg.seq, base[step.from_client])}"
        if seg.flags & Flags.ACK:
            label += f" ack={_rel(seg.ack, base[not step.from_client])}"
        label += f" len={seg.payload_len}"
        body = f"-{label}-"
        arrow = (
            body.ljust(_ARROW - 2, "-") + "->"
            if step.from_client
            else "<-" + body.rjust(_ARROW - 2, "-")
        )
        cstate = step.client_state.value if step.client_state.value != prev_c else ""
        sstate = step.server_state.value if step.server_state.value != prev_s else ""
        prev_c, prev_s = step.client_state.value, step.server_state.value
        note = "; ".join(notes.get(seg.frame, ()))
        lines.append(
            f"{seg.frame:>7} {(seg.ts_ns - conn.start_ns) / _NS:>10.6f}  "
            f"{_cell(cstate, _STATE)}  {arrow}  {_cell(sstate, _STATE)}  {note}".rstrip()
        )
    lines.extend(_timer_line(conn, *t) for t in timers)
    lines.append("")
    lines.append(f"at the end of the capture: client {c.state.value}, server {s.state.value}")
    return "\n".join(lines) + "\n"


def drawing(conn: Connection, findings: Sequence[Finding]) -> str:
    """What ``show`` prints: the ladder of ``conn`` with each finding's code (and
    endpoint) beside its frame, then the findings in full."""
    notes: dict[int, list[str]] = {}
    for f in findings:
        if f.frame is not None:
            who = f" ({f.endpoint})" if f.endpoint else ""
            notes.setdefault(f.frame, []).append(f"{f.code.value}{who}")
    text = render(conn, notes)
    if findings:
        text += "\nfindings:\n"
        for f in findings:
            evidence = " ".join(map(str, f.evidence_frames))
            text += (
                f"  {f.code.value} (frame {f.frame}; evidence {evidence}; {f.rfc}): {f.detail}\n"
            )
    return text


def _timer_line(
    conn: Connection, ts_ns: int, endpoint: str, to_state: State, event: Event, frame: int | None
) -> str:
    where = (
        f"{_cell(to_state.value, _STATE)}  {'':{_ARROW}}  {'':{_STATE}}"
        if endpoint == "client"
        else f"{'':{_STATE}}  {'':{_ARROW}}  {_cell(to_state.value, _STATE)}"
    )
    return f"{'-':>7} {(ts_ns - conn.start_ns) / _NS:>10.6f}  {where}  " + (
        f"{endpoint} TIME_WAIT ran out (2*MSL)"
        if event is Event.TIMEOUT_2MSL
        else f"{endpoint} {event.value} (frame {frame}, another connection)"
    )


def _initial_states(conn: Connection) -> tuple[str, str]:
    """Each endpoint's state before the first segment (the from_state of its first move)."""
    states = {"client": State.UNKNOWN.value, "server": State.UNKNOWN.value}
    seen: set[str] = set()
    for t in conn.transitions:
        if t.endpoint not in seen:
            seen.add(t.endpoint)
            states[t.endpoint] = t.from_state.value
    for role, ep in (("client", conn.client), ("server", conn.server)):
        if role not in seen:
            states[role] = ep.state.value
    return states["client"], states["server"]


def _first_seq(conn: Connection, from_client: bool) -> int | None:
    """Sequence number a side's relative numbers count from: its ISN, or first seq seen."""
    ep = conn.client if from_client else conn.server
    if ep.isn is not None:
        return ep.isn
    for step in conn.trace:
        if step.from_client == from_client:
            return step.seg.seq
    for step in conn.trace:
        if step.from_client != from_client and step.seg.flags & Flags.ACK:
            return step.seg.ack
    return None


def _rel(value: int, base: int | None) -> int:
    """Relative number; negative for numbers before the base (a stale segment)."""
    return value if base is None else seq_diff(value, base)
