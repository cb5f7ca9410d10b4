"""Every rule that moves a TCP endpoint between RFC 793 states lives in this file.

Read RFC 793 section 3.9 ("Event Processing") and its current text, RFC 9293
section 3.10; section numbers below are RFC 9293's, whose state names and
rules are RFC 793's.

Theory of operation
-------------------
The analyzer replays a capture for *both* endpoints of a connection. A segment
seen on the wire is two things: something its sender *did* (``snd_*`` events)
and something its receiver *gets* (``rcv_*`` events). The tracker
(``tracker.py``) turns segments into these events; this module only says what
each event does to an endpoint in each state.

The table ``TRANSITIONS`` maps ``state -> event -> (new state, rule)``. Every
legal event in every state is written out, self-loops included, so that a
missing entry *means* something: the segment has no legal transition, and the
tracker records an anomaly (``Anomaly``) and leaves the state unchanged. The
rule string cites the RFC section the transition comes from; it is what
``transitions.csv`` shows in its ``rule`` column.

Three kinds of transition are not RFC events but facts of where a capture sits
(the vantage point), each written out below with the reason:

* ``presumed``: a capture that starts mid-connection begins with both
  endpoints ``UNKNOWN``; the first segment tells which synchronized state the
  endpoint must have been in (``presumed_state``).
* ``fin_retransmit``: an endpoint whose FIN we saw acknowledged sends that FIN
  again. The ACK was lost after the capture point, so the endpoint never left
  the state it was in; the tracker moves it back (RFC 9293 3.8.1, the
  retransmission timeout is the only reason to resend a FIN).
* ``synack_retransmit``: the same for a SYN-ACK whose ACK we saw.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "TRANSITIONS",
    "Anomaly",
    "Event",
    "State",
    "presumed_state",
    "transition",
]


class State(StrEnum):
    """RFC 793's eleven connection states, plus UNKNOWN for mid-connection captures."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN_SENT"
    SYN_RECEIVED = "SYN_RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN_WAIT_1"
    FIN_WAIT_2 = "FIN_WAIT_2"
    CLOSE_WAIT = "CLOSE_WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST_ACK"
    TIME_WAIT = "TIME_WAIT"
    UNKNOWN = "UNKNOWN"


class Event(StrEnum):
    """What happens to one endpoint. ``snd_*``: it sends; ``rcv_*``: it receives."""

    SND_SYN = "snd_syn"  # sends a SYN without ACK
    SND_SYN_ACK = "snd_synack"  # sends SYN+ACK
    SND_ACK = "snd_ack"  # sends a segment with no SYN/FIN/RST (ACK and/or data)
    SND_FIN = "snd_fin"  # sends a FIN (new, or a retransmission while not yet ACKed)
    SND_RST = "snd_rst"  # sends an RST
    RCV_SYN = "rcv_syn"  # gets the peer's SYN (no ACK)
    RCV_SYN_ACK = "rcv_synack"  # gets the peer's SYN+ACK acknowledging our SYN
    RCV_ACK_OF_SYN = "rcv_ack_of_syn"  # gets an ACK covering our SYN (passive side)
    RCV_FIN = "rcv_fin"  # gets the peer's FIN
    RCV_ACK_OF_FIN = "rcv_ack_of_fin"  # gets an ACK covering our FIN
    RCV_RST = "rcv_rst"  # gets an acceptable RST
    TIMEOUT_2MSL = "timeout_2msl"  # the 2*MSL TIME-WAIT timer runs out
    PRESUMED = "presumed"  # capture starts mid-connection (see module doc)
    FIN_RETRANSMIT = "fin_retransmit"  # a FIN we saw ACKed is sent again
    NEW_INCARNATION = "new_incarnation"  # a new SYN reopens the 4-tuple (TIME-WAIT replaced)
    SYNACK_RETRANSMIT = "synack_retransmit"  # a SYN-ACK we saw ACKed is sent again


