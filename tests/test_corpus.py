"""Every capture of the public conformance set (../shared/corpus) is read without error.

Each file's skipped-frame counts are stated here with the reason, so a change in
what the reader skips shows up as a failing test, not as silently lost frames.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tcpflow_analyzer

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

# file -> (frames, skipped by reason, why those frames are skipped)
EXPECTED: dict[str, tuple[int, dict[str, int], str]] = {
    "tcpdump/tests/tcp_rst_data.pcap": (1, {}, "one RST carrying payload"),
    "tcpdump/tests/mptcp-fclose.pcap": (11, {"not_ip": 2}, "frames 1-2 are an ARP request/reply"),
    "tcpdump/tests/tcp_eight_lowest_weight_flags_set.pcap": (1, {}, "one segment, all flags"),
    "suricata-verify/tests/tcp-rst-unacked-stream-01-raw/input.pcap": (8, {}, "all TCP"),
    "suricata-verify/tests/tcp-split-handshake-02-5whs/split-handshake-5whs.pcap": (
        8,
        {},
        "all TCP",
    ),
    "suricata-verify/tests/bug-3286-02-linux-evasion/with_evasion_linux.pcap": (10, {}, "all TCP"),
    "zeek/ftp/ipv6.pcap": (136, {}, "all TCP over IPv6"),
    "zeek/ssh/ssh.server-side-half-duplex.pcap": (832, {}, "all TCP, one direction"),
    "zeek/tcp/one-sided-2745.pcap": (6, {}, "all TCP"),
    "zeek/tcp/syn-synack.pcap": (2, {}, "all TCP"),
    "zeek/tcp/fin_retransmission.pcap": (5, {}, "all TCP"),
    "zeek/tcp/single-rst.pcap": (1, {}, "one RST"),
    "zeek/tcp/syn-then-stuff-then-rst.pcap": (4, {}, "all TCP"),
    "zeek/tcp/syn-then-rst.pcap": (2, {}, "all TCP"),
    "zeek/tcp/qi_internet_SYNACK_curl_jsonip.pcap": (14, {}, "all TCP"),
    "zeek/tcp/ssh-dups.pcap": (377, {}, "all TCP (every segment captured 4x)"),
    "zeek/tcp/missing-syn.pcap": (21, {}, "all TCP"),
    "zeek/tcp/rst-inject-rae.pcap": (9, {}, "all TCP"),
    # The snap length cuts every frame inside the TCP *options*: the fixed
    # 20-byte header is there, so each segment is analyzed (without options),
    # its length taken from the IP header.
    "zeek/tcp/truncated-header.pcap": (24, {}, "options cut, fixed header complete"),
    "zeek/tcp/syn-then-ack-then-rst.pcap": (3, {}, "all TCP"),
    "zeek/tcp/miss_end_data.pcap": (9, {}, "all TCP"),
    "zeek/tcp/retransmit-fast009.pcap": (39, {}, "all TCP"),
    "zeek/modbus/modbus-and-non-modbus-p502.pcap": (86, {}, "all TCP"),
    "zeek/http/get.pcap": (14, {}, "all TCP"),
    "zeek/ldap/gap-data-missing.pcapng": (18, {}, "all TCP, two VLANs"),
    "zeek/llc.pcap": (1333, {}, "FDDI link type, all bare RSTs"),
    "zeek/tls/irc-starttls.pcap": (20, {}, "Linux cooked capture, all TCP"),
    "zeek/vlan-collisions.pcap": (42, {}, "all TCP in three VLAN contexts"),
}


def _corpus_files() -> list[str]:
    assert CORPUS.is_dir(), f"conformance set missing: {CORPUS}"
    return sorted(
        str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.suffix in (".pcap", ".pcapng")
    )


def test_every_corpus_capture_has_an_expectation() -> None:
    assert _corpus_files() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_capture_reads_with_explained_skips(name: str) -> None:
    frames, skipped, _why = EXPECTED[name]
    result = tcpflow_analyzer.analyze(CORPUS / name)
    assert result.frames == frames
    assert result.skipped == skipped
    assert result.warnings == []
    assert result.segments == frames - sum(skipped.values())
    assert len(result.connections) >= 1
