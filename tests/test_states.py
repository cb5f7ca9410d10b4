"""One test per transition of ``states.TRANSITIONS``, driven through the Tracker.

Every test plays segments on a ``Wire`` (``tests/wire.py``), starting from a
state pair (``Wire().established()``, ``Wire().time_wait()``, ...), and checks
the endpoint's new state and the ``TransitionRecord`` the tracker wrote: from
and to state, event, frame (``None`` for the TIME_WAIT timer) and the RFC
section the rule cites. Tests are grouped by the state the transition leaves,
one class per state, and named ``test_<state>_<event>``;
``test_every_transition_has_a_test`` fails when a rule is added without one.

Self-loops on ACKs and data are not recorded by the tracker (only SYN, FIN and
RST self-loops are), so their tests check the state held and no record was
written. Remember where receipt takes effect (see ``tracker.py``): a FIN or SYN
at its receiver when the receiver's own ACK covers it (or the sender sends
past it), an ACK of our FIN or SYN and an acceptable RST at capture time.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpflow_analyzer.segment import Flags, Segment
from tcpflow_analyzer.seq import seq_add
from tcpflow_analyzer.states import TRANSITIONS, Anomaly, Event, State
from tcpflow_analyzer.tracker import TransitionRecord

from .wire import CLIENT, MS, SECOND, SERVER, Wire

S = State
E = Event

# Sections of RFC 9293 (and others) the rules must cite.
OPEN = "RFC9293 3.10.1"
SEND = "RFC9293 3.10.2"
CLOSE = "RFC9293 3.10.4"
ABORT = "RFC9293 3.10.5"
CLOSED_SEG = "RFC9293 3.10.7.1"
LISTEN_SEG = "RFC9293 3.10.7.2"
SYN_SENT_SEG = "RFC9293 3.10.7.3"
FIRST = "RFC9293 3.10.7.4 first check"
RST_CHECK = "RFC9293 3.10.7.4 second check"
ACK_CHECK = "RFC9293 3.10.7.4 fifth check"
FIN_CHECK = "RFC9293 3.10.7.4 eighth check"
OTHER_STATES = "RFC9293 3.10.7.4"
TIME_WAIT_TIMEOUT = "RFC9293 3.10.8"
RETRANSMIT = "RFC9293 3.8.1"
PRESUMED = "RFC9293 3.3.2"
REUSE = "RFC1122 4.2.2.13"


def moved(
    w: Wire,
    role: str,
    seg: Segment,
    from_state: State,
    to_state: State,
    event: Event,
    section: str,
    *,
    now: State | None = None,
    incarnation: int | None = None,
) -> TransitionRecord:
    """Assert ``seg`` moved ``role`` by ``event`` (one record); return the record.

    ``now``: the state after the whole segment, when a later event of the same
    segment moved the endpoint on. ``incarnation``: which connection (1-based).
    """
    conn = w.conn if incarnation is None else w.conns[incarnation - 1]
    found = [r for r in w.records(role, seg, conn) if r.event is event]
    assert len(found) == 1, f"{role} {event} at frame {seg.frame}: {conn.transitions}"
    rec = found[0]
    assert (rec.from_state, rec.to_state) == (from_state, to_state), rec
    assert (rec.frame, rec.ts_ns) == (seg.frame, seg.ts_ns), rec
    assert section in rec.rule, rec.rule
    assert w.endpoint(role, conn).state is (to_state if now is None else now)
    return rec


def stayed(w: Wire, role: str, seg: Segment, state: State) -> None:
    """Assert ``seg`` left ``role`` in ``state``, legally: no record, no anomaly."""
    assert w.records(role, seg) == []
    assert [a for a in w.conn.anomalies if a.endpoint == role and a.frame == seg.frame] == []
    assert w.state(role) is state


def timer_record(w: Wire, role: str, incarnation: int | None = None) -> list[TransitionRecord]:
    conn = w.conn if incarnation is None else w.conns[incarnation - 1]
    return [r for r in conn.transitions if r.endpoint == role and r.event is E.TIMEOUT_2MSL]


def fin_again(w: Wire, role: str, **kw: int) -> Segment:
    """Retransmit ``role``'s FIN: same sequence number as its first FIN."""
    return w.fin(role, seq=w.endpoint(role).fin_seq, **kw)


class TestClosed:
    def test_closed_snd_syn(self) -> None:
        w = Wire()
        syn = w.syn(CLIENT)
        moved(w, CLIENT, syn, S.CLOSED, S.SYN_SENT, E.SND_SYN, OPEN)
        assert w.state(SERVER) is S.LISTEN
        assert (w.conn.roles, w.conn.incarnation, w.conn.prev_conn_id) == ("syn", 1, None)

    def test_closed_snd_rst(self) -> None:
        # The client's TIME_WAIT ran out; the server's FIN, retransmitted after
        # that, meets no state and draws an RST (DOMAIN: "TIME_WAIT too short").
        w = Wire(msl=1.0).time_wait()
        entered = w.ts_ns
        fin = fin_again(w, SERVER, ts_ns=entered + 3 * SECOND)
        assert timer_record(w, CLIENT)[0].ts_ns == entered + 2 * SECOND
        rst = w.rst(CLIENT)
        moved(w, CLIENT, rst, S.CLOSED, S.CLOSED, E.SND_RST, CLOSED_SEG)
        moved(w, SERVER, fin, S.CLOSED, S.LAST_ACK, E.FIN_RETRANSMIT, RETRANSMIT, now=S.CLOSED)
        moved(w, SERVER, rst, S.LAST_ACK, S.CLOSED, E.RCV_RST, RST_CHECK)

    def test_closed_rcv_rst(self) -> None:
        # The server closed on the final ACK; the client then resets out of TIME_WAIT.
        w = Wire().time_wait()
        rst = w.rst(CLIENT)
        moved(w, SERVER, rst, S.CLOSED, S.CLOSED, E.RCV_RST, CLOSED_SEG)

    def test_closed_fin_retransmit(self) -> None:
        # The final ACK was lost after the capture point: the server never left
        # LAST_ACK, and retransmits its FIN; the client re-ACKs it.
        w = Wire().time_wait()
        fin = fin_again(w, SERVER)
        moved(w, SERVER, fin, S.CLOSED, S.LAST_ACK, E.FIN_RETRANSMIT, RETRANSMIT)
        ack = w.ack(CLIENT)
        moved(w, SERVER, ack, S.LAST_ACK, S.CLOSED, E.RCV_ACK_OF_FIN, ACK_CHECK)
        assert w.state(CLIENT) is S.TIME_WAIT
        assert w.anomalies() == []