class Anomaly(StrEnum):
    """Stable codes for segments with no legal transition. Public vocabulary."""

    NO_TRANSITION = "no_transition"  # event has no rule in the endpoint's state
    SEGMENT_AFTER_CLOSE = "segment_after_close"  # non-RST segment sent from CLOSED
    SYN_IN_SYNCHRONIZED_STATE = "syn_in_synchronized_state"  # SYN with new ISN, conn live
    DATA_AFTER_FIN = "data_after_fin"  # sender's data lies beyond its own FIN
    FIN_MOVED = "fin_moved"  # a second FIN from one endpoint at another sequence number
    RST_OUT_OF_WINDOW = "rst_out_of_window"  # RST not acceptable (RFC 5961 / RFC 9293 3.10.7.4)
    RST_IGNORED_IN_SYN_SENT = "rst_ignored_in_syn_sent"  # RST whose ACK does not cover our SYN
    BAD_SYNACK = "bad_synack"  # SYN-ACK acknowledging something other than our SYN
    INVALID_FLAGS = "invalid_flags"  # SYN with FIN or RST in one segment


_S = State
_E = Event

_RST_ABORT = "RFC9293 3.10.5 (ABORT call: send RST, delete TCB)"
_RST_RCVD = "RFC9293 3.10.7.4 second check (RST in a synchronized state: connection reset)"
_DUP_SYN = "RFC9293 3.10.7.4 first check (duplicate of an earlier segment: re-ACK)"

