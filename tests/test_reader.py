"""CaptureReader: every capture format, written at test time, reads back exactly."""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
import types
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, CookedLinux, Ether
from scapy.utils import PcapNgWriter, PcapWriter, wrpcap

import tcpflow_analyzer.reader as reader_module
from tcpflow_analyzer.reader import (
    MAX_CAPLEN,
    SNAPLEN_SLACK,
    CaptureError,
    CaptureReader,
    ReadStats,
)
from tcpflow_analyzer.segment import Segment

ETHERNET, RAW, SLL = 1, 101, 113
T0 = 1_700_000_000_000_000_000  # a round second, in ns


def eth_frame(n: int, *, payload: bytes = b"") -> bytes:
    """An Ethernet/IPv4/TCP frame identified by its source port 1000 + n."""
    pkt = (
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        / IP(src="192.0.2.1", dst="192.0.2.2")
        / TCP(sport=1000 + n, dport=80, seq=n, flags="A")
    )
    return bytes(pkt) + payload


def raw_frame(n: int) -> bytes:
    return bytes(IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=1000 + n, dport=80))


def sll_frame(n: int) -> bytes:
    return bytes(CookedLinux(proto=0x0800) / IP() / TCP(sport=1000 + n, dport=80))


ARP_FRAME = bytes(Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(op=1))
UDP_FRAME = bytes(
    Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP() / UDP(sport=53, dport=53)
)


def summary(segments: Iterable[Segment]) -> list[tuple[int, int, int]]:
    """(frame, source port - 1000, ts_ns) per segment."""
    return [(s.frame, s.sport - 1000, s.ts_ns) for s in segments]


# --- writers (by hand, independent of the reader) ---------------------------


def pcap_bytes(
    records: Iterable[tuple[int, bytes]],
    *,
    endian: str = "<",
    nano: bool = False,
    linktype: int = ETHERNET,
    snaplen: int = 65535,
    magic: int | None = None,
    version: tuple[int, int] = (2, 4),
) -> bytes:
    """Classic pcap (draft-ietf-opsawg-pcap) from (ts_ns, frame) pairs."""
    if magic is None:
        magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, *version, 0, 0, snaplen, linktype)]
    for ts_ns, data in records:
        sec, ns = divmod(ts_ns, 10**9)
        frac = ns if nano else ns // 1000
        out.append(struct.pack(endian + "IIII", sec, frac, len(data), len(data)))
        if magic == 0xA1B2CD34:  # modified pcap: ifindex, protocol, pkt_type, pad
            out.append(struct.pack(endian + "IHBx", 1, 0x0800, 0))
        out.append(data)
    return b"".join(out)


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def block(e: str, btype: int, body: bytes) -> bytes:
    body = _pad4(body)
    total = 12 + len(body)
    return struct.pack(e + "II", btype, total) + body + struct.pack(e + "I", total)


def shb(e: str = "<", version: tuple[int, int] = (1, 0)) -> bytes:
    return block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, *version, -1))


def option(e: str, code: int, value: bytes) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + _pad4(value)


def idb(
    e: str,
    linktype: int,
    *,
    snaplen: int = 0,
    tsresol: int | None = None,
    tsoffset: int | None = None,
) -> bytes:
    opts = option(e, 2, b"eth0")  # if_name, ignored
    if tsresol is not None:
        opts += option(e, 9, bytes([tsresol]))
    if tsoffset is not None:
        opts += option(e, 14, struct.pack(e + "q", tsoffset))
    opts += struct.pack(e + "HH", 0, 0)
    return block(e, 1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts)


def epb(e: str, iface: int, ticks: int, data: bytes) -> bytes:
    hdr = struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
    return block(e, 6, hdr + _pad4(data) + option(e, 1, b"a comment") + bytes(4))


def spb(e: str, data: bytes) -> bytes:
    return block(e, 3, struct.pack(e + "I", len(data)) + data)