class TestListen:
    def test_listen_rcv_syn(self) -> None:
        w = Wire().syn_sent()
        synack = w.synack(SERVER)
        moved(w, SERVER, synack, S.LISTEN, S.SYN_RECEIVED, E.RCV_SYN, LISTEN_SEG)

    def test_listen_snd_rst(self) -> None:
        # Connection refused: RST/ACK in answer to the SYN.
        w = Wire().syn_sent()
        rst = w.rst(SERVER, with_ack=True)
        moved(w, SERVER, rst, S.LISTEN, S.CLOSED, E.SND_RST, CLOSED_SEG)
        moved(w, CLIENT, rst, S.SYN_SENT, S.CLOSED, E.RCV_RST, SYN_SENT_SEG)
        assert w.anomalies() == []

    def test_listen_rcv_rst(self) -> None:
        w = Wire().syn_sent()
        rst = w.rst(CLIENT)
        moved(w, SERVER, rst, S.LISTEN, S.LISTEN, E.RCV_RST, LISTEN_SEG)

    def test_listen_snd_syn(self) -> None:
        # Simultaneous open: the "server" opens actively before it has the SYN.
        w = Wire().syn_sent()
        syn = w.syn(SERVER)
        moved(w, SERVER, syn, S.LISTEN, S.SYN_SENT, E.SND_SYN, SEND)


class TestSynSent:
    def test_syn_sent_snd_syn(self) -> None:
        w = Wire().syn_sent()
        again = w.syn(CLIENT, ts_ns=w.ts_ns + SECOND)
        moved(w, CLIENT, again, S.SYN_SENT, S.SYN_SENT, E.SND_SYN, RETRANSMIT)
        assert len(w.conns) == 1

    def test_syn_sent_rcv_synack(self) -> None:
        # The SYN-ACK takes effect at the client when the client's ACK covers it.
        w = Wire().syn_sent()
        synack = w.synack(SERVER)
        assert w.records(CLIENT, synack) == []
        ack = w.ack(CLIENT)
        moved(w, CLIENT, ack, S.SYN_SENT, S.ESTABLISHED, E.RCV_SYN_ACK, SYN_SENT_SEG)

    def test_syn_sent_rcv_syn(self) -> None:
        # Simultaneous open: SYNs cross; the client's SYN-ACK shows it got the server's SYN.
        w = Wire().syn_sent()
        w.syn(SERVER)
        synack = w.synack(CLIENT)
        moved(w, CLIENT, synack, S.SYN_SENT, S.SYN_RECEIVED, E.RCV_SYN, SYN_SENT_SEG)

    def test_syn_sent_rcv_rst(self) -> None:
        w = Wire().syn_sent()
        rst = w.rst(SERVER, with_ack=True)
        moved(w, CLIENT, rst, S.SYN_SENT, S.CLOSED, E.RCV_RST, SYN_SENT_SEG)

    @pytest.mark.parametrize("ack", [None, 0, 1, 999, 1002])
    def test_syn_sent_rcv_rst_wrong_ack_ignored(self, ack: int | None) -> None:
        # RFC 9293 3.10.7.3: in SYN-SENT an RST counts only if it ACKs our SYN exactly.
        w = Wire(client_isn=1000).syn_sent()
        rst = w.rst(SERVER) if ack is None else w.rst(SERVER, with_ack=True, ack=ack)
        assert w.records(CLIENT, rst) == []
        assert w.state(CLIENT) is S.SYN_SENT
        [anomaly] = w.anomalies()
        assert (anomaly.endpoint, anomaly.frame, anomaly.state, anomaly.code) == (
            CLIENT,
            rst.frame,
            S.SYN_SENT,
            Anomaly.RST_IGNORED_IN_SYN_SENT,
        )
        # The handshake still completes afterwards.
        w.synack(SERVER, isn=7000)
        w.ack(CLIENT)
        assert w.state(CLIENT) is S.ESTABLISHED

    def test_syn_sent_snd_rst(self) -> None:
        w = Wire().syn_sent()
        rst = w.rst(CLIENT)
        moved(w, CLIENT, rst, S.SYN_SENT, S.CLOSED, E.SND_RST, ABORT)

    def test_syn_sent_snd_ack(self) -> None:
        # The capture missed the SYN-ACK; the client's ACK shows it arrived.
        w = Wire().syn_sent()
        w.synack(SERVER, seen=False)
        ack = w.ack(CLIENT)
        moved(w, CLIENT, ack, S.SYN_SENT, S.ESTABLISHED, E.SND_ACK, SYN_SENT_SEG)