# state -> event -> (new state, rule). Read top to bottom as RFC 9293 3.10. (Final:
# compiled, read as a C variable rather than looked up in the module's dict.)
TRANSITIONS: Final[dict[State, dict[Event, tuple[State, str]]]] = {
    _S.CLOSED: {
        _E.SND_SYN: (_S.SYN_SENT, "RFC9293 3.10.1 (OPEN call, active: send SYN)"),
        _E.SND_RST: (_S.CLOSED, "RFC9293 3.10.7.1 (CLOSED: a reset answers any segment)"),
        _E.RCV_RST: (_S.CLOSED, "RFC9293 3.10.7.1 (CLOSED: an incoming RST is discarded)"),
    },
    _S.LISTEN: {
        _E.RCV_SYN: (_S.SYN_RECEIVED, "RFC9293 3.10.7.2 (LISTEN: SYN arrives, send SYN-ACK)"),
        _E.SND_RST: (
            _S.CLOSED,
            "RFC9293 3.10.7.1 (no listener: the SYN is answered by RST; LISTEN was presumed)",
        ),
        _E.RCV_RST: (_S.LISTEN, "RFC9293 3.10.7.2 (LISTEN: an incoming RST is ignored)"),
        _E.SND_SYN: (_S.SYN_SENT, "RFC9293 3.10.2 (SEND call in LISTEN: active open)"),
    },
    _S.SYN_SENT: {
        _E.SND_SYN: (_S.SYN_SENT, "RFC9293 3.8.1 (retransmission timeout: SYN sent again)"),
        _E.RCV_SYN_ACK: (
            _S.ESTABLISHED,
            "RFC9293 3.10.7.3 (SYN-SENT: SYN-ACK acknowledging our SYN, send ACK)",
        ),
        _E.RCV_SYN: (
            _S.SYN_RECEIVED,
            "RFC9293 3.10.7.3 (SYN-SENT: SYN without ACK, simultaneous open)",
        ),
        _E.RCV_RST: (
            _S.CLOSED,
            "RFC9293 3.10.7.3 (SYN-SENT: RST with acceptable ACK, connection refused)",
        ),
        _E.SND_RST: (_S.CLOSED, _RST_ABORT),
        _E.SND_ACK: (
            _S.ESTABLISHED,
            "RFC9293 3.10.7.3 (SYN-SENT: our ACK shows a SYN-ACK arrived that the capture missed)",
        ),
    },
    _S.SYN_RECEIVED: {
        _E.SND_SYN_ACK: (_S.SYN_RECEIVED, "RFC9293 3.10.7.2 (SYN-ACK sent, or sent again)"),
        _E.RCV_SYN: (_S.SYN_RECEIVED, _DUP_SYN),
        _E.RCV_ACK_OF_SYN: (
            _S.ESTABLISHED,
            "RFC9293 3.10.7.4 fifth check (SYN-RECEIVED: ACK of our SYN)",
        ),
        _E.SND_ACK: (
            _S.ESTABLISHED,
            "RFC9293 3.10.7.4 fifth check (SYN-RECEIVED: sending data shows the ACK of our "
            "SYN arrived, unseen by the capture)",
        ),
        _E.RCV_FIN: (_S.CLOSE_WAIT, "RFC9293 3.10.7.4 eighth check (SYN-RECEIVED: FIN)"),
        _E.SND_FIN: (_S.FIN_WAIT_1, "RFC9293 3.10.4 (CLOSE call in SYN-RECEIVED: send FIN)"),
        _E.RCV_RST: (
            _S.LISTEN,
            "RFC9293 3.10.7.4 second check (SYN-RECEIVED from passive open: back to LISTEN)",
        ),
        _E.SND_RST: (_S.CLOSED, _RST_ABORT),
    },
    _S.ESTABLISHED: {
        _E.SND_ACK: (_S.ESTABLISHED, "RFC9293 3.10.2 (SEND call: data or ACK)"),
        _E.RCV_SYN_ACK: (_S.ESTABLISHED, _DUP_SYN),
        _E.SYNACK_RETRANSMIT: (
            _S.SYN_RECEIVED,
            "RFC9293 3.8.1 (SYN-ACK retransmitted: the ACK of our SYN did not arrive)",
        ),
        _E.SND_FIN: (_S.FIN_WAIT_1, "RFC9293 3.10.4 (CLOSE call in ESTABLISHED: send FIN)"),
        _E.RCV_FIN: (_S.CLOSE_WAIT, "RFC9293 3.10.7.4 eighth check (ESTABLISHED: FIN)"),
        _E.SND_RST: (_S.CLOSED, _RST_ABORT),
        _E.RCV_RST: (_S.CLOSED, _RST_RCVD),
    },
    _S.FIN_WAIT_1: {
        _E.SND_ACK: (_S.FIN_WAIT_1, "RFC9293 3.10.7.4 (FIN-WAIT-1: ACK peer's data)"),
        _E.SND_FIN: (_S.FIN_WAIT_1, "RFC9293 3.8.1 (retransmission timeout: FIN sent again)"),
        _E.RCV_ACK_OF_FIN: (
            _S.FIN_WAIT_2,
            "RFC9293 3.10.7.4 fifth check (FIN-WAIT-1: our FIN acknowledged)",
        ),
        _E.RCV_FIN: (
            _S.CLOSING,
            "RFC9293 3.10.7.4 eighth check (FIN-WAIT-1: FIN before our FIN is ACKed; "
            "simultaneous close)",
        ),
        _E.SND_RST: (_S.CLOSED, _RST_ABORT),
        _E.RCV_RST: (_S.CLOSED, _RST_RCVD),
    },
    _S.FIN_WAIT_2: {
        _E.SND_ACK: (_S.FIN_WAIT_2, "RFC9293 3.10.7.4 (FIN-WAIT-2: ACK peer's data)"),
        _E.RCV_FIN: (
            _S.TIME_WAIT,
            "RFC9293 3.10.7.4 eighth check (FIN-WAIT-2: FIN, enter TIME-WAIT, start 2 MSL timer)",
        ),
        _E.FIN_RETRANSMIT: (
            _S.FIN_WAIT_1,
            "RFC9293 3.8.1 (FIN retransmitted: the ACK of our FIN did not arrive)",
        ),
        _E.SND_RST: (_S.CLOSED, _RST_ABORT),
        _E.RCV_RST: (_S.CLOSED, _RST_RCVD),
    },
    _S.CLOSE_WAIT: {
        _E.SND_ACK: (_S.CLOSE_WAIT, "RFC9293 3.10.2 (SEND call in CLOSE-WAIT: half-close)"),
        _E.RCV_FIN: (_S.CLOSE_WAIT, "RFC9293 3.10.7.4 eighth check (CLOSE-WAIT: remain)"),
        _E.SND_FIN: (_S.LAST_ACK, "RFC9293 3.10.4 (CLOSE call in CLOSE-WAIT: send FIN)"),
        _E.SND_RST: (_S.CLOSED, _RST_ABORT),
        _E.RCV_RST: (_S.CLOSED, _RST_RCVD),
    },
    _S.CLOSING: {
        _E.SND_ACK: (_S.CLOSING, "RFC9293 3.10.7.4 (CLOSING: ACK)"),
        _E.SND_FIN: (_S.CLOSING, "RFC9293 3.8.1 (retransmission timeout: FIN sent again)"),
        _E.RCV_FIN: (_S.CLOSING, "RFC9293 3.10.7.4 eighth check (CLOSING: remain)"),
        _E.RCV_ACK_OF_FIN: (
            _S.TIME_WAIT,
            "RFC9293 3.10.7.4 fifth check (CLOSING: our FIN acknowledged, enter TIME-WAIT)",
        ),
        _E.SND_RST: (_S.CLOSED, _RST_ABORT),
        _E.RCV_RST: (_S.CLOSED, _RST_RCVD),
    },
    _S.LAST_ACK: {
        _E.SND_ACK: (_S.LAST_ACK, "RFC9293 3.10.7.4 (LAST-ACK: ACK)"),
        _E.SND_FIN: (_S.LAST_ACK, "RFC9293 3.8.1 (retransmission timeout: FIN sent again)"),
        _E.RCV_FIN: (_S.LAST_ACK, "RFC9293 3.10.7.4 eighth check (LAST-ACK: remain)"),
        _E.RCV_ACK_OF_FIN: (
            _S.CLOSED,
            "RFC9293 3.10.7.4 fifth check (LAST-ACK: our FIN acknowledged, delete TCB)",
        ),
        _E.SND_RST: (_S.CLOSED, _RST_ABORT),
        _E.RCV_RST: (_S.CLOSED, _RST_RCVD),
    },
    _S.TIME_WAIT: {
        _E.SND_ACK: (_S.TIME_WAIT, "RFC9293 3.10.7.4 (TIME-WAIT: ACK a retransmitted FIN)"),
        _E.RCV_FIN: (
            _S.TIME_WAIT,
            "RFC9293 3.10.7.4 eighth check (TIME-WAIT: remain, restart the 2 MSL timer)",
        ),
        _E.TIMEOUT_2MSL: (_S.CLOSED, "RFC9293 3.10.8 (time-wait timeout: delete TCB)"),
        _E.NEW_INCARNATION: (
            _S.CLOSED,
            "RFC1122 4.2.2.13 / RFC6191 (new SYN on the 4-tuple: the TIME-WAIT TCB is replaced)",
        ),
        _E.FIN_RETRANSMIT: (
            _S.CLOSING,
            "RFC9293 3.8.1 (FIN retransmitted: the ACK of our FIN did not arrive)",
        ),
        _E.SND_RST: (_S.CLOSED, _RST_ABORT),
        _E.RCV_RST: (
            _S.CLOSED,
            "RFC9293 3.10.7.4 second check (TIME-WAIT: RST closes; RFC 1337 hazard)",
        ),
    },
    _S.UNKNOWN: {
        # An RST ends whatever state the endpoint was in; no need to presume one.
        _E.SND_RST: (_S.CLOSED, "RFC9293 3.10.5 / 3.10.7.1 (RST sent; earlier state unknown)"),
        _E.RCV_RST: (_S.CLOSED, "RFC9293 3.10.7.4 second check (RST; earlier state unknown)"),
    },
}

