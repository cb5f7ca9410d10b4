"""Zeek conn.log emulation (``tcpflow_analyzer.zeek``): conn_state, history, counters, splits.

Unit tests build segment sequences by hand (``Talk``) and assert the exact
strings Zeek logs; each expectation was worked out from Zeek's source (see the
module docstring). The conformance tests at the end replay every corpus
capture that has Zeek's own ``conn.log`` beside it through a throwaway dpkt
driver (``tests/zeek_driver.py``) and compare row by row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tcpflow_analyzer.segment import Flags, Segment
from tcpflow_analyzer.zeek import (
    EndpointState,
    ZeekConfig,
    ZeekConn,
    replay,
    zeek_starts_new_conn,
)

from .zeek_driver import COLUMNS, CORPUS, baselines, compare, zeek_rows

S, A, F, R, P = Flags.SYN, Flags.ACK, Flags.FIN, Flags.RST, Flags.PSH
SEC = 1_000_000_000


@dataclass
class Talk:
    """Hand-built packets of one 4-tuple: client ``a`` (first sender unless told) and ``b``."""

    a_port: int = 40000
    b_port: int = 80
    t_ns: int = 1_700_000_000 * SEC
    pkts: list[tuple[Segment, bool]] = field(default_factory=list)

    def _add(
        self, from_a: bool, flags: int, seq: int, ack: int, n: int, win: int, dt: float, cut: bool
    ) -> Talk:
        self.t_ns += int(dt * SEC)
        src, dst = (
            (b"\x0a\0\0\x01", b"\x0a\0\0\x02") if from_a else (b"\x0a\0\0\x02", b"\x0a\0\0\x01")
        )
        sport, dport = (self.a_port, self.b_port) if from_a else (self.b_port, self.a_port)
        seg = Segment(
            frame=len(self.pkts) + 1,
            ts_ns=self.t_ns,
            vlan=(),
            src=src,
            dst=dst,
            sport=sport,
            dport=dport,
            seq=seq,
            ack=ack,
            flags=flags,
            window=win,
            payload_len=n,
            ip_len=40 + n,
            caplen_short=cut,
        )
        self.pkts.append((seg, from_a))
        return self

    def a(
        self,
        flags: int,
        seq: int,
        ack: int = 0,
        n: int = 0,
        win: int = 8192,
        dt: float = 0.001,
        cut: bool = False,
    ) -> Talk:
        return self._add(True, flags, seq, ack, n, win, dt, cut)

    def b(
        self,
        flags: int,
        seq: int,
        ack: int = 0,
        n: int = 0,
        win: int = 8192,
        dt: float = 0.001,
        cut: bool = False,
    ) -> Talk:
        return self._add(False, flags, seq, ack, n, win, dt, cut)

    def conns(self, config: ZeekConfig | None = None) -> list[ZeekConn]:
        return replay(self.pkts, config)

    def one(self) -> ZeekConn:
        conns = self.conns()
        assert len(conns) == 1, [(c.conn_state(), c.history()) for c in conns]
        return conns[0]

    def summary(self) -> list[tuple[str, str]]:
        return [(c.conn_state(), c.history()) for c in self.conns()]


def handshake(t: Talk) -> Talk:
    """Client ISN 100, server ISN 500."""
    return t.a(S, 100).b(S | A, 500, 101).a(A, 101, 501)


# ----------------------------------------------------------------- conn_state


def test_s0_syn_only() -> None:
    c = Talk().a(S, 100).one()
    assert (c.conn_state(), c.history()) == ("S0", "S")
    assert (c.orig_state, c.resp_state) == (EndpointState.SYN_SENT, EndpointState.INACTIVE)


def test_s1_handshake_only() -> None:
    c = handshake(Talk()).one()
    assert (c.conn_state(), c.history()) == ("S1", "ShA")


def test_sf_normal_close() -> None:
    t = handshake(Talk()).a(A | P, 101, 501, n=10).b(A | P, 501, 111, n=20).a(A, 111, 521)
    t.a(F | A, 111, 521).b(F | A, 521, 112).a(A, 112, 522)
    c = t.one()
    assert (c.conn_state(), c.history()) == ("SF", "ShADdFf")
    assert (c.orig_bytes, c.resp_bytes, c.missed_bytes) == (10, 20, 0)
    assert (c.orig_pkts, c.resp_pkts, c.orig_ip_bytes, c.resp_ip_bytes) == (6, 3, 250, 140)


def test_rej_rst_answers_syn() -> None:
    c = Talk().a(S, 100).b(R | A, 0, 101).one()
    assert (c.conn_state(), c.history()) == ("REJ", "Sr")


def test_s2_originator_fin_only() -> None:
    c = handshake(Talk()).a(F | A, 101, 501).one()
    assert (c.conn_state(), c.history()) == ("S2", "ShAF")


def test_s3_responder_fin_only() -> None:
    c = handshake(Talk()).b(F | A, 501, 101).one()
    assert (c.conn_state(), c.history()) == ("S3", "ShAf")


def test_rsto_originator_aborts() -> None:
    c = handshake(Talk()).a(R | A, 101, 501).one()
    assert (c.conn_state(), c.history()) == ("RSTO", "ShAR")


def test_rstr_responder_aborts() -> None:
    c = handshake(Talk()).b(R | A, 501, 101).one()
    assert (c.conn_state(), c.history()) == ("RSTR", "ShAr")


def test_rstos0_syn_then_rst() -> None:
    c = Talk().a(S, 100).a(R, 101).one()
    assert (c.conn_state(), c.history()) == ("RSTOS0", "SR")


def test_rstrh_synack_then_rst() -> None:
    # SYN-ACK from port 80 to a high port: flipped at creation ('^').
    c = Talk().b(S | A, 500, 101).b(R, 501).one()
    assert (c.conn_state(), c.history()) == ("RSTRH", "^hr")
    assert not c.orig_is_first


def test_sh_syn_then_fin() -> None:
    c = Talk().a(S, 100).a(F, 101).one()
    assert (c.conn_state(), c.history()) == ("SH", "SF")


def test_shr_synack_then_fin() -> None:
    c = Talk().b(S | A, 500, 101).b(F | A, 501, 101).one()
    assert (c.conn_state(), c.history()) == ("SHR", "^hf")


def test_oth_midstream() -> None:
    c = Talk().a(A | P, 100, 500, n=5).b(A, 500, 105).one()
    assert (c.conn_state(), c.history()) == ("OTH", "Da")


def test_oth_rst_after_ack_is_not_rstos0() -> None:
    # main.zeek: RSTOS0 needs ^?S[^HAFGIQ]*R; an originator 'F' breaks it.
    c = Talk().a(S, 100).b(A, 1, 101).a(F, 101).a(R, 102).one()
    assert (c.conn_state(), c.history()) == ("OTH", "SaFR")


# ------------------------------------------------------------- history rules


def test_syn_retransmit_same_seq_recorded_once() -> None:
    c = Talk().a(S, 100).a(S, 100, dt=1).one()
    assert c.history() == "S"
    assert c.orig_pkts == 2


def test_fin_repeats_only_at_new_sequence_number() -> None:
    t = handshake(Talk()).a(F | A, 101, 501).a(F | A, 101, 501)  # retransmitted FIN
    assert t.one().history() == "ShAF"
    t.a(A | P | F, 101, 501, n=5)  # FIN after 5 more bytes: new FIN sequence number
    assert t.one().history() == "ShAFF"


def test_rst_repeats_only_at_new_sequence_number() -> None:
    t = handshake(Talk()).b(R, 501).b(R, 501).b(R, 900)
    assert t.one().history() == "ShArr"


def test_retransmissions_scale_logarithmically() -> None:
    t = handshake(Talk()).a(A | P, 101, 501, n=10)
    for _ in range(10):
        t.a(A | P, 101, 501, n=10)
    assert t.one().history() == "ShADTT"  # 1st and 10th retransmission
    t2 = handshake(Talk()).a(A | P, 101, 501, n=10)
    for _ in range(9):
        t2.a(A | P, 101, 501, n=10)
    assert t2.one().history() == "ShADT"


def test_zero_window_and_not_after_peer_fin() -> None:
    t = handshake(Talk()).b(A, 501, 101, win=0)
    assert t.one().history() == "ShAaw"  # the letter for the ACK comes first
    t2 = handshake(Talk()).a(F | A, 101, 501).b(A, 501, 102, win=0)
    assert t2.one().history() == "ShAFa"  # zero window after the peer's FIN is boring


def test_fin_rst_is_i_and_syn_fin_is_q() -> None:
    assert Talk().a(S | F, 100).one().history() == "Q"
    assert handshake(Talk()).a(F | R | A, 101, 501).one().history() == "ShAI"


def test_content_gap_counts_when_established() -> None:
    # Server bytes 501..600 are never seen; the client acks past them.
    t = handshake(Talk()).b(A | P, 601, 101, n=100).a(A, 101, 701)
    c = t.one()
    assert c.history() == "ShAdg"
    assert c.missed_bytes == 100
    assert c.resp_bytes == 200


def test_snaplen_cut_payload_is_a_gap() -> None:
    t = handshake(Talk()).b(A | P, 501, 101, n=100, cut=True).a(A, 101, 601)
    c = t.one()
    assert (c.history(), c.missed_bytes) == ("ShAdg", 100)


def test_gap_not_counted_in_partial_connection() -> None:
    t = Talk().b(A | P, 601, 101, n=100).a(A, 101, 701).a(A | P, 101, 701, n=1)
    c = t.one()
    assert (c.missed_bytes, "g" in c.history()) == (0, False)


def test_flip_on_likely_server_port_at_creation() -> None:
    t = Talk().b(S | A, 500, 101).a(A, 101, 501).a(A | P, 101, 501, n=3)
    t.b(A, 501, 104).a(F | A, 104, 501).b(F | A, 501, 105).a(A, 105, 502)
    c = t.one()
    assert (c.conn_state(), c.history()) == ("SF", "^hADaFf")
    assert not c.orig_is_first
    assert (c.orig_pkts, c.resp_pkts) == (4, 3)


def test_synack_then_ack_flips_on_second_packet() -> None:
    # Neither port is a likely server port: zeek/zeek#2191 flips on the ACK.
    t = Talk(a_port=23456, b_port=12345).a(S | A, 500, 101).a(A, 501, 101).a(F | A, 501, 101)
    c = t.one()
    assert (c.conn_state(), c.history()) == ("SHR", "^haf")
    assert (c.orig_pkts, c.resp_pkts, c.resp_ip_bytes) == (0, 3, 120)
    assert not c.orig_is_first


def test_synack_then_rst_does_not_flip() -> None:
    c = Talk(a_port=23456, b_port=12345).a(S | A, 500, 101).b(R, 101).one()
    assert c.history() == "Hr"
    assert c.conn_state() == "REJ"


def test_bytes_unset_when_duration_zero() -> None:
    c = Talk().a(R, 100, dt=0).one()
    assert (c.orig_bytes, c.resp_bytes, c.duration_ns) == (None, None, 0)
    assert (c.conn_state(), c.history()) == ("OTH", "R")


# ------------------------------------------------------ new connection rules


def test_bare_rsts_apart_are_separate_connections() -> None:
    t = Talk().a(R, 100).a(R, 100, dt=10)
    assert t.summary() == [("OTH", "R"), ("OTH", "R")]


def test_bare_rsts_close_together_share_a_connection() -> None:
    t = Talk().a(R, 100).a(R, 100, dt=1).a(R, 200, dt=1)
    c = t.one()
    assert (c.history(), c.orig_pkts) == ("RR", 3)


def test_unanswered_syns_split_after_attempt_delay() -> None:
    t = Talk().a(S, 100).a(S, 100, dt=1).a(S, 100, dt=2).a(S, 100, dt=4)  # t=0,1,3,7
    conns = t.conns()
    assert [(c.conn_state(), c.history(), c.orig_pkts) for c in conns] == [
        ("S0", "S", 3),
        ("S0", "S", 1),
    ]


def test_syn_on_closed_connection_is_reuse() -> None:
    t = handshake(Talk()).a(F | A, 101, 501).b(F | A, 501, 102).a(A, 102, 502)
    t.a(S, 100, dt=0.5)  # same ISN, but the old connection closed
    assert t.summary() == [("SF", "ShAFf"), ("S0", "S")]


def test_syn_with_new_isn_on_open_connection_is_reuse() -> None:
    t = handshake(Talk()).a(S, 7000, dt=1)
    assert t.summary() == [("S1", "ShA"), ("S0", "S")]
    t2 = handshake(Talk()).a(S, 100, dt=1)  # a late copy of the same SYN
    assert t2.summary() == [("S1", "ShA")]


def test_packets_after_close_delay_start_a_new_connection() -> None:
    base = handshake(Talk()).a(R | A, 101, 501)
    late = handshake(Talk()).a(R | A, 101, 501).b(A, 501, 101, dt=6)
    early = handshake(Talk()).a(R | A, 101, 501).b(A, 501, 101, dt=4)
    assert base.summary() == [("RSTO", "ShAR")]
    assert late.summary() == [("RSTO", "ShAR"), ("OTH", "^a")]
    assert early.summary() == [("RSTO", "ShARa")]


def test_inactivity_timeout_splits_idle_connection() -> None:
    t = handshake(Talk()).a(A | P, 101, 501, n=1, dt=301)
    assert t.summary() == [("S1", "ShA"), ("OTH", "D")]
    t2 = handshake(Talk()).a(A | P, 101, 501, n=1, dt=299)
    assert t2.summary() == [("S1", "ShAD")]


def test_zeek_starts_new_conn_is_pure() -> None:
    t = Talk().a(R, 100)
    zc = ZeekConn()
    zc.add(*t.pkts[0])
    later = t.a(R, 100, dt=10).pkts[1][0]
    assert zeek_starts_new_conn(zc, later, True)
    assert zeek_starts_new_conn(zc, later, True)  # asking twice changes nothing
    sooner = Talk().a(R, 100).a(R, 100, dt=1).pkts[1][0]
    assert not zeek_starts_new_conn(zc, sooner, True)


# ------------------------------------------------------------- conformance


@pytest.mark.parametrize("pcap", baselines(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_conformance_with_zeek_conn_log(pcap: Path) -> None:
    """Every row and logged column of Zeek's conn.log, 4-tuple keyed as Zeek keys."""
    assert compare(pcap) == []


def test_vlan_contexts_are_separate_when_keyed_by_vlan() -> None:
    """Zeek merges the three VLAN contexts into one row (21/21 packets, 'T's from the
    copies); keyed by VLAN, as the analyzer keys, each context is a clean SF."""
    rows = zeek_rows(CORPUS / "zeek" / "vlan-collisions.pcap", by_vlan=True)
    assert [(r.get("conn_state"), r.get("history"), r.get("orig_pkts")) for r in rows] == [
        ("SF", "ShADadFf", "7")
    ] * 3
    assert "history" in COLUMNS