class TestSynReceived:
    def test_syn_received_snd_synack(self) -> None:
        w = Wire().syn_received()
        again = w.synack(SERVER, ts_ns=w.ts_ns + SECOND)
        moved(w, SERVER, again, S.SYN_RECEIVED, S.SYN_RECEIVED, E.SND_SYN_ACK, LISTEN_SEG)

    def test_syn_received_rcv_syn(self) -> None:
        # Capture starts at the SYN-ACK, which is lost after the capture point;
        # the client retransmits its SYN and the server answers the duplicate.
        w = Wire()
        w.syn(CLIENT, seen=False)
        w.synack(SERVER)
        assert w.state(SERVER) is S.SYN_RECEIVED
        w.syn(CLIENT, ts_ns=w.ts_ns + SECOND)
        synack = w.synack(SERVER)
        moved(w, SERVER, synack, S.SYN_RECEIVED, S.SYN_RECEIVED, E.RCV_SYN, FIRST)

    def test_syn_received_rcv_ack_of_syn(self) -> None:
        w = Wire().syn_received()
        ack = w.ack(CLIENT)
        moved(w, SERVER, ack, S.SYN_RECEIVED, S.ESTABLISHED, E.RCV_ACK_OF_SYN, ACK_CHECK)

    def test_syn_received_rcv_ack_of_syn_simultaneous_open(self) -> None:
        # RFC 9293 3.5, simultaneous open: a side in SYN-RECEIVED that gets a
        # SYN-ACK acknowledging its SYN enters ESTABLISHED (3.10.7.4 fifth check),
        # whether its own SYN carried an ACK or not.
        w = Wire().syn_sent()
        w.syn(SERVER)
        w.synack(CLIENT)
        synack = w.synack(SERVER)
        moved(w, CLIENT, synack, S.SYN_RECEIVED, S.ESTABLISHED, E.RCV_ACK_OF_SYN, ACK_CHECK)

    def test_syn_received_snd_ack(self) -> None:
        # The client's ACK was missed; the server sending data shows it arrived.
        w = Wire().syn_received()
        w.ack(CLIENT, seen=False)
        data = w.data(SERVER)
        moved(w, SERVER, data, S.SYN_RECEIVED, S.ESTABLISHED, E.SND_ACK, ACK_CHECK)

    def test_syn_received_rcv_fin(self) -> None:
        # Only a FIN that says nothing about the server's SYN leaves the server in
        # SYN-RECEIVED until the FIN arrives: here a FIN without the ACK bit,
        # which the server's own ACK shows it took.
        w = Wire().syn_received()
        w.send(CLIENT, Flags.FIN)
        ack = w.ack(SERVER)
        moved(w, SERVER, ack, S.SYN_RECEIVED, S.CLOSE_WAIT, E.RCV_FIN, FIN_CHECK)

    def test_syn_received_snd_fin(self) -> None:
        w = Wire().syn_received()
        fin = w.fin(SERVER)
        moved(w, SERVER, fin, S.SYN_RECEIVED, S.FIN_WAIT_1, E.SND_FIN, CLOSE)

    def test_syn_received_rcv_rst(self) -> None:
        w = Wire().syn_received()
        rst = w.rst(CLIENT)
        moved(w, SERVER, rst, S.SYN_RECEIVED, S.LISTEN, E.RCV_RST, RST_CHECK)

    def test_syn_received_snd_rst(self) -> None:
        w = Wire().syn_received()
        rst = w.rst(SERVER, with_ack=True)
        moved(w, SERVER, rst, S.SYN_RECEIVED, S.CLOSED, E.SND_RST, ABORT)
        moved(w, CLIENT, rst, S.SYN_SENT, S.CLOSED, E.RCV_RST, SYN_SENT_SEG)


class TestEstablished:
    def test_established_three_way_handshake(self) -> None:
        w = Wire()
        syn, synack, ack = w.syn(CLIENT), w.synack(SERVER), w.ack(CLIENT)
        assert [(r.endpoint, r.frame, r.from_state, r.to_state) for r in w.conn.transitions] == [
            (CLIENT, syn.frame, S.CLOSED, S.SYN_SENT),
            (SERVER, synack.frame, S.LISTEN, S.SYN_RECEIVED),
            (SERVER, synack.frame, S.SYN_RECEIVED, S.SYN_RECEIVED),
            (CLIENT, ack.frame, S.SYN_SENT, S.ESTABLISHED),
            (SERVER, ack.frame, S.SYN_RECEIVED, S.ESTABLISHED),
        ]
        assert w.conn.handshake_acked

    def test_established_snd_ack(self) -> None:
        w = Wire().established()
        for seg in (w.data(CLIENT), w.data(SERVER, 1400), w.ack(CLIENT)):
            stayed(w, CLIENT, seg, S.ESTABLISHED)
            stayed(w, SERVER, seg, S.ESTABLISHED)

    def test_established_rcv_synack(self) -> None:
        # The client went ESTABLISHED on its own ACK (SYN-ACK missed); the server
        # retransmits the SYN-ACK, and the client's ACK of it is a duplicate SYN.
        w = Wire().syn_sent()
        w.synack(SERVER, seen=False)
        w.ack(CLIENT)
        w.synack(SERVER, ts_ns=w.ts_ns + SECOND)
        ack = w.ack(CLIENT)
        stayed(w, CLIENT, ack, S.ESTABLISHED)
        moved(w, SERVER, ack, S.SYN_RECEIVED, S.ESTABLISHED, E.RCV_ACK_OF_SYN, ACK_CHECK)

    def test_established_synack_retransmit(self) -> None:
        # We saw the client's ACK, but the server did not get it (lost after us).
        w = Wire().established()
        synack = w.synack(SERVER, ts_ns=w.ts_ns + SECOND)
        moved(w, SERVER, synack, S.ESTABLISHED, S.SYN_RECEIVED, E.SYNACK_RETRANSMIT, RETRANSMIT)
        ack = w.ack(CLIENT)
        moved(w, SERVER, ack, S.SYN_RECEIVED, S.ESTABLISHED, E.RCV_ACK_OF_SYN, ACK_CHECK)
        assert w.anomalies() == []

    def test_established_snd_fin(self) -> None:
        w = Wire().established()
        fin = w.fin(CLIENT)
        moved(w, CLIENT, fin, S.ESTABLISHED, S.FIN_WAIT_1, E.SND_FIN, CLOSE)
        assert (w.conn.first_fin, w.conn.first_fin_frame) == (CLIENT, fin.frame)

    def test_established_snd_fin_on_data(self) -> None:
        w = Wire().established()
        fin = w.send(CLIENT, Flags.FIN | Flags.ACK | Flags.PSH, length=500)
        moved(w, CLIENT, fin, S.ESTABLISHED, S.FIN_WAIT_1, E.SND_FIN, CLOSE)
        assert w.endpoint(CLIENT).fin_seq == seq_add(fin.seq, 500)

    def test_established_rcv_fin(self) -> None:
        # The FIN takes effect at the server when the server's ACK covers it.
        w = Wire().fin_wait_1()
        ack = w.ack(SERVER)
        moved(w, SERVER, ack, S.ESTABLISHED, S.CLOSE_WAIT, E.RCV_FIN, FIN_CHECK)

    def test_established_rcv_fin_shown_by_later_segment(self) -> None:
        # TCP delivers in order: a segment past the FIN proves the FIN arrived.
        w = Wire().fin_wait_1()
        assert w.state(SERVER) is S.ESTABLISHED
        later = w.ack(CLIENT)
        moved(w, SERVER, later, S.ESTABLISHED, S.CLOSE_WAIT, E.RCV_FIN, FIN_CHECK)

    def test_established_snd_rst(self) -> None:
        w = Wire().established()
        rst = w.rst(CLIENT)
        moved(w, CLIENT, rst, S.ESTABLISHED, S.CLOSED, E.SND_RST, ABORT)
        assert (w.conn.first_rst, w.conn.first_rst_frame) == (CLIENT, rst.frame)

    def test_established_rcv_rst(self) -> None:
        w = Wire().established()
        rst = w.rst(CLIENT)
        moved(w, SERVER, rst, S.ESTABLISHED, S.CLOSED, E.RCV_RST, RST_CHECK)

    @pytest.mark.parametrize("offset", [-1, -70_000, 65_535, 1_000_000, 2**31 - 1])
    def test_established_rcv_rst_out_of_window_ignored(self, offset: int) -> None:
        # RFC 5961 / RFC 9293 3.10.7.4: an RST outside RCV.NXT .. RCV.NXT+RCV.WND is dropped.
        w = Wire().established()
        w.data(CLIENT)
        rst = w.rst(CLIENT, seq=seq_add(w.nxt(CLIENT), offset))
        assert w.records(SERVER, rst) == []
        assert w.state(SERVER) is S.ESTABLISHED
        [anomaly] = w.anomalies()
        assert (anomaly.endpoint, anomaly.frame, anomaly.state, anomaly.code) == (
            SERVER,
            rst.frame,
            S.ESTABLISHED,
            Anomaly.RST_OUT_OF_WINDOW,
        )
        # The server carries on: it sends, then closes.
        stayed(w, SERVER, w.data(SERVER), S.ESTABLISHED)
        fin = w.fin(SERVER)
        moved(w, SERVER, fin, S.ESTABLISHED, S.FIN_WAIT_1, E.SND_FIN, CLOSE)

    def test_established_rcv_rst_in_window(self) -> None:
        w = Wire().established()
        rst = w.rst(CLIENT, seq=seq_add(w.nxt(CLIENT), 1000))
        moved(w, SERVER, rst, S.ESTABLISHED, S.CLOSED, E.RCV_RST, RST_CHECK)


