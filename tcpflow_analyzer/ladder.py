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

Connections are chosen by ``select``: a ``conn_id``, or ``IP:PORT-IP:PORT``
(either order; IPv6 in brackets) with an optional ``#N`` for the Nth
incarnation of that 4-tuple.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from .segment import Flags, addr_text
from .seq import seq_diff
from .states import Event, State
from .tracker import Connection

__all__ = ["ConnSpecError", "flags_text", "render", "select"]

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


def select(conns: Sequence[Connection], spec: str) -> Connection:
    """The connection named by ``spec``: ``ID``, or ``IP:PORT-IP:PORT[#N]``."""
    spec = spec.strip()
    if spec.isdigit():
        for conn in conns:
            if conn.conn_id == int(spec):
                return conn
        raise ConnSpecError(f"no connection {spec} (the capture has {len(conns)})")
    pair, _, nth = spec.partition("#")
    # Split at the '-' that separates two endpoints (IPv6 brackets contain no '-').
    cut = pair.find("-", pair.rfind("]") + 1 if pair.startswith("[") else 0)
    if cut < 0:
        raise ConnSpecError(f"expected ID or IP:PORT-IP:PORT[#N], not {spec!r}")
    a, b = _parse_endpoint(pair[:cut]), _parse_endpoint(pair[cut + 1 :])
    matches = [
        c
        for c in conns
        if {(c.client.addr, c.client.port), (c.server.addr, c.server.port)} == {a, b}
    ]
    if not matches:
        raise ConnSpecError(f"no connection between {pair[:cut]} and {pair[cut + 1 :]}")
    if not nth:
        if len(matches) > 1:
            ids = ", ".join(f"#{c.incarnation} (id {c.conn_id})" for c in matches)
            raise ConnSpecError(f"{len(matches)} connections on that 4-tuple: add one of {ids}")
        return matches[0]
    if not nth.isdigit():
        raise ConnSpecError(f"incarnation must be a number, not {nth!r}")
    for conn in matches:
        if conn.incarnation == int(nth):
            return conn
    raise ConnSpecError(f"no incarnation #{nth} on that 4-tuple (it has {len(matches)})")


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