def pb(e: str, iface: int, ticks: int, data: bytes) -> bytes:
    hdr = struct.pack(e + "HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data))
    return block(e, 2, hdr + data)


def write(tmp_path: Path, data: bytes, name: str = "capture.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read(source: Any) -> tuple[list[Segment], ReadStats]:
    with CaptureReader(source) as reader:
        segments = list(reader)
    return segments, reader.stats


# --- classic pcap -----------------------------------------------------------


def test_pcap_written_by_scapy_reads_back_exactly(tmp_path: Path) -> None:
    pkts = []
    for n in range(3):
        pkt = Ether(eth_frame(n))
        pkt.time = Decimal("1700000000.123456") + n
        pkts.append(pkt)
    path = tmp_path / "scapy.pcap"
    wrpcap(str(path), pkts)
    segments, stats = read(path)
    assert summary(segments) == [(n + 1, n, T0 + 123_456_000 + n * 10**9) for n in range(3)]
    assert stats.frames == 3
    assert stats.linktypes == {ETHERNET: 3}
    assert not stats.truncated and not stats.warnings


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_both_byte_orders_and_resolutions_give_exact_ns(
    tmp_path: Path, endian: str, nano: bool
) -> None:
    ts = [T0 + 123_456_789, T0 + 999_999_999, T0 + 10**9] if nano else [T0 + 1000, T0 + 999_999_000]
    records = [(t, eth_frame(n)) for n, t in enumerate(ts)]
    path = write(tmp_path, pcap_bytes(records, endian=endian, nano=nano))
    segments, _ = read(path)
    assert summary(segments) == [(n + 1, n, t) for n, t in enumerate(ts)]


def test_pcap_written_by_scapy_big_endian_nano(tmp_path: Path) -> None:
    path = tmp_path / "be.pcap"
    with PcapWriter(str(path), endianness=">", nano=True, linktype=ETHERNET) as w:
        pkt = Ether(eth_frame(5))
        pkt.time = Decimal("1700000000.000000007")
        w.write(pkt)
    assert path.read_bytes()[:4] == bytes.fromhex("a1b23c4d")
    segments, _ = read(path)
    assert summary(segments) == [(1, 5, T0 + 7)]


def test_pcap_modified_magic_24_byte_record_headers(tmp_path: Path) -> None:
    data = pcap_bytes([(T0, eth_frame(1)), (T0 + 2000, eth_frame(2))], magic=0xA1B2CD34)
    segments, _ = read(write(tmp_path, data))
    assert summary(segments) == [(1, 1, T0), (2, 2, T0 + 2000)]


def test_pcap_linktype_from_file_header(tmp_path: Path) -> None:
    path = write(tmp_path, pcap_bytes([(T0, raw_frame(3))], linktype=RAW))
    segments, stats = read(path)
    assert summary(segments) == [(1, 3, T0)]
    assert stats.linktypes == {RAW: 1}


def test_pcap_linktype_fcs_bits_are_masked(tmp_path: Path) -> None:
    # draft-ietf-opsawg-pcap 4: FCS length in the link-type field's upper bits.
    path = write(tmp_path, pcap_bytes([(T0, eth_frame(1) + b"FCS!")], linktype=0x10000000 | 1))
    segments, stats = read(path)
    assert summary(segments) == [(1, 1, T0)]
    assert stats.linktypes == {ETHERNET: 1}


def test_frame_numbers_count_skipped_records(tmp_path: Path) -> None:
    frames = [eth_frame(1), ARP_FRAME, UDP_FRAME, eth_frame(4), b"\x00" * 5]
    path = write(tmp_path, pcap_bytes((T0 + i, f) for i, f in enumerate(frames)))
    segments, stats = read(path)
    assert [s.frame for s in segments] == [1, 4]
    assert stats.frames == 5
    assert stats.skipped == {"not_ip": 1, "not_tcp": 1, "cut_link_header": 1}
    assert stats.linktypes == {ETHERNET: 5}


def test_unsupported_linktype_counted_per_frame(tmp_path: Path) -> None:
    path = write(tmp_path, pcap_bytes([(T0, eth_frame(1))] * 3, linktype=147))
    segments, stats = read(path)
    assert segments == []
    assert stats.skipped == {"unsupported_linktype": 3}
    assert stats.linktypes == {147: 3}


# --- pcapng -----------------------------------------------------------------


def test_pcapng_written_by_scapy_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "scapy.pcapng"
    with PcapNgWriter(str(path)) as w:
        for n in range(2):
            pkt = Ether(eth_frame(n))
            pkt.time = Decimal("1700000000.25") + n
            w.write(pkt)
    segments, stats = read(path)
    assert summary(segments) == [(1, 0, T0 + 250_000_000), (2, 1, T0 + 1_250_000_000)]
    assert stats.frames == 2


def test_pcapng_interfaces_keep_their_own_linktype_tsresol_and_tsoffset(tmp_path: Path) -> None:
    e = "<"
    data = b"".join(
        [
            shb(e),
            idb(e, ETHERNET),  # default if_tsresol: microseconds
            idb(e, RAW, tsresol=9),  # nanoseconds
            idb(e, SLL, tsresol=0x80 | 20, tsoffset=1_700_000_000),  # 2^-20 s, offset
            epb(e, 0, (T0 // 1000) + 5, eth_frame(1)),
            epb(e, 1, T0 + 123_456_789, raw_frame(2)),
            epb(e, 2, 3 << 19, sll_frame(3)),  # 1.5 s after the offset
            epb(e, 0, (T0 // 1000) + 6, eth_frame(4)),
        ]
    )
    segments, stats = read(write(tmp_path, data, "multi.pcapng"))
    assert summary(segments) == [
        (1, 1, T0 + 5000),
        (2, 2, T0 + 123_456_789),
        (3, 3, T0 + 1_500_000_000),
        (4, 4, T0 + 6000),
    ]
    assert stats.linktypes == {ETHERNET: 2, RAW: 1, SLL: 1}


def test_pcapng_tsresol_finer_than_ns_is_floored(tmp_path: Path) -> None:
    data = shb() + idb("<", RAW, tsresol=12) + epb("<", 0, 5_000_000_001_999, raw_frame(1))
    segments, _ = read(write(tmp_path, data, "ps.pcapng"))
    assert summary(segments) == [(1, 1, 5_000_000_001)]


def test_pcapng_negative_tsoffset(tmp_path: Path) -> None:
    data = shb() + idb("<", RAW, tsresol=0, tsoffset=-10) + epb("<", 0, 1_700_000_010, raw_frame(1))
    segments, _ = read(write(tmp_path, data, "off.pcapng"))
    assert summary(segments) == [(1, 1, T0)]


def test_pcapng_new_section_resets_interfaces_and_byte_order(tmp_path: Path) -> None:
    data = b"".join(
        [
            shb("<"),
            idb("<", ETHERNET, tsresol=9),
            epb("<", 0, T0 + 1, eth_frame(1)),
            shb(">"),
            idb(">", RAW, tsresol=9),
            epb(">", 0, T0 + 2, raw_frame(2)),  # interface 0 of the second section
            shb("<"),
            epb("<", 0, T0 + 3, eth_frame(3)),  # no interface in this section
        ]
    )
    segments, stats = read(write(tmp_path, data, "sections.pcapng"))
    assert summary(segments) == [(1, 1, T0 + 1), (2, 2, T0 + 2)]
    assert stats.linktypes == {ETHERNET: 1, RAW: 1}
    assert stats.frames == 3
    assert stats.bad_records == 1
    offset3 = len(data) - len(epb("<", 0, 0, eth_frame(3)))
    assert stats.warnings == [
        f"{tmp_path / 'sections.pcapng'}: frame 3 at offset {offset3} names interface 0, "
        "but its section describes 0; skipped"
    ]


def test_pcapng_big_endian_file(tmp_path: Path) -> None:
    data = shb(">") + idb(">", ETHERNET) + epb(">", 0, T0 // 1000, eth_frame(7))
    segments, _ = read(write(tmp_path, data, "be.pcapng"))
    assert summary(segments) == [(1, 7, T0)]


def test_pcapng_simple_packet_block_uses_interface_0_and_previous_time(tmp_path: Path) -> None:
    e = "<"
    data = shb(e) + idb(e, RAW, tsresol=9) + idb(e, ETHERNET)
    data += epb(e, 1, T0 // 1000, eth_frame(1)) + spb(e, raw_frame(2))
    segments, stats = read(write(tmp_path, data, "spb.pcapng"))
    assert summary(segments) == [(1, 1, T0), (2, 2, T0)]
    assert stats.linktypes == {ETHERNET: 1, RAW: 1}
    assert len(stats.warnings) == 1
    assert "simple packet blocks carry no timestamp" in stats.warnings[0]


def test_pcapng_simple_packet_block_capped_by_snaplen(tmp_path: Path) -> None:
    frame = bytes(IP(src="192.0.2.1", dst="192.0.2.2") / TCP() / (b"p" * 100))
    data = shb() + idb("<", RAW, snaplen=60) + spb("<", frame)
    segments, _ = read(write(tmp_path, data, "spb.pcapng"))
    assert segments[0].caplen_short
    assert segments[0].payload_len == 100


def test_pcapng_obsolete_packet_block(tmp_path: Path) -> None:
    data = (
        shb() + idb("<", RAW, tsresol=9) + idb("<", ETHERNET) + pb("<", 1, T0 // 1000, eth_frame(4))
    )
    segments, stats = read(write(tmp_path, data, "pb.pcapng"))
    assert summary(segments) == [(1, 4, T0)]
    assert stats.linktypes == {ETHERNET: 1}


def test_pcapng_other_blocks_are_skipped(tmp_path: Path) -> None:
    e = "<"
    data = b"".join(
        [
            shb(e),
            idb(e, ETHERNET),
            block(e, 4, struct.pack(e + "HH", 0, 0)),  # name resolution block
            epb(e, 0, T0 // 1000, eth_frame(1)),
            block(e, 5, struct.pack(e + "III", 0, 0, 0)),  # interface statistics
            block(e, 0x00000BAD, b"\x00\x00\x7e\x40custom data"),  # custom block
            block(e, 0x0000000A, bytes(64)),  # decryption secrets
            epb(e, 0, T0 // 1000 + 1, eth_frame(2)),
        ]
    )
    segments, stats = read(write(tmp_path, data, "blocks.pcapng"))
    assert summary(segments) == [(1, 1, T0), (2, 2, T0 + 1000)]
    assert stats.frames == 2
    assert not stats.warnings


# --- gzip and sources -------------------------------------------------------


def test_gzip_detected_by_magic_not_extension(tmp_path: Path) -> None:
    data = pcap_bytes([(T0, eth_frame(1)), (T0 + 1000, eth_frame(2))])
    path = write(tmp_path, gzip.compress(data), "not-compressed-honest.pcap")
    with CaptureReader(path) as reader:
        segments = list(reader)
        assert reader.compressed
        assert reader.format == "pcap"
    assert summary(segments) == [(1, 1, T0), (2, 2, T0 + 1000)]


def test_gzip_pcapng(tmp_path: Path) -> None:
    data = shb() + idb("<", ETHERNET) + epb("<", 0, T0 // 1000, eth_frame(1))
    segments, _ = read(write(tmp_path, gzip.compress(data), "x.pcapng.gz"))
    assert summary(segments) == [(1, 1, T0)]


def test_gzip_multi_member_stream(tmp_path: Path) -> None:
    data = pcap_bytes([(T0 + i, eth_frame(i)) for i in range(200)])
    gz = gzip.compress(data[:1000]) + gzip.compress(data[1000:])
    segments, stats = read(write(tmp_path, gz))
    assert [s.frame for s in segments] == list(range(1, 201))
    assert not stats.truncated


def test_gzip_cut_short_yields_what_inflated_and_warns(tmp_path: Path) -> None:
    data = pcap_bytes([(T0 + i, eth_frame(i, payload=os.urandom(200))) for i in range(50)])
    gz = gzip.compress(data)
    segments, stats = read(write(tmp_path, gz[: len(gz) // 2]))
    assert 0 < len(segments) < 50
    assert [s.frame for s in segments] == list(range(1, len(segments) + 1))
    assert stats.truncated
    assert any("gzip stream ends early" in w for w in stats.warnings)


def test_stdin_dash_reads_stdin_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    data = pcap_bytes([(T0, eth_frame(1))])
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))
    with CaptureReader("-") as reader:
        assert reader.name == "<stdin>"
        assert summary(reader) == [(1, 1, T0)]


def test_stdin_gzip_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    data = gzip.compress(shb() + idb("<", RAW, tsresol=9) + epb("<", 0, T0, raw_frame(2)))
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))
    segments, _ = read("-")
    assert summary(segments) == [(1, 2, T0)]


def test_stdin_missing_raises_capture_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", None)
    with pytest.raises(CaptureError, match="<stdin>: standard input is not available"):
        CaptureReader("-")


def test_stdin_through_a_real_pipe() -> None:
    data = gzip.compress(pcap_bytes([(T0 + i, eth_frame(i)) for i in range(3)]))
    code = (
        "from tcpflow_analyzer.reader import CaptureReader\n"
        "r = CaptureReader('-')\n"
        "print([s.frame for s in r], r.stats.frames, r.compressed)\n"
    )
    root = Path(reader_module.__file__).parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", code], input=data, capture_output=True, env=env, check=True
    )
    assert done.stdout.decode().strip() == "[1, 2, 3] 3 True"


def test_binary_file_object_source_is_not_closed() -> None:
    stream = io.BytesIO(pcap_bytes([(T0, eth_frame(1))]))
    with CaptureReader(stream) as reader:
        assert reader.name == "<stream>"
        assert summary(reader) == [(1, 1, T0)]
    assert not stream.closed


def test_path_as_str_and_pathlike(tmp_path: Path) -> None:
    path = write(tmp_path, pcap_bytes([(T0, eth_frame(1))]))
    assert summary(read(str(path))[0]) == summary(read(path)[0]) == [(1, 1, T0)]


def test_close_closes_the_file_it_opened(tmp_path: Path) -> None:
    reader = CaptureReader(write(tmp_path, pcap_bytes([(T0, eth_frame(1))])))
    owned = reader._owned
    assert owned is not None
    with reader:
        pass
    assert owned.closed


def test_iteration_is_single_pass(tmp_path: Path) -> None:
    path = write(tmp_path, pcap_bytes([(T0 + i, eth_frame(i)) for i in range(4)]))
    with CaptureReader(path) as reader:
        it = iter(reader)
        first = next(it)
        rest = list(reader)
    assert first.frame == 1
    assert [s.frame for s in rest] == [2, 3, 4]
    assert reader.stats.frames == 4


# --- open errors ------------------------------------------------------------


def test_missing_file_raises_capture_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.pcap"
    with pytest.raises(CaptureError, match=r"nope\.pcap: cannot open: No such file"):
        CaptureReader(path)


def test_empty_file_raises_capture_error(tmp_path: Path) -> None:
    path = write(tmp_path, b"")
    with pytest.raises(CaptureError) as err:
        CaptureReader(path)
    assert str(err.value) == f"{path}: empty file at offset 0"


def test_not_a_capture_names_first_bytes_and_offset(tmp_path: Path) -> None:
    path = write(tmp_path, b"HTTP/1.1 200 OK\r\n\r\n" + bytes(20))
    with pytest.raises(CaptureError) as err:
        CaptureReader(path)
    assert str(err.value) == (
        f"{path}: not a pcap or pcapng file (first bytes 0x48545450) at offset 0"
    )


def test_not_a_capture_inside_gzip_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, gzip.compress(b"hello world, not a capture"))
    with pytest.raises(CaptureError, match=r"first bytes 0x68656c6c\) after gzip"):
        CaptureReader(path)


def test_unsupported_pcap_version_raises(tmp_path: Path) -> None:
    path = write(tmp_path, pcap_bytes([(T0, eth_frame(1))], version=(3, 0)))
    with pytest.raises(CaptureError) as err:
        CaptureReader(path)
    assert str(err.value) == f"{path}: unsupported pcap version 3.0 at offset 4"


def test_unsupported_pcapng_version_raises(tmp_path: Path) -> None:
    path = write(tmp_path, shb(">", version=(2, 0)) + idb(">", ETHERNET), "v2.pcapng")
    with pytest.raises(CaptureError) as err:
        CaptureReader(path)
    assert str(err.value) == f"{path}: unsupported pcapng version 2.0 at offset 12"


def test_pcap_header_cut_short_raises(tmp_path: Path) -> None:
    path = write(tmp_path, pcap_bytes([])[:20])
    with pytest.raises(CaptureError) as err:
        CaptureReader(path)
    assert str(err.value) == f"{path}: pcap file header cut short (20 of 24 bytes) at offset 0"


def test_pcapng_bad_byte_order_magic_raises(tmp_path: Path) -> None:
    data = bytearray(shb())
    data[8:12] = b"\x01\x02\x03\x04"
    path = write(tmp_path, bytes(data), "bom.pcapng")
    with pytest.raises(CaptureError, match=r"bad pcapng byte-order magic 0x01020304 at offset 8"):
        CaptureReader(path)


def test_corrupt_gzip_header_raises(tmp_path: Path) -> None:
    path = write(tmp_path, b"\x1f\x8b\x08\x00" + bytes(6) + b"\xff" * 40)
    with pytest.raises(CaptureError, match=r"corrupt gzip data .* at offset 0"):
        CaptureReader(path)


# --- damage after the header ------------------------------------------------


def test_truncated_last_record_yields_the_rest_and_warns_with_offset(tmp_path: Path) -> None:
    f1, f2 = eth_frame(1), eth_frame(2, payload=b"x" * 40)
    data = pcap_bytes([(T0, f1), (T0 + 1000, f2)])
    offset2 = 24 + 16 + len(f1)
    path = write(tmp_path, data[:-10])
    segments, stats = read(path)
    assert summary(segments) == [(1, 1, T0)]
    assert stats.truncated
    assert stats.frames == 1
    assert stats.warnings == [
        f"{path}: file ends inside record 2 (record needs {16 + len(f2)} bytes, "
        f"{16 + len(f2) - 10} present) at offset {offset2}; reading stopped"
    ]


def test_truncated_inside_record_header_warns_with_offset(tmp_path: Path) -> None:
    f1 = eth_frame(1)
    data = pcap_bytes([(T0, f1), (T0, f1)])
    path = write(tmp_path, data[: 24 + 16 + len(f1) + 7])
    segments, stats = read(path)
    assert [s.frame for s in segments] == [1]
    assert stats.truncated
    assert stats.warnings == [
        f"{path}: file ends inside the header of record 2 (record needs 16 bytes, 7 present) "
        f"at offset {24 + 16 + len(f1)}; reading stopped"
    ]


def test_absurd_caplen_stops_with_warning_without_reading_on(tmp_path: Path) -> None:
    f1 = eth_frame(1)
    data = bytearray(pcap_bytes([(T0, f1), (T0, f1), (T0, f1)]))
    offset2 = 24 + 16 + len(f1)
    data[offset2 + 8 : offset2 + 12] = struct.pack("<I", 0x7FFFFFF0)
    path = write(tmp_path, bytes(data))
    segments, stats = read(path)
    assert [s.frame for s in segments] == [1]
    assert stats.truncated
    assert stats.warnings == [
        f"{path}: record 2 claims {0x7FFFFFF0} captured bytes, more than the {MAX_CAPLEN}-byte "
        f"maximum (corrupt record header) at offset {offset2}; reading stopped"
    ]


def test_caplen_over_snaplen_is_skipped_with_warning(tmp_path: Path) -> None:
    big = eth_frame(2, payload=b"b" * (100 + SNAPLEN_SLACK))
    records = [(T0, eth_frame(1)), (T0, big), (T0, eth_frame(3))]
    path = write(tmp_path, pcap_bytes(records, snaplen=100))
    segments, stats = read(path)
    assert [s.frame for s in segments] == [1, 3]
    assert stats.frames == 3
    assert stats.bad_records == 1
    assert not stats.truncated
    assert stats.warnings == [
        f"{path}: record 2 at offset {24 + 16 + len(eth_frame(1))} has {len(big)} captured "
        "bytes, more than the snap length 100; skipped"
    ]


def test_caplen_within_snaplen_slack_is_kept(tmp_path: Path) -> None:
    frame = eth_frame(1, payload=b"s" * 20)
    segments, stats = read(write(tmp_path, pcap_bytes([(T0, frame)], snaplen=len(frame) - 14)))
    assert [s.frame for s in segments] == [1]
    assert not stats.warnings


def test_repeated_record_warnings_are_capped(tmp_path: Path) -> None:
    big = eth_frame(0, payload=b"b" * (100 + SNAPLEN_SLACK))
    path = write(tmp_path, pcap_bytes([(T0, big)] * 25, snaplen=100))
    _, stats = read(path)
    assert stats.bad_records == 25
    assert len(stats.warnings) == reader_module.MAX_RECORD_WARNINGS + 1
    assert stats.warnings[-1] == f"{path}: 15 more oversized record warnings not shown"


def test_pcapng_truncated_block_warns_with_offset(tmp_path: Path) -> None:
    head = shb() + idb("<", ETHERNET)
    b1 = epb("<", 0, T0 // 1000, eth_frame(1))
    b2 = epb("<", 0, T0 // 1000, eth_frame(2))
    path = write(tmp_path, head + b1 + b2[:-6], "cut.pcapng")
    segments, stats = read(path)
    assert [s.frame for s in segments] == [1]
    assert stats.truncated
    assert stats.frames == 1
    assert stats.warnings == [
        f"{path}: file ends inside a pcapng block of type 0x00000006 (record needs {len(b2)} "
        f"bytes, {len(b2) - 6} present) at offset {len(head + b1)}; reading stopped"
    ]


def test_pcapng_trailing_length_mismatch_stops(tmp_path: Path) -> None:
    head = shb() + idb("<", ETHERNET)
    b1 = epb("<", 0, T0 // 1000, eth_frame(1))
    b2 = bytearray(epb("<", 0, T0 // 1000, eth_frame(2)))
    b2[-4:] = struct.pack("<I", 12)
    path = write(tmp_path, head + b1 + bytes(b2) + b1, "mismatch.pcapng")
    segments, stats = read(path)
    assert [s.frame for s in segments] == [1]
    assert stats.truncated
    assert stats.warnings == [
        f"{path}: pcapng block length {len(b2)} does not match its trailing copy 12 "
        f"at offset {len(head + b1)}; reading stopped"
    ]


def test_pcapng_absurd_caplen_stops(tmp_path: Path) -> None:
    head = shb() + idb("<", ETHERNET)
    b2 = bytearray(epb("<", 0, 0, eth_frame(2)))
    b2[20:24] = struct.pack("<I", MAX_CAPLEN + 1)
    path = write(tmp_path, head + bytes(b2), "absurd.pcapng")
    segments, stats = read(path)
    assert segments == []
    assert stats.truncated
    assert f"at offset {len(head)}; reading stopped" in stats.warnings[0]


# --- the shared corpus ------------------------------------------------------

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CORPUS_FILES = (
    [
        line.split("\t")[0]
        for line in (CORPUS / "INDEX.tsv").read_text().splitlines()
        if line and not line.startswith(("#", "path\t"))
    ]
    if (CORPUS / "INDEX.tsv").exists()
    else []
)


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_file_reads_cleanly(name: str) -> None:
    segments, stats = read(CORPUS / name)
    assert segments
    assert not stats.truncated and not stats.warnings and stats.bad_records == 0
    assert stats.frames == len(segments) + sum(stats.skipped.values())
    assert "unsupported_linktype" not in stats.skipped