class TestFinWait1:
    def test_fin_wait_1_snd_ack(self) -> None:
        # The server's data crossed the client's FIN; the client ACKs it.
        w = Wire().established()
        fin = w.fin(CLIENT)
        w.data(SERVER, ack=fin.seq)
        ack = w.ack(CLIENT)
        stayed(w, CLIENT, ack, S.FIN_WAIT_1)

    def test_fin_wait_1_snd_fin(self) -> None:
        w = Wire().fin_wait_1()
        again = fin_again(w, CLIENT, ts_ns=w.ts_ns + 200 * MS)
        moved(w, CLIENT, again, S.FIN_WAIT_1, S.FIN_WAIT_1, E.SND_FIN, RETRANSMIT)
        assert w.endpoint(CLIENT).fins == 2

    def test_fin_wait_1_rcv_ack_of_fin(self) -> None:
        w = Wire().fin_wait_1()
        ack = w.ack(SERVER)
        moved(w, CLIENT, ack, S.FIN_WAIT_1, S.FIN_WAIT_2, E.RCV_ACK_OF_FIN, ACK_CHECK)

    def test_fin_wait_1_rcv_ack_not_covering_fin(self) -> None:
        w = Wire().established()
        fin = w.fin(CLIENT, length=0)
        ack = w.ack(SERVER, ack=fin.seq)  # acknowledges everything before the FIN
        stayed(w, CLIENT, ack, S.FIN_WAIT_1)
        assert w.state(SERVER) is S.ESTABLISHED

    @pytest.mark.parametrize(
        ("isn", "length"),
        [
            (2**32 - 2, 0),  # FIN at 2**32 - 1: its ACK is 0
            (2**32 - 1, 0),  # SYN at 2**32 - 1: FIN at 0
            (2**32 - 3, 2),  # data ends at 2**32 - 1: FIN at 0
            (2**32 - 100, 150),  # data wraps: FIN at 50
            (2**31 - 2, 0),  # half way round: FIN at 2**31 - 1, ACK 2**31
        ],
    )
    def test_fin_wait_1_rcv_ack_of_fin_sequence_wraps(self, isn: int, length: int) -> None:
        w = Wire(client_isn=isn).established()
        if length:
            w.data(CLIENT, length)
            w.ack(SERVER)
        fin = w.fin(CLIENT)
        assert fin.seq == seq_add(isn, 1 + length)
        for wrong in (seq_add(fin.seq, -1), fin.seq):
            stayed(w, CLIENT, w.ack(SERVER, ack=wrong), S.FIN_WAIT_1)
        ack = w.ack(SERVER, ack=seq_add(fin.seq, 1))
        moved(w, CLIENT, ack, S.FIN_WAIT_1, S.FIN_WAIT_2, E.RCV_ACK_OF_FIN, ACK_CHECK)
        moved(w, SERVER, ack, S.ESTABLISHED, S.CLOSE_WAIT, E.RCV_FIN, FIN_CHECK)

    def test_fin_wait_1_rcv_fin(self) -> None:
        # The FINs crossed: the server's FIN does not acknowledge the client's.
        w = Wire().fins_crossed()
        ack = w.ack(CLIENT)
        moved(w, CLIENT, ack, S.FIN_WAIT_1, S.CLOSING, E.RCV_FIN, FIN_CHECK)

    def test_fin_wait_1_rcv_fin_with_ack_of_fin(self) -> None:
        # Three-segment close: FIN, FIN+ACK, ACK. RFC 9293 3.10.7.4 handles the
        # ACK (fifth check) before the FIN (eighth): FIN_WAIT_1 -> FIN_WAIT_2 ->
        # TIME_WAIT, never CLOSING. The FIN itself takes effect at the client's ACK.
        w = Wire().fin_wait_1()
        finack = w.fin(SERVER)
        moved(w, CLIENT, finack, S.FIN_WAIT_1, S.FIN_WAIT_2, E.RCV_ACK_OF_FIN, ACK_CHECK)
        moved(w, SERVER, finack, S.ESTABLISHED, S.CLOSE_WAIT, E.RCV_FIN, FIN_CHECK, now=S.LAST_ACK)
        moved(w, SERVER, finack, S.CLOSE_WAIT, S.LAST_ACK, E.SND_FIN, CLOSE)
        ack = w.ack(CLIENT)
        moved(w, CLIENT, ack, S.FIN_WAIT_2, S.TIME_WAIT, E.RCV_FIN, FIN_CHECK)
        moved(w, SERVER, ack, S.LAST_ACK, S.CLOSED, E.RCV_ACK_OF_FIN, ACK_CHECK)
        assert S.CLOSING not in {r.to_state for r in w.conn.transitions}
        assert not w.conn.simultaneous_close

    def test_fin_wait_1_snd_rst(self) -> None:
        w = Wire().fin_wait_1()
        rst = w.rst(CLIENT)
        moved(w, CLIENT, rst, S.FIN_WAIT_1, S.CLOSED, E.SND_RST, ABORT)
        assert w.conn.fin_before_rst

    def test_fin_wait_1_rcv_rst(self) -> None:
        w = Wire().fin_wait_1()
        rst = w.rst(SERVER)
        moved(w, CLIENT, rst, S.FIN_WAIT_1, S.CLOSED, E.RCV_RST, RST_CHECK)


