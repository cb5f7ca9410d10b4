"""Findings on a connection whose FIN is retransmitted a great many times: the work grows
with the segments, not with their square (a hostile or broken capture must not stall
the analysis). Crafted: Linux gives up on an unanswered FIN after a handful of
retransmissions (tcp_orphan_retries), so no real-kernel capture has 120 copies."""

from __future__ import annotations

from pathlib import Path

import pytest

import tcpflow_analyzer
from tcpflow_analyzer import findings
from tcpflow_analyzer.findings import Code

from .craft import Conversation


def _retransmitted_fin(path: Path, copies: int) -> Path:
    """The client closes first; the server's FIN is sent ``copies`` times, each copy
    ACKed by the client from TIME_WAIT (as when the server never gets those ACKs)."""
    conv = Conversation().handshake()
    conv.c("PA", b"GET / HTTP/1.1\r\n\r\n")
    conv.s("PA", b"HTTP/1.1 200 OK\r\n\r\n")
    conv.c("FA")
    conv.s("A")
    fin_seq = conv.sseq
    conv.s("FA")
    conv.c("A")
    for k in range(copies - 1):
        conv.s("FA", seq=fin_seq, at=1.0 + k * 0.2)
        conv.c("A")
    return conv.write(path)


def _seq_reads(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, list[Code]]:
    """How often the findings read a segment's numbers, and the findings' codes."""
    calls = [0]
    original = findings._Trace.seq_ack_len

    def counted(self: findings._Trace, i: int) -> tuple[int, int, int]:
        calls[0] += 1
        return original(self, i)

    monkeypatch.setattr(findings._Trace, "seq_ack_len", counted)
    result = tcpflow_analyzer.analyze(path)
    monkeypatch.undo()
    return calls[0], [f.code for f in result.finding_records]


def test_a_fin_retransmitted_many_times_is_read_in_linear_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twice the copies, about twice the reads (each stretch between two copies is
    scanned once; scanning from the first copy for every copy made it four times)."""
    few, codes_few = _seq_reads(_retransmitted_fin(tmp_path / "few.pcap", 60), monkeypatch)
    many, codes_many = _seq_reads(_retransmitted_fin(tmp_path / "many.pcap", 120), monkeypatch)
    assert Code.TIME_WAIT_REACK in codes_few and Code.TIME_WAIT_REACK in codes_many
    assert Code.LOST_FINAL_ACK in codes_many
    assert many < 2.5 * few, (few, many)
