"""Teardown findings (issue 3): each code on the capture that shows it, and none on clean ones.

Real-kernel captures (captures/, see captures/README.md and MANIFEST.json) carry
what Linux produces on demand; frame numbers below were read with
``tcpdump -nr captures/FILE`` (frames 1-2 of every capture are the ARP
request/reply, so the SYN is frame 3). Scapy-crafted captures (tests/craft.py,
built at test time) carry what the kernel will not produce: an RST in
TIME_WAIT, an out-of-window RST, a moved FIN, a stale segment inside the new
incarnation's window, a retransmitted SYN-ACK, and the keep-alives and data
retransmissions that must draw no finding.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP

import tcpflow_analyzer
import tcpflow_analyzer.report
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.findings import Code, Finding, detect_all
from tcpflow_analyzer.report import CONNECTION_COLUMNS, FINDING_COLUMNS
from tcpflow_analyzer.segment import Flags
from tcpflow_analyzer.states import Anomaly

from .craft import Conversation
from .wire import CLIENT, SERVER, Wire

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def _analyze(path: Path, **kw: Any) -> tcpflow_analyzer.Analysis:
    return tcpflow_analyzer.analyze(path, **kw)


def _findings(result: tcpflow_analyzer.Analysis) -> list[Finding]:
    return result.finding_records


def _by_code(result: tcpflow_analyzer.Analysis, code: Code) -> list[Finding]:
    return [f for f in result.finding_records if f.code is code]


def _one(result: tcpflow_analyzer.Analysis, code: Code) -> Finding:
    found = _by_code(result, code)
    assert len(found) == 1, [(f.code, f.frame, f.detail) for f in result.finding_records]
    return found[0]


def _codes(result: tcpflow_analyzer.Analysis) -> list[str]:
    return sorted(f.code.value for f in result.finding_records)


def _conn(result: tcpflow_analyzer.Analysis, conn_id: int = 1) -> Any:
    return result.connections.set_index("conn_id").loc[conn_id]


# -- vocabulary ---------------------------------------------------------------------


def test_every_tracker_anomaly_is_a_finding_code_or_merged() -> None:
    # fin_moved and rst_out_of_window exist in both vocabularies with one value;
    # rst_ignored_in_syn_sent is reported as the RST's cause, rst_out_of_window.
    codes = {c.value for c in Code}
    for anomaly in Anomaly:
        assert anomaly.value in codes or anomaly is Anomaly.RST_IGNORED_IN_SYN_SENT


def test_findings_frame_and_csv_have_documented_columns(tmp_path: Path) -> None:
    result = _analyze(CAPTURES / "final_ack_lost_after_capture.pcap")
    dtypes = {name: str(dtype) for name, dtype in result.findings.dtypes.items()}
    assert dtypes == FINDING_COLUMNS
    assert list(result.connections.columns) == list(CONNECTION_COLUMNS)
    result.to_csv(tmp_path)
    back = pd.read_csv(tmp_path / "findings.csv", dtype={"evidence_frames": str})
    assert list(back.columns) == list(FINDING_COLUMNS)
    row = back[back["code"] == "lost_final_ack"].iloc[0]
    # Space-joined, as Wireshark's `frame.number in {12 13 14}` wants them.
    assert row["evidence_frames"] == "12 13 14"
    assert row["endpoint"] == "server" and row["frame"] == 14


def test_empty_capture_has_an_empty_findings_frame(tmp_path: Path) -> None:
    import struct

    header_only = tmp_path / "empty.pcap"
    header_only.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    result = _analyze(header_only)
    assert result.findings.empty
    assert {n: str(d) for n, d in result.findings.dtypes.items()} == FINDING_COLUMNS


# -- clean closes: no findings ----------------------------------------------------------

CLEAN = [
    "client_close.pcap",
    "client_close_3seg.pcap",
    "server_close_3seg.pcap",
    "server_close_4seg.pcap",
    "fin_with_data.pcap",
    "mid_connection.pcap",
    "ipv6_client_close.pcap",
    "vlan_client_close.pcap",
    "pcapng_two_ifaces.pcapng",
]


@pytest.mark.parametrize("name", CLEAN)
def test_clean_close_has_no_findings(name: str) -> None:
    result = _analyze(CAPTURES / name)
    assert _findings(result) == []
    assert result.findings.empty
    for row in result.connections.itertuples():
        assert row.client_fin_retransmits == 0 and row.server_fin_retransmits == 0
        assert not row.final_ack_lost and row.final_ack_seen
        assert row.rst_count == 0 and pd.isna(row.rst_from) and pd.isna(row.rst_causes)
        assert not row.tuple_reused and pd.isna(row.reuse_gap_s)
        assert row.stale_segments == 0


def test_public_corpus_clean_http_get_has_no_findings() -> None:
    # zeek/http/get.pcap: one HTTP GET, client FIN, server FIN+ACK, client ACK.
    path = CORPUS / "zeek" / "http" / "get.pcap"
    assert path.exists(), f"public corpus missing: {path}"
    assert _findings(_analyze(path)) == []


def test_half_close_is_the_only_finding_on_half_close() -> None:
    # Client FIN (frame 8, shutdown(SHUT_WR)); the server sends 5 x 23 bytes
    # (frames 9, 11, 13, 15, 17), each ACKed by the client, then its FIN (19).
    result = _analyze(CAPTURES / "half_close.pcap")
    f = _one(result, Code.HALF_CLOSE)
    assert _codes(result) == ["half_close"]
    assert (f.endpoint, f.frame, f.evidence_frames) == ("server", 9, (8, 9, 17))
    assert "115 bytes in 5 segments" in f.detail


def test_simultaneous_close_is_the_only_finding_on_simultaneous_close() -> None:
    # Client FIN (frame 10) and server FIN (frame 11) cross: neither acknowledges
    # the other; each side's ACK of the other's FIN follows (12 client, 13 server).
    result = _analyze(CAPTURES / "simultaneous_close.pcap")
    f = _one(result, Code.SIMULTANEOUS_CLOSE)
    assert _codes(result) == ["simultaneous_close"]
    assert (f.endpoint, f.frame, f.evidence_frames) == ("", 10, (10, 11, 12, 13))
    row = _conn(result)
    assert row.time_wait_s > 0


# -- FINs: lost final ACK, re-ACK from TIME_WAIT, retransmitted FIN ---------------------------


def test_lost_final_ack_seen_before_it_was_lost() -> None:
    # Server FIN frame 12; the client's final ACK frame 13 (captured, then dropped
    # in the server's INPUT); the server retransmits its FIN (frame 14); the
    # client, in TIME_WAIT, ACKs it again (frame 15).
    result = _analyze(CAPTURES / "final_ack_lost_after_capture.pcap")
    lost = _one(result, Code.LOST_FINAL_ACK)
    assert (lost.endpoint, lost.frame, lost.evidence_frames) == ("server", 14, (12, 13, 14))
    assert "was seen here, so it was lost beyond the capture point" in lost.detail
    reack = _one(result, Code.TIME_WAIT_REACK)
    assert (reack.endpoint, reack.frame, reack.evidence_frames) == ("client", 15, (13, 14, 15))
    assert _codes(result) == ["lost_final_ack", "time_wait_reack"]
    row = _conn(result)
    assert row.final_ack_lost and row.final_ack_seen
    assert (row.client_fin_retransmits, row.server_fin_retransmits) == (0, 1)


def test_lost_final_ack_lost_before_the_capture_point() -> None:
    # Server FIN frame 12, retransmitted frame 13 with no ACK in between (dropped
    # in the client's OUTPUT, before the capture point); the client's one ACK
    # (frame 14) echoes frame 12's TSval (942056403), not frame 13's: the client
    # had the first FIN and answers the retransmission from TIME_WAIT.
    result = _analyze(CAPTURES / "final_ack_lost_before_capture.pcap")
    lost = _one(result, Code.LOST_FINAL_ACK)
    assert (lost.endpoint, lost.frame, lost.evidence_frames) == ("server", 13, (12, 13, 14))
    assert "lost before the capture point" in lost.detail
    assert "echoes" in lost.detail
    reack = _one(result, Code.TIME_WAIT_REACK)
    assert (reack.endpoint, reack.frame, reack.evidence_frames) == ("client", 14, (12, 13, 14))
    assert _codes(result) == ["lost_final_ack", "time_wait_reack"]
    row = _conn(result)
    assert row.final_ack_lost and not row.final_ack_seen
    assert row.server_fin_retransmits == 1


def test_fin_never_acked_is_retransmitted_with_backoff() -> None:
    # The client's FIN (frame 10) is sent again in frames 11-14 (~200 ms, 200 ms,
    # 400 ms, 800 ms); the server never answers and the capture ends.
    result = _analyze(CAPTURES / "fin_never_acked.pcap")
    f = _one(result, Code.FIN_RETRANSMIT)
    assert (f.endpoint, f.frame, f.evidence_frames) == ("client", 11, (10, 11, 12, 13, 14))
    assert "5 times" in f.detail and "no ACK of it was seen" in f.detail
    end = _one(result, Code.OPEN_AT_END)
    assert (end.endpoint, end.frame) == ("", 14)
    assert _codes(result) == ["fin_retransmit", "open_at_end"]
    assert _conn(result).client_fin_retransmits == 4


# -- RSTs: one finding per RST, coded by cause ----------------------------------------------


def test_rst_refused_answers_each_syn() -> None:
    # Two connects to a closed port: SYN 3 -> RST/ACK 4, SYN 5 -> RST/ACK 6.
    result = _analyze(CAPTURES / "refused.pcap")
    found = _by_code(result, Code.RST_REFUSED)
    assert [(f.conn_id, f.endpoint, f.frame, f.evidence_frames) for f in found] == [
        (1, "server", 4, (3, 4)),
        (2, "server", 6, (5, 6)),
    ]
    assert _codes(result) == ["rst_refused", "rst_refused"]
    assert list(result.connections["rst_causes"]) == ["rst_refused", "rst_refused"]
    assert list(result.connections["rst_from"]) == ["server", "server"]


def test_rst_abort_so_linger_zero() -> None:
    # The client read the server's 6 bytes (frame 8), ACKed them (9), then
    # close() with SO_LINGER {1, 0}: RST/ACK frame 10 in ESTABLISHED.
    result = _analyze(CAPTURES / "rst_abort.pcap")
    f = _one(result, Code.RST_ABORT)
    assert (f.endpoint, f.frame, f.evidence_frames) == ("client", 10, (8, 10))
    assert _codes(result) == ["rst_abort"]
    assert (_conn(result).rst_from, _conn(result).rst_causes) == ("client", "rst_abort")


def test_rst_unread_data() -> None:
    # The client sends 306 bytes (frame 6), the server's kernel ACKs them (7);
    # the application reads 10 and closes: RST/ACK (frame 8) instead of FIN.
    result = _analyze(CAPTURES / "unread_data_rst.pcap")
    f = _one(result, Code.RST_UNREAD_DATA)
    assert (f.endpoint, f.frame, f.evidence_frames) == ("server", 8, (6, 7, 8))
    assert "306 bytes" in f.detail
    assert _codes(result) == ["rst_unread_data"]


def test_rst_data_after_close() -> None:
    # Server FIN frame 10 (close()), client ACK 11, the client still sends 12
    # bytes (frame 12): the closed server answers RST (frame 13).
    result = _analyze(CAPTURES / "data_after_close.pcap")
    f = _one(result, Code.RST_DATA_AFTER_CLOSE)
    assert (f.endpoint, f.frame, f.evidence_frames) == ("server", 13, (10, 12, 13))
    assert _codes(result) == ["rst_data_after_close"]  # no half_close: never ACKed


def test_rst_no_state_time_wait_skipped() -> None:
    # tcp_max_tw_buckets=0: the client's final ACK (frame 13) is captured and lost,
    # the server retransmits its FIN (14), the stateless client answers RST (15).
    result = _analyze(CAPTURES / "rst_no_state.pcap")
    rst = _one(result, Code.RST_NO_STATE)
    assert (rst.endpoint, rst.frame, rst.evidence_frames) == ("client", 15, (13, 14, 15))
    assert "instead of re-ACKing it from TIME_WAIT" in rst.detail
    lost = _one(result, Code.LOST_FINAL_ACK)
    assert (lost.endpoint, lost.frame, lost.evidence_frames) == ("server", 14, (12, 13, 14))
    assert _codes(result) == ["lost_final_ack", "rst_no_state"]
    row = _conn(result)
    assert row.final_ack_lost and row.final_ack_seen
    assert (row.rst_count, row.rst_from, row.rst_causes) == (1, "client", "rst_no_state")


def test_rst_no_state_after_fin_wait_2_timeout() -> None:
    # tcp_fin_timeout=2: client FIN 10, server ACK 11 (client FIN_WAIT_2), the
    # server's FIN comes 5 s later (12) and finds no state: RST (13).
    result = _analyze(CAPTURES / "fin_wait_2_timeout.pcap")
    rst = _one(result, Code.RST_NO_STATE)
    assert (rst.endpoint, rst.frame, rst.evidence_frames) == ("client", 13, (11, 12, 13))
    assert "FIN_WAIT_2" in rst.detail
    fw2 = _one(result, Code.FIN_WAIT_2_LINGER)
    assert (fw2.endpoint, fw2.frame, fw2.evidence_frames) == ("client", 11, (11, 13))
    cw = _one(result, Code.CLOSE_WAIT_LINGER)
    assert (cw.endpoint, cw.frame, cw.evidence_frames) == ("server", 11, (11, 12))
    assert _codes(result) == ["close_wait_linger", "fin_wait_2_linger", "rst_no_state"]
    assert _conn(result).fin_wait_2_s == pytest.approx(4.96, abs=0.05)


# -- lingering states ------------------------------------------------------------------------


def test_close_wait_linger() -> None:
    # The server ACKs the client's FIN (frame 11) and closes 3 s later (FIN 12);
    # the client, in FIN_WAIT_2 all that time, ACKs it (13).
    result = _analyze(CAPTURES / "close_wait_long.pcap")
    cw = _one(result, Code.CLOSE_WAIT_LINGER)
    assert (cw.endpoint, cw.frame, cw.evidence_frames) == ("server", 11, (11, 12))
    fw2 = _one(result, Code.FIN_WAIT_2_LINGER)
    assert (fw2.endpoint, fw2.frame, fw2.evidence_frames) == ("client", 11, (11, 13))
    assert _codes(result) == ["close_wait_linger", "fin_wait_2_linger"]
    row = _conn(result)
    assert row.close_wait_s == pytest.approx(2.96, abs=0.05)
    # The thresholds are configuration.
    relaxed = _analyze(
        CAPTURES / "close_wait_long.pcap",
        config=Config(close_wait_linger_s=5.0, fin_wait_2_linger_s=5.0),
    )
    assert _findings(relaxed) == []


# -- SYNs ---------------------------------------------------------------------------------


def test_syn_backlog_drop() -> None:
    # listen(1), never accept(): ports 41210/41211 complete the handshake (conns 1,
    # 2) and close, the server kernel ACKs their FINs (frames 12, 15) and stays in
    # CLOSE_WAIT to the end; ports 41212/41213 (conns 3, 4) send 4 SYNs each
    # (frames 9, 13, 17, 19 and 10, 16, 18, 20), none answered.
    result = _analyze(CAPTURES / "syn_backlog_drop.pcap")
    retx = _by_code(result, Code.SYN_RETRANSMIT)
    assert [(f.conn_id, f.endpoint, f.frame, f.evidence_frames) for f in retx] == [
        (3, "client", 13, (9, 13, 17, 19)),
        (4, "client", 16, (10, 16, 18, 20)),
    ]
    unanswered = _by_code(result, Code.SYN_UNANSWERED)
    assert [(f.conn_id, f.endpoint, f.frame, f.evidence_frames) for f in unanswered] == [
        (3, "client", 9, (9, 13, 17, 19)),
        (4, "client", 10, (10, 16, 18, 20)),
    ]
    for conn_id, ack_frame in ((1, 12), (2, 15)):
        mine = [f for f in _findings(result) if f.conn_id == conn_id]
        assert sorted((f.code.value, f.endpoint, f.frame) for f in mine) == [
            ("close_wait_linger", "server", ack_frame),
            ("fin_wait_2_linger", "client", ack_frame),
            ("open_at_end", "", ack_frame),
        ]
    assert len(_findings(result)) == 10


# -- incarnations ------------------------------------------------------------------------------


def test_tuple_reuse_through_client_time_wait() -> None:
    # tcp_tw_reuse=1: the client reconnects from TIME_WAIT 250 ms after its final
    # ACK (frames 13 -> SYN 14, 24 -> SYN 25); new ISN = old SND.NXT + 65537.
    result = _analyze(CAPTURES / "tuple_reuse.pcap")
    found = _by_code(result, Code.TUPLE_REUSE)
    assert [(f.conn_id, f.endpoint, f.frame, f.evidence_frames) for f in found] == [
        (2, "client", 14, (13, 14)),
        (3, "client", 25, (24, 25)),
    ]
    assert all("+ 65537" in f.detail and "inside 2*MSL" in f.detail for f in found)
    assert _codes(result) == ["tuple_reuse", "tuple_reuse"]
    rows = result.connections.set_index("conn_id")
    assert list(rows["tuple_reused"]) == [False, True, True]
    assert list(rows["reuse_within_time_wait"].astype(object).fillna("na")) == [
        "na",
        True,
        True,
    ]
    assert rows.loc[2, "reuse_gap_s"] == pytest.approx(0.25, abs=0.01)


def test_tuple_reuse_through_server_time_wait() -> None:
    # The server closes first and accepts the next SYN in TIME_WAIT 200 ms after
    # its final ACK (frames 12 -> SYN 13, 22 -> SYN 23).
    result = _analyze(CAPTURES / "tuple_reuse_server_tw.pcap")
    found = _by_code(result, Code.TUPLE_REUSE)
    assert [(f.conn_id, f.endpoint, f.frame, f.evidence_frames) for f in found] == [
        (2, "server", 13, (12, 13)),
        (3, "server", 23, (22, 23)),
    ]
    assert all("server accepted the SYN from TIME_WAIT" in f.detail for f in found)
    assert _codes(result) == ["tuple_reuse", "tuple_reuse"]


def test_stale_duplicate_rejected_by_paws_and_window() -> None:
    # Capture at the server. Frame 10 is the client's retransmission of OLD-2
    # (seq 2114511526, 20 bytes) in incarnation 1; the relay delivers the held
    # original in incarnation 2 (frame 22: same seq, ACK 2995796877 of conn 1, an
    # older TSval); the server answers with a duplicate ACK carrying a D-SACK for
    # it (frame 23). Incarnation 2 began with the SYN in frame 16, 200 ms after the
    # server's final ACK (15), while the server was in TIME_WAIT.
    result = _analyze(CAPTURES / "stale_duplicate.pcap")
    stale = _one(result, Code.STALE_DUPLICATE)
    assert (stale.conn_id, stale.endpoint, stale.frame) == (2, "client", 22)
    assert stale.evidence_frames == (10, 22, 23)
    assert "would reject it" in stale.detail and "PAWS" in stale.detail
    reuse = _one(result, Code.TUPLE_REUSE)
    assert (reuse.conn_id, reuse.endpoint, reuse.frame, reuse.evidence_frames) == (
        2,
        "server",
        16,
        (15, 16),
    )
    assert _codes(result) == ["stale_duplicate", "tuple_reuse"]
    assert list(result.connections["stale_segments"]) == [0, 1]


# -- crafted: what the kernel will not produce on demand --------------------------------------


def test_crafted_rst_in_time_wait(tmp_path: Path) -> None:
    # Frames 1-3 handshake, 4-7 four-segment close (the client's final ACK, frame
    # 7, puts it in TIME_WAIT); 1 s later the server sends an RST (frame 8).
    conv = Conversation().handshake().client_close()
    conv.s("R", at=conv._t + 1.0)
    result = _analyze(conv.write(tmp_path / "tw_rst.pcap"))
    f = _one(result, Code.RST_IN_TIME_WAIT)
    assert (f.endpoint, f.frame, f.evidence_frames) == ("server", 8, (7, 8))
    assert f.rfc == "RFC1337"
    assert _codes(result) == ["rst_in_time_wait"]
    assert _conn(result).time_wait_s == pytest.approx(1.0, abs=0.01)


def test_crafted_out_of_window_rst_is_one_finding(tmp_path: Path) -> None:
    # Frames 1-3 handshake; frame 4 an RST 10 MB beyond the server's sequence
    # space (the client must ignore it); then data and a clean close.
    conv = Conversation().handshake()
    conv.s("R", seq=conv.sseq + 10_000_000)
    conv.c("PA", b"hello")
    conv.s("A")
    conv.client_close()
    result = _analyze(conv.write(tmp_path / "oow.pcap"))
    f = _one(result, Code.RST_OUT_OF_WINDOW)
    assert (f.endpoint, f.frame, f.evidence_frames) == ("server", 4, (4,))
    assert f.rfc == "RFC5961 3.2"
    # The tracker's anomaly of the same name is not reported a second time.
    assert list(result.anomalies["code"]) == ["rst_out_of_window"]
    assert _codes(result) == ["rst_out_of_window"]
    row = _conn(result)
    assert (row.rst_count, row.rst_from, row.rst_causes) == (1, "server", "rst_out_of_window")
    assert row.close_type == "fin"


def test_crafted_fin_moved_is_one_finding(tmp_path: Path) -> None:
    # Frame 4 client FIN at seq 1001; frame 5 the server's ACK; frame 6 another
    # client FIN, 10 bytes further on; then the server closes.
    conv = Conversation().handshake()
    first = conv.cseq
    conv.c("FA")
    conv.s("A")
    conv.c("FA", seq=first + 10)
    conv.s("FA")
    conv.c("A")
    result = _analyze(conv.write(tmp_path / "moved.pcap"))
    f = _one(result, Code.FIN_MOVED)
    assert (f.endpoint, f.frame, f.evidence_frames) == ("client", 6, (4, 6))
    assert "+10 bytes" in f.detail
    assert list(result.anomalies["code"]) == ["fin_moved"]
    assert _codes(result) == ["fin_moved"]


def test_crafted_stale_duplicate_inside_the_window(tmp_path: Path) -> None:
    # Incarnation 1 (ISNs 1000/5000, no timestamps): the client's 100 bytes at seq
    # 1001 (frame 4), a server-first close (6-8, the server holds TIME_WAIT).
    # Incarnation 2, 200 ms later, with a client ISN *below* the old one (900): the
    # old segment arrives again (frame 12), seq 1001 lies 100 bytes past the
    # server's RCV.NXT (901), inside its 65535-byte window, and its ACK (5001) is
    # acceptable: the data would be taken. The server answers with a duplicate ACK.
    conv = Conversation().handshake()
    conv.c("PA", b"A" * 100)
    conv.s("A")
    conv.s("FA")
    conv.c("FA")
    conv.s("A")
    conv.cseq, conv.sseq = 900, 9000
    conv.c("S", at=conv._t + 0.2)
    conv.s("SA")
    conv.c("A")
    conv.c("PA", b"A" * 100, seq=1001, ack=5001)
    conv.s("A")
    conv.c("FA")
    conv.s("FA")
    conv.c("A")
    result = _analyze(conv.write(tmp_path / "stale_in.pcap"))
    stale = _one(result, Code.STALE_DUPLICATE)
    assert (stale.conn_id, stale.endpoint, stale.frame) == (2, "client", 12)
    assert stale.evidence_frames == (4, 12)
    assert "inside the server's receive window" in stale.detail
    assert stale.rfc == "RFC9293 3.4, RFC1337"
    reuse = _one(result, Code.TUPLE_REUSE)
    assert (reuse.conn_id, reuse.endpoint, reuse.frame) == (2, "server", 9)
    assert "at or below the old connection's final sequence number" in reuse.detail
    assert _codes(result) == ["stale_duplicate", "tuple_reuse"]


def test_crafted_synack_retransmit(tmp_path: Path) -> None:
    # The client's ACK of the SYN-ACK is lost before the capture point: the server
    # sends its SYN-ACK again 1 s later (frames 2 and 3), then the ACK arrives.
    conv = Conversation()
    conv.c("S")
    conv.s("SA")
    conv.s("SA", seq=conv.sseq - 1, at=conv._t + 1.0)
    conv.c("A")
    conv.client_close()
    result = _analyze(conv.write(tmp_path / "synack.pcap"))
    f = _one(result, Code.SYN_RETRANSMIT)
    assert (f.endpoint, f.frame, f.evidence_frames) == ("server", 3, (2, 3))
    assert "SYN-ACK 2 times" in f.detail
    assert _codes(result) == ["syn_retransmit"]


def _with_timestamps(conv: Conversation) -> None:
    """Give every packet a TCP timestamp option, 1 tick per ms, per side."""
    for pkt in conv.packets:
        tick = round((float(pkt.time) - conv.t0) * 1000)
        from_client = pkt[TCP].sport == conv.client[1]
        pkt[TCP].options = [("Timestamp", (10_000 + tick if from_client else 50_000 + tick, 0))]


def test_keepalives_draw_no_finding(tmp_path: Path) -> None:
    # Linux keep-alive probes (seq = SND.NXT - 1, no data) and Windows-style ones
    # (one old byte), each ACKed, 75 s apart, then a clean client-first close.
    conv = Conversation().handshake()
    conv.c("PA", b"GET / HTTP/1.1\r\n\r\n")
    conv.s("PA", b"HTTP/1.1 200 OK\r\n\r\n")
    conv.c("A")
    for _ in range(3):
        conv.c("A", seq=conv.cseq - 1, at=conv._t + 75.0)
        conv.s("A")
        conv.s("A", b"\x00", seq=conv.sseq - 1, at=conv._t + 75.0)
        conv.c("A")
    conv.client_close()
    _with_timestamps(conv)
    result = _analyze(conv.write(tmp_path / "keepalive.pcap"))
    assert _findings(result) == []
    assert result.anomalies.empty


def test_data_retransmissions_draw_no_finding(tmp_path: Path) -> None:
    # A request sent twice (RTO, 200 ms), a response whose first copy was lost
    # after the capture point (sent again 300 ms later, duplicate ACK), a
    # fast retransmission after three duplicate ACKs, then a clean close.
    conv = Conversation().handshake()
    req = conv.cseq
    conv.c("PA", b"x" * 50)
    conv.c("PA", b"x" * 50, seq=req, at=conv._t + 0.2)
    conv.s("A")
    resp = conv.sseq
    conv.s("PA", b"y" * 100)
    conv.c("A")
    conv.s("PA", b"y" * 100, seq=resp, at=conv._t + 0.3)
    conv.c("A")
    seg = conv.sseq
    conv.s("A", b"z" * 1000)
    for _ in range(3):
        conv.s("A", b"w" * 1000)
        conv.c("A", ack=seg)
    conv.s("A", b"z" * 1000, seq=seg)
    conv.c("A")
    conv.client_close()
    _with_timestamps(conv)
    result = _analyze(conv.write(tmp_path / "retx.pcap"))
    assert _findings(result) == []


def test_text_summary_lists_findings_by_code_with_worst_examples() -> None:
    result = _analyze(CAPTURES / "syn_backlog_drop.pcap")
    text = result.summary()
    assert "findings: 10 (" in text
    assert "  syn_retransmit: 2" in text
    assert "  close_wait_linger: 2" in text
    # The worst CLOSE_WAIT first: conn 1 lingered longer (from frame 12) than conn 2.
    block = text.split("  close_wait_linger: 2\n", 1)[1].splitlines()
    assert block[0].startswith("    #1 frame 12: server was still in CLOSE_WAIT")
    assert block[1].startswith("    #2 frame 15:")
    clean = _analyze(CAPTURES / "client_close.pcap").summary()
    assert "findings: none" in clean


def test_state_seconds_columns() -> None:
    # close_wait_long: client FIN 10, server ACK 11 (CLOSE_WAIT / FIN_WAIT_2), server
    # FIN 12, client ACK 13 (TIME_WAIT until the end of the capture: 0 s).
    row = _conn(_analyze(CAPTURES / "close_wait_long.pcap"))
    assert row.close_wait_s == pytest.approx(row.fin_wait_2_s, abs=0.001)
    assert row.time_wait_s == 0.0
    assert math.isnan(_conn(_analyze(CAPTURES / "refused.pcap")).close_wait_s)


# -- any trace: findings point at the connection's own frames -----------------------------

_FLAGS = st.sampled_from(
    [
        Flags.SYN,
        Flags.SYN | Flags.ACK,
        Flags.ACK,
        Flags.ACK | Flags.PSH,
        Flags.FIN | Flags.ACK,
        Flags.RST,
        Flags.RST | Flags.ACK,
    ]
)
_SEGMENT = st.tuples(
    st.sampled_from([CLIENT, SERVER]),
    _FLAGS,
    st.sampled_from([0, 0, 0, -1, 1, -100, 70_000]),  # seq offset from the sender's next
    st.sampled_from([0, 0, 10, 1000]),  # payload
    st.sampled_from([0, 0, 1, 2_000, 61_000]),  # ms since the previous segment
    st.booleans(),  # seen by the capture
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_SEGMENT, min_size=1, max_size=30))
def test_findings_of_any_trace_rest_on_its_frames(segments: list[Any]) -> None:
    wire = Wire(msl=30.0).play(segments)
    tracker = wire.tracker
    tracker.finish()
    conns = tracker.connections
    by_id = {c.conn_id: c for c in conns}
    for f in detect_all(conns, Config(), tracker.capture_end_ns):
        conn = by_id[f.conn_id]
        prev = by_id.get(conn.prev_conn_id) if conn.prev_conn_id is not None else None
        frames = {s.seg.frame for s in conn.trace}
        old = {s.seg.frame for s in prev.trace} if prev is not None else set()
        assert f.frame is None or f.frame in frames
        assert set(f.evidence_frames) <= frames | old, f
        assert f.endpoint in ("client", "server", "")
        assert f.detail and f.rfc.startswith("RFC")
    for conn in conns:
        prev = by_id.get(conn.prev_conn_id) if conn.prev_conn_id is not None else None
        tcpflow_analyzer.report.summarize(conn, prev=prev, capture_end_ns=tracker.capture_end_ns)