class TestFinWait2:
    def test_fin_wait_2_snd_ack(self) -> None:
        # Half-close: the server keeps sending, the client keeps ACKing.
        w = Wire().fin_wait_2()
        data = w.data(SERVER, 300)
        ack = w.ack(CLIENT)
        stayed(w, CLIENT, data, S.FIN_WAIT_2)
        stayed(w, CLIENT, ack, S.FIN_WAIT_2)
        assert w.conn.half_close_bytes == 300

    def test_fin_wait_2_rcv_fin(self) -> None:
        # The FIN takes effect at the client when the client's ACK covers it.
        w = Wire().fin_wait_2()
        fin = w.fin(SERVER)
        assert w.records(CLIENT, fin) == []
        ack = w.ack(CLIENT)
        moved(w, CLIENT, ack, S.FIN_WAIT_2, S.TIME_WAIT, E.RCV_FIN, FIN_CHECK)

    def test_fin_wait_2_fin_retransmit(self) -> None:
        # We saw the server ACK the client's FIN, but the client did not get it.
        w = Wire().fin_wait_2()
        again = fin_again(w, CLIENT, ts_ns=w.ts_ns + 200 * MS)
        moved(w, CLIENT, again, S.FIN_WAIT_2, S.FIN_WAIT_1, E.FIN_RETRANSMIT, RETRANSMIT)
        ack = w.ack(SERVER)
        moved(w, CLIENT, ack, S.FIN_WAIT_1, S.FIN_WAIT_2, E.RCV_ACK_OF_FIN, ACK_CHECK)

    def test_fin_wait_2_snd_rst(self) -> None:
        w = Wire().fin_wait_2()
        rst = w.rst(CLIENT)
        moved(w, CLIENT, rst, S.FIN_WAIT_2, S.CLOSED, E.SND_RST, ABORT)

    def test_fin_wait_2_rcv_rst(self) -> None:
        w = Wire().fin_wait_2()
        rst = w.rst(SERVER)
        moved(w, CLIENT, rst, S.FIN_WAIT_2, S.CLOSED, E.RCV_RST, RST_CHECK)


class TestCloseWait:
    def test_close_wait_snd_ack(self) -> None:
        w = Wire().close_wait()
        stayed(w, SERVER, w.data(SERVER, 1000), S.CLOSE_WAIT)

    def test_close_wait_rcv_fin(self) -> None:
        # The server's ACK of the FIN was lost after the capture point: the client
        # retransmits its FIN and the server, in CLOSE_WAIT, ACKs it again.
        w = Wire().close_wait()
        fin_again(w, CLIENT, ts_ns=w.ts_ns + 200 * MS)
        ack = w.ack(SERVER)
        moved(w, SERVER, ack, S.CLOSE_WAIT, S.CLOSE_WAIT, E.RCV_FIN, FIN_CHECK)

    def test_close_wait_snd_fin(self) -> None:
        w = Wire().close_wait()
        fin = w.fin(SERVER)
        moved(w, SERVER, fin, S.CLOSE_WAIT, S.LAST_ACK, E.SND_FIN, CLOSE)

    def test_close_wait_snd_rst(self) -> None:
        w = Wire().close_wait()
        rst = w.rst(SERVER)
        moved(w, SERVER, rst, S.CLOSE_WAIT, S.CLOSED, E.SND_RST, ABORT)

    def test_close_wait_rcv_rst(self) -> None:
        w = Wire().close_wait()
        rst = w.rst(CLIENT)
        moved(w, SERVER, rst, S.CLOSE_WAIT, S.CLOSED, E.RCV_RST, RST_CHECK)


class TestClosing:
    def test_closing_simultaneous_close(self) -> None:
        # FINs cross; each side's ACK of the other's FIN moves both through CLOSING.
        w = Wire().fins_crossed()
        ack_c = w.ack(CLIENT)
        moved(w, CLIENT, ack_c, S.FIN_WAIT_1, S.CLOSING, E.RCV_FIN, FIN_CHECK)
        moved(w, SERVER, ack_c, S.FIN_WAIT_1, S.CLOSING, E.RCV_FIN, FIN_CHECK, now=S.TIME_WAIT)
        moved(w, SERVER, ack_c, S.CLOSING, S.TIME_WAIT, E.RCV_ACK_OF_FIN, ACK_CHECK)
        ack_s = w.ack(SERVER)
        moved(w, CLIENT, ack_s, S.CLOSING, S.TIME_WAIT, E.RCV_ACK_OF_FIN, ACK_CHECK)
        assert w.conn.simultaneous_close
        assert w.anomalies() == []

    def test_closing_snd_ack(self) -> None:
        w = Wire().closing()
        stayed(w, CLIENT, w.ack(CLIENT), S.CLOSING)

    def test_closing_snd_fin(self) -> None:
        w = Wire().closing()
        again = fin_again(w, CLIENT, ts_ns=w.ts_ns + 200 * MS)
        moved(w, CLIENT, again, S.CLOSING, S.CLOSING, E.SND_FIN, RETRANSMIT)

    def test_closing_rcv_fin(self) -> None:
        # The server retransmits its FIN before the client's FIN reached it (its
        # ACK field does not cover the client's FIN); the client, in CLOSING, ACKs
        # it again.
        w = Wire().closing()
        client_fin = w.endpoint(CLIENT).fin_seq
        assert client_fin is not None
        fin = fin_again(w, SERVER, ack=client_fin, ts_ns=w.ts_ns + 200 * MS)
        moved(w, SERVER, fin, S.TIME_WAIT, S.CLOSING, E.FIN_RETRANSMIT, RETRANSMIT)
        assert w.state(CLIENT) is S.CLOSING
        ack = w.ack(CLIENT)
        moved(w, CLIENT, ack, S.CLOSING, S.CLOSING, E.RCV_FIN, FIN_CHECK)

    def test_closing_rcv_ack_of_fin(self) -> None:
        w = Wire().closing()
        ack = w.ack(SERVER)
        moved(w, CLIENT, ack, S.CLOSING, S.TIME_WAIT, E.RCV_ACK_OF_FIN, ACK_CHECK)

    def test_closing_snd_rst(self) -> None:
        w = Wire().closing()
        rst = w.rst(CLIENT)
        moved(w, CLIENT, rst, S.CLOSING, S.CLOSED, E.SND_RST, ABORT)

    def test_closing_rcv_rst(self) -> None:
        w = Wire().closing()
        rst = w.rst(SERVER)
        moved(w, CLIENT, rst, S.CLOSING, S.CLOSED, E.RCV_RST, RST_CHECK)