# Corrections for a FIN sent again after we saw it acknowledged, by the state the
# endpoint is in now. LAST_ACK -> CLOSED happened on an ACK that never arrived.
TRANSITIONS[_S.CLOSED][_E.FIN_RETRANSMIT] = (
    _S.LAST_ACK,
    "RFC9293 3.8.1 (FIN retransmitted: the ACK of our FIN did not arrive)",
)

_PRESUMED_RULE = "RFC9293 3.3.2 (capture starts mid-connection: state presumed from the segment)"


def presumed_state(event: Event) -> State:
    """The state an UNKNOWN endpoint must have been in for ``event`` to be legal."""
    if event in (Event.SND_SYN_ACK, Event.RCV_ACK_OF_SYN):
        return State.SYN_RECEIVED
    if event is Event.RCV_SYN_ACK:
        return State.SYN_SENT
    if event is Event.SND_SYN:
        return State.CLOSED
    if event is Event.RCV_SYN:
        return State.LISTEN
    return State.ESTABLISHED


def presumed_rule() -> str:
    """Rule text for the UNKNOWN -> presumed state transition."""
    return _PRESUMED_RULE


def transition(state: State, event: Event) -> tuple[State, str] | None:
    """Look ``event`` up in ``state``: the new state and its rule, or None if illegal."""
    return TRANSITIONS[state].get(event)