class TestLastAck:
    def test_last_ack_snd_ack(self) -> None:
        w = Wire().last_ack()
        stayed(w, SERVER, w.ack(SERVER), S.LAST_ACK)

    def test_last_ack_snd_fin(self) -> None:
        w = Wire().last_ack()
        again = fin_again(w, SERVER, ts_ns=w.ts_ns + 200 * MS)
        moved(w, SERVER, again, S.LAST_ACK, S.LAST_ACK, E.SND_FIN, RETRANSMIT)

    def test_last_ack_rcv_fin(self) -> None:
        # The server's ACK of the client's FIN was lost after the capture point;
        # the client retransmits its FIN, the server (in LAST_ACK) ACKs it again.
        # (It got neither the ACK nor the server's FIN, which its ACK field shows.)
        w = Wire().last_ack()
        fin_seq = w.endpoint(SERVER).fin_seq
        assert fin_seq is not None
        fin_again(w, CLIENT, ack=fin_seq, ts_ns=w.ts_ns + 200 * MS)
        assert w.state(CLIENT) is S.FIN_WAIT_1
        ack = w.ack(SERVER)
        moved(w, SERVER, ack, S.LAST_ACK, S.LAST_ACK, E.RCV_FIN, FIN_CHECK)

    def test_last_ack_rcv_ack_of_fin(self) -> None:
        w = Wire().last_ack()
        ack = w.ack(CLIENT)
        moved(w, SERVER, ack, S.LAST_ACK, S.CLOSED, E.RCV_ACK_OF_FIN, ACK_CHECK)

    def test_last_ack_rcv_ack_not_covering_fin(self) -> None:
        w = Wire().last_ack()
        fin_seq = w.endpoint(SERVER).fin_seq
        assert fin_seq is not None
        stayed(w, SERVER, w.ack(CLIENT, ack=fin_seq), S.LAST_ACK)
        assert w.state(CLIENT) is S.FIN_WAIT_2

    @pytest.mark.parametrize("isn", [2**32 - 2, 2**32 - 1, 2**32 - 3])
    def test_last_ack_rcv_ack_of_fin_sequence_wraps(self, isn: int) -> None:
        w = Wire(server_isn=isn).last_ack()
        fin_seq = w.endpoint(SERVER).fin_seq
        assert fin_seq == seq_add(isn, 1)
        stayed(w, SERVER, w.ack(CLIENT, ack=fin_seq), S.LAST_ACK)
        ack = w.ack(CLIENT, ack=seq_add(fin_seq, 1))
        moved(w, SERVER, ack, S.LAST_ACK, S.CLOSED, E.RCV_ACK_OF_FIN, ACK_CHECK)

    def test_last_ack_snd_rst(self) -> None:
        w = Wire().last_ack()
        rst = w.rst(SERVER)
        moved(w, SERVER, rst, S.LAST_ACK, S.CLOSED, E.SND_RST, ABORT)

    def test_last_ack_rcv_rst(self) -> None:
        w = Wire().last_ack()
        rst = w.rst(CLIENT)
        moved(w, SERVER, rst, S.LAST_ACK, S.CLOSED, E.RCV_RST, RST_CHECK)


class TestTimeWait:
    def test_time_wait_four_segment_close(self) -> None:
        w = Wire().established()
        fin_c, ack_s, fin_s, ack_c = w.fin(CLIENT), w.ack(SERVER), w.fin(SERVER), w.ack(CLIENT)
        closes = [(r.endpoint, r.frame, r.from_state, r.to_state) for r in w.conn.transitions[5:]]
        assert closes == [
            (CLIENT, fin_c.frame, S.ESTABLISHED, S.FIN_WAIT_1),
            (SERVER, ack_s.frame, S.ESTABLISHED, S.CLOSE_WAIT),
            (CLIENT, ack_s.frame, S.FIN_WAIT_1, S.FIN_WAIT_2),
            (SERVER, fin_s.frame, S.CLOSE_WAIT, S.LAST_ACK),
            (CLIENT, ack_c.frame, S.FIN_WAIT_2, S.TIME_WAIT),
            (SERVER, ack_c.frame, S.LAST_ACK, S.CLOSED),
        ]
        assert not w.conn.simultaneous_close

    def test_time_wait_snd_ack(self) -> None:
        # A duplicate of the final ACK: TIME_WAIT holds and its timer does not move.
        w = Wire().time_wait()
        deadline = w.endpoint(CLIENT).tw_deadline_ns
        stayed(w, CLIENT, w.ack(CLIENT), S.TIME_WAIT)
        assert w.endpoint(CLIENT).tw_deadline_ns == deadline

    def test_time_wait_rcv_fin(self) -> None:
        # RFC 9293 3.10.7.4: a retransmitted FIN in TIME-WAIT is ACKed and the
        # 2 MSL timer restarts, from the re-ACK that shows the FIN arrived.
        w = Wire(msl=1.0).time_wait()
        entered = w.ts_ns
        fin_again(w, SERVER, ts_ns=entered + 1500 * MS)
        ack = w.ack(CLIENT)
        moved(w, CLIENT, ack, S.TIME_WAIT, S.TIME_WAIT, E.RCV_FIN, FIN_CHECK)
        w.idle_until(entered + 2 * SECOND + MS)
        assert w.state(CLIENT) is S.TIME_WAIT
        w.idle_until(ack.ts_ns + 2 * SECOND)
        [timeout] = timer_record(w, CLIENT)
        assert timeout.ts_ns == ack.ts_ns + 2 * SECOND

    @pytest.mark.parametrize("msl", [0.25, 15.0, 30.0, 120.0])
    def test_time_wait_timeout_2msl(self, msl: float) -> None:
        w = Wire(msl=msl).time_wait()
        entered = w.records(CLIENT)[-1]
        assert entered.to_state is S.TIME_WAIT
        deadline = entered.ts_ns + round(2 * msl * SECOND)
        w.idle_until(deadline - 1)
        assert w.state(CLIENT) is S.TIME_WAIT
        assert timer_record(w, CLIENT) == []
        w.idle_until(deadline)
        [timeout] = timer_record(w, CLIENT)
        assert (timeout.frame, timeout.ts_ns) == (None, deadline)
        assert (timeout.from_state, timeout.to_state) == (S.TIME_WAIT, S.CLOSED)
        assert TIME_WAIT_TIMEOUT in timeout.rule
        assert w.state(CLIENT) is S.CLOSED

    def test_time_wait_timeout_2msl_applied_before_a_late_segment(self) -> None:
        # Expiry is lazy: the next segment of the connection applies it first,
        # stamped with the deadline, not with the segment's time.
        w = Wire(msl=1.0).time_wait()
        entered = w.ts_ns
        late = w.ack(SERVER, ts_ns=entered + 5 * SECOND)
        [timeout] = timer_record(w, CLIENT)
        assert (timeout.frame, timeout.ts_ns) == (None, entered + 2 * SECOND)
        assert w.conn.transitions[-1] is timeout
        assert [(a.endpoint, a.frame, a.code) for a in w.anomalies()] == [
            (SERVER, late.frame, Anomaly.SEGMENT_AFTER_CLOSE)
        ]

    def test_time_wait_timeout_2msl_before_new_syn(self) -> None:
        # TIME_WAIT was over when the new SYN came: the 4-tuple was not reused
        # during TIME_WAIT, so the old endpoint times out, it is not replaced.
        w = Wire(msl=1.0).time_wait()
        entered = w.ts_ns
        w.syn(CLIENT, isn=seq_add(w.nxt(CLIENT), 100_000), ts_ns=entered + 5 * SECOND)
        assert len(w.conns) == 2
        old = w.records(CLIENT, conn=w.conns[0])[-1]
        assert (old.event, old.frame, old.ts_ns) == (
            E.TIMEOUT_2MSL,
            None,
            entered + 2 * SECOND,
        )

    def test_time_wait_new_incarnation(self) -> None:
        w = Wire().time_wait()
        old_isn = w.client.isn
        syn = w.syn(CLIENT, isn=seq_add(w.nxt(CLIENT), 100_000), ts_ns=w.ts_ns + SECOND)
        assert syn.seq != old_isn
        old, new = w.conns
        moved(w, CLIENT, syn, S.TIME_WAIT, S.CLOSED, E.NEW_INCARNATION, REUSE, incarnation=1)
        assert (old.incarnation, old.prev_conn_id) == (1, None)
        assert (new.incarnation, new.prev_conn_id) == (2, old.conn_id)
        moved(w, CLIENT, syn, S.CLOSED, S.SYN_SENT, E.SND_SYN, OPEN)
        # The new SYN retransmitted (same ISN) is not a third incarnation.
        again = w.syn(CLIENT, ts_ns=w.ts_ns + SECOND)
        assert len(w.conns) == 2
        moved(w, CLIENT, again, S.SYN_SENT, S.SYN_SENT, E.SND_SYN, RETRANSMIT)
        w.synack(SERVER, isn=900_000)
        w.ack(CLIENT)
        w.expect(S.ESTABLISHED, S.ESTABLISHED)
        assert old.client.state is S.CLOSED

    def test_time_wait_old_syn_same_isn_is_no_new_incarnation(self) -> None:
        # A late duplicate of the old connection's SYN (its ISN) is no new connection.
        w = Wire().time_wait()
        dup = w.send(CLIENT, Flags.SYN, seq=w.client.isn, advance=False)
        assert len(w.conns) == 1
        assert w.state(CLIENT) is S.TIME_WAIT
        assert w.records(CLIENT, dup) == []
        assert [a.frame for a in w.anomalies()] == [dup.frame]

    def test_time_wait_fin_retransmit(self) -> None:
        # Simultaneous close; the server's ACK of the client's FIN is lost after
        # the capture point, so the client, which we put in TIME_WAIT, resends it.
        w = Wire().closing()
        w.ack(SERVER)
        assert w.state(CLIENT) is S.TIME_WAIT
        again = fin_again(w, CLIENT, ts_ns=w.ts_ns + 200 * MS)
        moved(w, CLIENT, again, S.TIME_WAIT, S.CLOSING, E.FIN_RETRANSMIT, RETRANSMIT)
        ack = w.ack(SERVER)
        moved(w, CLIENT, ack, S.CLOSING, S.TIME_WAIT, E.RCV_ACK_OF_FIN, ACK_CHECK)

    def test_time_wait_reentered_restarts_timer(self) -> None:
        # Back in TIME_WAIT after the FIN retransmission: 2 MSL from re-entry.
        w = Wire(msl=1.0).closing()
        first = w.ack(SERVER)
        fin_again(w, CLIENT, ts_ns=first.ts_ns + 1500 * MS)
        reentry = w.ack(SERVER)
        assert w.state(CLIENT) is S.TIME_WAIT
        assert w.endpoint(CLIENT).tw_deadline_ns == reentry.ts_ns + 2 * SECOND
        w.idle_until(first.ts_ns + 2 * SECOND + MS)
        assert w.state(CLIENT) is S.TIME_WAIT

    def test_time_wait_snd_rst(self) -> None:
        w = Wire().time_wait()
        rst = w.rst(CLIENT)
        moved(w, CLIENT, rst, S.TIME_WAIT, S.CLOSED, E.SND_RST, ABORT)

    def test_time_wait_rcv_rst(self) -> None:
        # RFC 1337 TIME-WAIT assassination: an acceptable RST ends TIME_WAIT.
        w = Wire().time_wait()
        rst = w.rst(SERVER)
        rec = moved(w, CLIENT, rst, S.TIME_WAIT, S.CLOSED, E.RCV_RST, RST_CHECK)
        assert "1337" in rec.rule

    def test_time_wait_rcv_rst_out_of_window_ignored(self) -> None:
        w = Wire().time_wait()
        rst = w.rst(SERVER, seq=seq_add(w.nxt(SERVER), 1_000_000))
        assert w.state(CLIENT) is S.TIME_WAIT
        assert [(a.endpoint, a.code) for a in w.anomalies()] == [
            (CLIENT, Anomaly.RST_OUT_OF_WINDOW)
        ]
        assert w.records(CLIENT, rst) == []


class TestUnknown:
    def test_unknown_snd_rst(self) -> None:
        w = Wire()
        rst = w.rst(CLIENT)
        moved(w, CLIENT, rst, S.UNKNOWN, S.CLOSED, E.SND_RST, ABORT)

    def test_unknown_rcv_rst(self) -> None:
        w = Wire()
        rst = w.rst(CLIENT)
        moved(w, SERVER, rst, S.UNKNOWN, S.CLOSED, E.RCV_RST, RST_CHECK)

    def test_unknown_presumed_established(self) -> None:
        # Capture starts mid-connection: a data segment shows both are synchronized.
        w = Wire(client_isn=123_456)
        data = w.data(CLIENT)
        moved(w, SERVER, data, S.UNKNOWN, S.ESTABLISHED, E.PRESUMED, PRESUMED)
        moved(w, CLIENT, data, S.UNKNOWN, S.ESTABLISHED, E.PRESUMED, PRESUMED)
        assert w.conn.roles == "port"
        w.fin(SERVER)
        w.ack(CLIENT)
        w.fin(CLIENT)
        w.ack(SERVER)
        w.expect(S.CLOSED, S.TIME_WAIT)
        assert w.anomalies() == []

    def test_unknown_presumed_from_synack(self) -> None:
        # Capture starts at the SYN-ACK: the server was in SYN_RECEIVED, the client in SYN_SENT.
        w = Wire()
        w.syn(CLIENT, seen=False)
        synack = w.synack(SERVER)
        moved(w, SERVER, synack, S.UNKNOWN, S.SYN_RECEIVED, E.PRESUMED, PRESUMED)
        assert w.state(CLIENT) is S.UNKNOWN
        ack = w.ack(CLIENT)
        moved(w, CLIENT, ack, S.UNKNOWN, S.SYN_SENT, E.PRESUMED, PRESUMED, now=S.ESTABLISHED)
        moved(w, CLIENT, ack, S.SYN_SENT, S.ESTABLISHED, E.RCV_SYN_ACK, SYN_SENT_SEG)
        moved(w, SERVER, ack, S.SYN_RECEIVED, S.ESTABLISHED, E.RCV_ACK_OF_SYN, ACK_CHECK)
        assert w.conn.roles == "synack"


class TestAnomaliesDoNotStopTheAnalysis:
    def test_bad_segments_are_recorded_and_the_close_still_replays(self) -> None:
        w = Wire(msl=1.0).established()
        w.send(CLIENT, Flags.SYN, seq=w.client.isn, advance=False)  # late duplicate SYN
        w.send(CLIENT, Flags.SYN, seq=77_777, advance=False)  # new ISN, live connection
        w.send(SERVER, Flags.SYN | Flags.FIN, seq=w.server.isn, advance=False)
        w.data(CLIENT, 200)
        w.fin(CLIENT)
        w.ack(SERVER)
        w.fin(SERVER)
        w.ack(CLIENT)
        w.data(SERVER, 10)  # data after its own FIN, from CLOSED
        assert [a.code for a in w.anomalies()] == [
            Anomaly.NO_TRANSITION,
            Anomaly.SYN_IN_SYNCHRONIZED_STATE,
            Anomaly.INVALID_FLAGS,
            Anomaly.NO_TRANSITION,
            Anomaly.DATA_AFTER_FIN,
            Anomaly.SEGMENT_AFTER_CLOSE,
        ]
        assert w.state(CLIENT) is S.TIME_WAIT
        w.idle_until(w.ts_ns + 2 * SECOND)
        w.expect(S.CLOSED, S.CLOSED)

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from([CLIENT, SERVER]),
                st.sets(st.sampled_from([Flags.SYN, Flags.FIN, Flags.RST, Flags.ACK])),
                st.integers(-3, 3),
                st.sampled_from([0, 0, 1, 100]),
                st.booleans(),
            ),
            max_size=25,
        )
    )
    def test_random_segments_never_raise_and_follow_the_table(
        self, plan: list[tuple[str, set[Flags], int, int, bool]]
    ) -> None:
        w = Wire(msl=0.001)
        for sender, flags, offset, length, seen in plan:
            f = Flags(0)
            for flag in flags:
                f |= flag
            w.send(sender, f, seq=seq_add(w.nxt(sender), offset), length=length, seen=seen)
        w.tracker.finish()
        for conn in w.conns:
            for r in conn.transitions:
                if r.event is E.PRESUMED:
                    assert r.from_state is S.UNKNOWN
                else:
                    assert TRANSITIONS[r.from_state].get(r.event) == (r.to_state, r.rule), r


def _class_name(state: State) -> str:
    return "Test" + "".join(part.capitalize() for part in state.value.split("_"))


@pytest.mark.parametrize(
    ("state", "event"),
    [(s, e) for s, events in TRANSITIONS.items() for e in events],
    ids=str,
)
def test_every_transition_has_a_test(state: State, event: Event) -> None:
    cls = globals().get(_class_name(state))
    assert cls is not None, f"no class {_class_name(state)} for state {state}"
    name = f"test_{state.value.lower()}_{event.value}"
    assert callable(getattr(cls, name, None)), f"{cls.__name__} has no {name}"


@pytest.mark.parametrize("state", list(TRANSITIONS), ids=str)
def test_state_classes_hold_only_their_state(state: State) -> None:
    cls = globals()[_class_name(state)]
    prefix = f"test_{state.value.lower()}_"
    names = [n for n in vars(cls) if n.startswith("test")]
    assert names and all(n.startswith(prefix) for n in names), names
