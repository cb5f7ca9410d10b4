"""The fast path (fastread.py) gives exactly what the reference path gives: classic pcap
here, pcapng in test_fastread_pcapng.py.

Every comparison reads the same file twice, with ``CaptureReader(path)`` (the fast
path) and ``CaptureReader(path, fast=False)``, and requires
equal segment lists and equal ``ReadStats``, compared both with ``==`` and by
``repr`` (so that ``1`` for ``True`` or a numpy integer for an ``int`` would
show). A counter on the fast path's chunk decoder makes sure the fast path
really ran where it should, so no comparison passes by both sides being the
reference.
"""

from __future__ import annotations

import copy
import dataclasses
import gzip
import io
import pickle
import random
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_LSRR, IPOption_RR
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, CookedLinux, Dot1AD, Dot1Q, Ether

from tcpflow_analyzer import fastread
from tcpflow_analyzer import reader as reader_module
from tcpflow_analyzer.reader import (
    DUPLICATE_WINDOW,
    MAX_CAPLEN,
    MAX_RECORD_WARNINGS,
    SNAPLEN_SLACK,
    CaptureError,
    CaptureReader,
)
from tcpflow_analyzer.segment import Segment

from .test_reader import T0, pcap_bytes

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".gz", ".cap", ".trace", ".dump", ".erf", ".pcapnp")
ETHERNET, RAW, SLL, SLL2, IPV4, IPV6, NULL, USER0 = 1, 101, 113, 276, 228, 229, 0, 147
MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
MS = 1_000_000


# --- comparing the two paths ---------------------------------------------------


@pytest.fixture
def fast_frames(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Frames decoded by the fast path so far (one entry per chunk)."""
    seen: list[int] = []
    chunk = fastread.FastPcap._chunk

    def counting(self: fastread.FastPcap, starts: Any, head: Any, caplen: Any) -> Any:
        seen.append(len(starts))
        return chunk(self, starts, head, caplen)

    monkeypatch.setattr(fastread.FastPcap, "_chunk", counting)
    return seen


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Few frames per chunk, short checksum spans, walk pieces, window: small files cross them."""
    monkeypatch.setattr(fastread, "WINDOW", 1500)
    monkeypatch.setattr(fastread, "FIRST_CHUNK", 3)
    monkeypatch.setattr(fastread, "CHUNK_FRAMES", 5)
    monkeypatch.setattr(fastread, "_SPAN", 64)
    monkeypatch.setattr(fastread, "_PIECE", 100)


def read(path: Path, *, fast: bool) -> tuple[Any, Any]:
    try:
        with CaptureReader(path, fast=fast) as reader:
            segments = list(reader)
    except CaptureError as exc:
        return "CaptureError", str(exc)
    return segments, reader.stats


def same(path: Path) -> tuple[list[Segment], Any]:
    """Read ``path`` both ways, require identical results, return them."""
    fast, fast_stats = read(path, fast=True)
    ref, ref_stats = read(path, fast=False)
    assert fast_stats == ref_stats
    assert repr(fast_stats) == repr(ref_stats)
    assert fast == ref
    assert repr(fast) == repr(ref)
    if isinstance(ref, list):
        assert [type(s) for s in fast] == [type(s) for s in ref]
        assert [type(s.options) for s in fast] == [type(s.options) for s in ref]
    return ref, ref_stats


def same_sharded(path: Path, n: int = 3) -> None:
    """Read ``path`` for each shard of ``n`` both ways: the same segments, times between, stats.

    At least two shards get segments of their own and times of others.
    """
    mixed = 0
    for k in range(n):
        got = []
        for fast in (True, False):
            seen: list[Segment | int] = []
            with CaptureReader(path, fast=fast) as reader:
                for seg in reader.sharded(k, n, seen.append):
                    seen.append(seg)
            got.append((seen, reader.stats))
        assert got[0] == got[1]
        assert repr(got[0]) == repr(got[1])
        mixed += {type(x) for x in got[0][0]} == {int, Segment}
    assert mixed >= 2


def _gzipped(data: bytes, gz: bool) -> bytes:
    """``data`` gzip-compressed if ``gz`` (the reader knows gzip by its magic)."""
    return gzip.compress(data, compresslevel=1) if gz else data


def write(tmp_path: Path, data: bytes, name: str = "capture.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def timed(frames: list[bytes], step_ns: int = 1000) -> list[tuple[int, bytes]]:
    return [(T0 + i * step_ns, f) for i, f in enumerate(frames)]


# --- every capture in the repository and the conformance set -------------------


def _captures() -> list[Path]:
    found = [p for p in (ROOT / "captures").rglob("*") if p.suffix in (".pcap", ".pcapng", ".gz")]
    assert CORPUS.is_dir(), f"conformance set missing: {CORPUS}"
    found += [p for p in CORPUS.rglob("*") if p.is_file() and p.suffix in CAPTURE_SUFFIXES]
    return sorted(found)


@pytest.mark.parametrize("path", _captures(), ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_every_capture_reads_the_same_both_ways(path: Path, fast_frames: list[int]) -> None:
    segments, stats = same(path)
    with path.open("rb") as f:
        classic = f.read(4) in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"M<\xb2\xa1")
    if classic and isinstance(segments, list):
        assert sum(fast_frames) == stats.frames  # the fast path read every frame


def test_the_captures_include_pcap_and_pcapng() -> None:
    suffixes = {p.suffix for p in _captures()}
    assert {".pcap", ".pcapng"} <= suffixes


# --- frames of every kind ------------------------------------------------------


def v4(*, payload: bytes = b"", ip: dict[str, Any] | None = None, **tcp: Any) -> Any:
    return IP(src="192.0.2.1", dst="198.51.100.7", **(ip or {})) / TCP(**tcp) / payload


def v6(*, payload: bytes = b"", **tcp: Any) -> Any:
    return IPv6(src="2001:db8::1", dst="2001:db8:ff::2") / TCP(**tcp) / payload


TS = [("NOP", None), ("NOP", None), ("Timestamp", (123456789, 987654321))]
LINUX_SYN = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (77, 0)), ("NOP", None), ("WScale", 7)]
SACK = [*TS, ("NOP", None), ("NOP", None), ("SAck", (1000, 2000, 3000, 4000))]


def network_packets() -> list[Any]:
    """IP packets (no link layer) covering the decoder's cases."""
    return [
        v4(sport=1, dport=2, seq=10, ack=20, flags="A"),
        v4(sport=1, dport=2, flags="PA", payload=b"x" * 101),  # odd length
        v4(sport=1, dport=2, flags="PA", payload=b"yz" * 300),
        v4(sport=3, dport=4, flags="A", options=TS),
        v4(sport=3, dport=4, flags="PA", options=TS, payload=b"q" * 1447),
        v4(sport=5, dport=6, flags="S", options=LINUX_SYN),
        v4(sport=5, dport=6, flags="SA", options=[("MSS", 1400), ("NOP", None), ("WScale", 2)]),
        v4(sport=7, dport=8, flags="A", options=SACK),
        v4(sport=7, dport=8, flags="A", options=[("NOP", None)] * 4),  # options -> None
        v4(sport=7, dport=8, flags="A", options=[("EOL", None), ("NOP", None)] * 2),
        v4(sport=9, dport=10, flags="FA", window=0, urgptr=5),
        v4(sport=9, dport=10, flags="R", chksum=0x1234),  # bad TCP checksum
        v4(sport=9, dport=10, flags="A", ip={"chksum": 0x4321}),  # bad IP header checksum
        v4(sport=9, dport=10, flags="A", ip={"chksum": 0x4321}, chksum=0x1),
        v4(sport=9, dport=10, flags="PA", ip={"chksum": 0x4321}, payload=b"p" * 41),
        v4(sport=11, dport=12, flags="A", ip={"options": [IPOption_RR()]}),
        v4(sport=11, dport=12, flags="A", ip={"options": [IPOption_LSRR(routers=["10.0.0.1"])]}),
        v4(sport=13, dport=14, flags="A", ip={"flags": "MF"}),  # fragment
        v4(sport=13, dport=14, flags="A", ip={"frag": 3}),
        v4(sport=13, dport=14, flags="A", ip={"flags": "DF"}),
        v4(sport=15, dport=16, flags="A", ip={"len": 0}),  # TSO: total length 0
        v4(sport=15, dport=16, flags="A", ip={"len": 12}),  # below the header length
        v4(sport=15, dport=16, flags="A", ip={"len": 30}),  # cannot hold TCP
        v4(sport=15, dport=16, flags="A", ip={"len": 400}),  # longer than captured
        v4(sport=17, dport=18, flags="A", dataofs=4),
        v4(sport=17, dport=18, flags="A", dataofs=15),
        v4(sport=17, dport=18, flags="A", ip={"ttl": 1, "tos": 0xB8, "id": 0}),
        v4(sport=0, dport=0, seq=2**32 - 1, ack=2**32 - 1, flags=0xFF, window=65535),
        IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=53, dport=53) / b"dns",
        IP(src="192.0.2.1", dst="192.0.2.2") / ICMP(),
        IP(src="192.0.2.1", dst="192.0.2.2", version=5) / TCP(),
        v6(sport=21, dport=22, flags="A"),
        v6(sport=21, dport=22, flags="PA", options=TS, payload=b"v6" * 333),
        v6(sport=21, dport=22, flags="PA", payload=b"odd"),
        v6(sport=23, dport=24, flags="S", options=LINUX_SYN),
        v6(sport=23, dport=24, flags="A", chksum=0xBEEF),
        IPv6(src="2001:db8::1", dst="2001:db8::2", plen=0) / TCP(sport=25, dport=26),
        IPv6(src="2001:db8::1", dst="2001:db8::2", plen=500) / TCP(sport=25, dport=26),
        IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() / TCP(sport=27),
        IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(m=1) / TCP(sport=28),
        IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=53, dport=53),
    ]


def ethernet_frames() -> list[bytes]:
    """Every network packet untagged, behind one and two VLAN tags; plus link-layer oddities."""
    frames = []
    for pkt in network_packets():
        frames.append(bytes(Ether(**MAC) / pkt))
        frames.append(bytes(Ether(**MAC) / Dot1Q(vlan=100, prio=5) / pkt))
        frames.append(bytes(Ether(**MAC) / Dot1AD(vlan=7) / Dot1Q(vlan=4095) / pkt))
    frames += [
        bytes(Ether(**MAC) / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / v4(sport=31)),
        bytes(Ether(**MAC) / Dot1Q(vlan=0) / v6(sport=32)),
        bytes(Ether(**MAC, type=0x9100) / Dot1Q(vlan=9) / v4(sport=33)),
        bytes(Ether(**MAC) / ARP(op=1)),
        bytes(Ether(**MAC) / v4(sport=34, flags="A")).ljust(60, b"\0"),  # padded
        bytes(Ether(**MAC) / v4(sport=35, flags="A")) + b"\xde\xad\xbe\xef",  # FCS
        bytes(Ether(**MAC, type=0x86DD) / v4(sport=36)),  # EtherType says IPv6
        bytes(Ether(**MAC, type=0x0800) / v6(sport=37)),  # EtherType says IPv4
        bytes(Ether(**MAC, type=0x0800)),  # nothing after the link header
        bytes(Ether(**MAC, type=0x8100)) + b"\x00",  # VLAN tag cut short
        b"",
        b"\x02\x00",
    ]
    return frames


def cut_frames(frames: list[bytes]) -> list[bytes]:
    """Each frame cut at lengths where the headers and the payload end."""
    out = []
    for f in frames:
        for n in (13, 14, 20, 33, 34, 40, 53, 54, 57, 66, 70, 74, 86, 94, 100, len(f) - 1):
            if 0 <= n < len(f):
                out.append(f[:n])
    return out


def test_every_kind_of_ethernet_frame(tmp_path: Path, fast_frames: list[int]) -> None:
    frames = ethernet_frames()
    path = write(tmp_path, pcap_bytes(timed(frames)))
    segments, stats = same(path)
    assert sum(fast_frames) == stats.frames == len(frames)
    same_sharded(path)
    # Not vacuous: the file holds segments of every checksum verdict, VLAN
    # stacks, IPv6 and options, and frames of many skip reasons.
    assert {s.checksum_ok for s in segments} == {True, False, None}
    assert {s.vlan for s in segments} >= {(), (100,), (7, 4095), (1, 2, 3), (0,)}
    assert {len(s.src) for s in segments} == {4, 16}
    assert any(s.options and s.options.sack_permitted for s in segments)
    assert any(s.options and s.options.sack_blocks for s in segments)
    assert len(stats.skipped) >= 6


def test_frames_cut_by_the_snap_length(tmp_path: Path) -> None:
    frames = cut_frames(ethernet_frames()[::3])
    path = write(tmp_path, pcap_bytes(timed(frames), snaplen=100))
    segments, stats = same(path)
    same_sharded(path)
    assert any(s.caplen_short and s.checksum_ok is None for s in segments)
    assert any(s.caplen_short and s.checksum_ok is False for s in segments)
    assert any(s.caplen_short and s.options is None for s in segments)
    assert stats.skipped["cut_tcp_header"] and stats.skipped["cut_ip_header"]


@pytest.mark.parametrize("shift", range(4))
def test_checksums_at_every_alignment(tmp_path: Path, shift: int) -> None:
    # A record of 1 + shift bytes first moves every later frame to another
    # offset modulo 4: the sums are taken over 32-bit words of the file.
    frames = [b"\0" * (1 + shift)] + [f for f in ethernet_frames() for _ in range(2)]
    segments, _ = same(write(tmp_path, pcap_bytes(timed(frames))))
    assert {s.checksum_ok for s in segments} == {True, False, None}


@pytest.mark.parametrize(
    ("linktype", "wrap"),
    [
        (SLL, lambda p: bytes(CookedLinux(proto=0x86DD if IPv6 in p else 0x0800) / p)),
        (SLL, lambda p: bytes(CookedLinux(proto=0x8100) / Dot1Q(vlan=5) / p)),
        (SLL2, lambda p: struct.pack("!HHIHBB8s", 0x0800, 0, 3, 1, 0, 6, b"") + bytes(p)),
        (RAW, bytes),
        (12, bytes),
        (IPV4, bytes),
        (IPV6, bytes),
        (NULL, lambda p: struct.pack("<I", 2) + bytes(p)),
        (USER0, bytes),
    ],
    ids=["sll", "sll-vlan", "sll2", "raw", "dlt12", "ipv4", "ipv6", "null", "user0"],
)
def test_other_link_types(tmp_path: Path, linktype: int, wrap: Any) -> None:
    frames = [wrap(p) for p in network_packets()]
    frames += [f[:n] for f in frames[:6] for n in (0, 1, 15, 19, 30)]
    same(write(tmp_path, pcap_bytes(timed(frames), linktype=linktype)))


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_byte_order_and_timestamp_resolution(tmp_path: Path, endian: str, nano: bool) -> None:
    frames = ethernet_frames()[:30]
    records = [(T0 + i * 1_234_567 + 891, f) for i, f in enumerate(frames)]
    segments, _ = same(write(tmp_path, pcap_bytes(records, endian=endian, nano=nano)))
    want = T0 + 1_234_567 + 891
    assert segments[1].ts_ns == (want if nano else want - want % 1000)


def test_modified_pcap_format(tmp_path: Path, fast_frames: list[int]) -> None:
    data = pcap_bytes(timed(ethernet_frames()[:20]), magic=0xA1B2CD34)
    same(write(tmp_path, data))
    assert sum(fast_frames) == 20


def test_fcs_bits_in_the_link_type_field(tmp_path: Path) -> None:
    data = pcap_bytes(timed(ethernet_frames()[:10]), linktype=ETHERNET | 0x1000_0000)
    segments, stats = same(write(tmp_path, data))
    assert segments and stats.linktypes == {ETHERNET: 10}


# --- damage and bad records ----------------------------------------------------


def _plain_file(n: int = 12) -> bytes:
    return pcap_bytes(timed([bytes(Ether(**MAC) / v4(sport=1000 + i)) for i in range(n)]))


def _offsets(data: bytes) -> list[int]:
    out, pos = [], 24
    while pos < len(data):
        out.append(pos)
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    return out


@pytest.mark.parametrize("keep", [1, 5, 15, 16, 17, 40])
def test_file_ending_inside_the_last_record(tmp_path: Path, keep: int) -> None:
    data = _plain_file()
    last = _offsets(data)[-1]
    segments, stats = same(write(tmp_path, data[: last + keep]))
    assert stats.truncated and len(segments) == 11


@pytest.mark.parametrize("where", [0, 4, 11])
@pytest.mark.parametrize("caplen", [MAX_CAPLEN + 1, 2**31, 2**32 - 1, 70])
def test_record_with_an_absurd_length(tmp_path: Path, where: int, caplen: int) -> None:
    data = bytearray(_plain_file())
    start = _offsets(bytes(data))[where]
    data[start + 8 : start + 12] = struct.pack("<I", caplen)
    segments, stats = same(write(tmp_path, bytes(data)))
    assert stats.frames >= where and len(segments) >= where


@pytest.mark.parametrize("snaplen", [0, 65535])
def test_record_longer_than_the_maximum_with_that_much_data_after_it(
    tmp_path: Path, snaplen: int
) -> None:
    big = bytes(Ether(**MAC) / v4(sport=5, payload=b"b" * 1400))
    frames = [bytes(Ether(**MAC) / v4(sport=4))] + [big] * 250
    data = bytearray(pcap_bytes(timed(frames), snaplen=snaplen))
    data[24 + 8 : 24 + 12] = struct.pack("<I", MAX_CAPLEN + 1)
    assert len(data) > 24 + 16 + MAX_CAPLEN + 1
    segments, stats = same(write(tmp_path, bytes(data)))
    assert stats.truncated and not segments


def test_oversized_records_are_bad_records(tmp_path: Path, small_chunks: None) -> None:
    big = bytes(Ether(**MAC) / v4(sport=9, payload=b"z" * (200 + SNAPLEN_SLACK)))
    small = [bytes(Ether(**MAC) / v4(sport=i)) for i in range(30)]
    frames = [big if i % 2 else small[i] for i in range(30)]
    _, stats = same(write(tmp_path, pcap_bytes(timed(frames), snaplen=200)))
    assert stats.bad_records == 15 > MAX_RECORD_WARNINGS
    assert stats.warnings[-1].endswith("more oversized record warnings not shown")


def test_only_the_header(tmp_path: Path, fast_frames: list[int]) -> None:
    _, stats = same(write(tmp_path, pcap_bytes([])))
    assert stats.frames == 0 and not stats.truncated


def test_data_appended_while_reading_is_read(tmp_path: Path, small_chunks: None) -> None:
    # The fast path stops at the end of what it read; the record walk reads on.
    first, more = _plain_file(8), _plain_file(20)[24:]

    def grown(fast: bool) -> list[Segment]:
        path = write(tmp_path, first, f"grow-{fast}.pcap")
        with CaptureReader(path, fast=fast) as reader:
            it = iter(reader)
            out = [next(it)]
            with path.open("ab") as f:
                f.write(more)
            out += list(it)
        return out

    fast, ref = grown(True), grown(False)
    assert fast == ref and len(fast) == 28


def test_a_read_error_hands_over_to_the_record_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_frames: list[int]
) -> None:
    # The fast path's second read fails: it stops at the first record it does
    # not hold whole, and the record walk reads on from there (here without
    # error: it would report one the way it always did).
    calls: list[int] = []
    original = fastread.FastPcap._read

    def flaky(self: fastread.FastPcap, at: int) -> int:
        calls.append(at)
        if len(calls) > 1:
            raise OSError("disk on fire")
        return original(self, at)

    monkeypatch.setattr(fastread, "WINDOW", 700)
    monkeypatch.setattr(fastread.FastPcap, "_read", flaky)
    same(write(tmp_path, _plain_file(30)))
    assert 0 < sum(fast_frames) < 30


@pytest.mark.parametrize("window", [64, 1000, 4096])
def test_records_longer_than_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    monkeypatch.setattr(fastread, "WINDOW", window)
    frames = [bytes(Ether(**MAC) / v4(sport=i, payload=b"w" * (37 * i))) for i in range(60)]
    same(write(tmp_path, pcap_bytes(timed(frames))))


def test_file_cut_short_while_being_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastread, "WINDOW", 2048)
    data = _plain_file(200)
    path = write(tmp_path, data)
    whole, _ = read(path, fast=True)
    with CaptureReader(path) as reader:
        it = iter(reader)
        got = [next(it)]
        with path.open("r+b") as f:
            f.truncate(len(data) // 2 + 7)
        got += list(it)
    assert reader.stats.truncated
    assert 50 < len(got) < 200 and got == whole[: len(got)]


# --- order and duplicates --------------------------------------------------------


def test_out_of_order_timestamps(tmp_path: Path, small_chunks: None) -> None:
    frames = [bytes(Ether(**MAC) / v4(sport=i)) for i in range(40)]
    times = [T0 + (i * 7919 % 23) * 1000 for i in range(40)]
    _, stats = same(write(tmp_path, pcap_bytes(list(zip(times, frames, strict=True)))))
    assert stats.out_of_order > 5


@pytest.mark.parametrize("chunks", [None, (2, 5), (1, 1), "no fingerprint"])
def test_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: tuple[int, int] | str | None
) -> None:
    if chunks == "no fingerprint":
        # Every fingerprint equal: the byte comparison alone must decide.
        monkeypatch.setattr(fastread, "_FP_MULT", fastread._FP_MULT * 0)
    elif chunks:
        # (2, 5): the duplicate DUPLICATE_WINDOW frames back starts a chunk.
        monkeypatch.setattr(fastread, "FIRST_CHUNK", chunks[0])
        monkeypatch.setattr(fastread, "CHUNK_FRAMES", chunks[1])
    a, c = (bytes(Ether(**MAC) / v4(sport=i, options=TS)) for i in (1, 3))
    b = bytes(Ether(**MAC) / v4(sport=2, options=TS, payload=b"B" * 300))  # longer than ROW
    same_len = bytes(Ether(**MAC) / v4(sport=4, options=TS))  # as long as a, other bytes
    b_but_last = b[:-1] + b"!"  # as b up to its last byte
    fill_a = [bytes(Ether(**MAC) / v4(sport=100 + i)) for i in range(DUPLICATE_WINDOW - 1)]
    fill_b = [bytes(Ether(**MAC) / v4(sport=200 + i)) for i in range(DUPLICATE_WINDOW + 2)]
    records = [
        (T0, a),
        (T0, a),  # duplicate
        (T0 + 10, same_len),
        (T0 + 20, a),  # duplicate, two back
        (T0 + 30, b),
        *[(T0 + 40 + i, f) for i, f in enumerate(fill_a[:-1])],
        (T0 + 50, b_but_last),
        (T0 + 60, b),  # exactly DUPLICATE_WINDOW back: still a duplicate
        *[(T0 + 70 + i, f) for i, f in enumerate(fill_b)],
        (T0 + 90, b),  # further back than the window
        (T0 + 90 + 2 * MS, b),  # the frame before, 2 ms later
        (T0 + 3 * MS, c),
        (T0 + 2 * MS, c),  # earlier by exactly 1 ms: duplicate (and out of order)
        (T0 + 4 * MS, b""),
        (T0 + 4 * MS + 1, b""),  # empty frames are equal too
    ]
    _, stats = same(write(tmp_path, pcap_bytes(records)))
    assert stats.duplicates == 5
    assert stats.out_of_order == 1


def test_duplicates_around_bad_records(tmp_path: Path, small_chunks: None) -> None:
    big = bytes(Ether(**MAC) / v4(sport=9, payload=b"z" * (100 + SNAPLEN_SLACK)))
    a = bytes(Ether(**MAC) / v4(sport=1))
    frames = [a, big, a, big, big, a, a] * 3
    _, stats = same(write(tmp_path, pcap_bytes(timed(frames, 1), snaplen=100)))
    assert stats.duplicates and stats.bad_records == 9


# --- iteration -----------------------------------------------------------------


def pieces(path: Path, fast: bool, sizes: tuple[int, ...], frames: int) -> list[list[int]]:
    """Frame numbers read in pieces of ``sizes``, each by a new iteration of the reader
    (the segment each iteration reads after its piece is dropped with it)."""
    with CaptureReader(path, fast=fast) as reader:
        first = next(iter(reader))  # the iterator is dropped here
        out = [[first.frame]]
        for n in sizes:
            part = []
            for seg in reader:
                if len(part) == n:
                    break
                part.append(seg.frame)
            out.append(part)
        out.append([s.frame for s in reader])
        assert reader.stats.frames == frames
    return out


def test_iteration_continues_where_it_stopped(tmp_path: Path, small_chunks: None) -> None:
    path = write(tmp_path, _plain_file(23))
    sizes = (1, 4, 0, 7)
    assert pieces(path, True, sizes, 23) == pieces(path, False, sizes, 23)


def test_segments_are_ordinary_dataclasses(tmp_path: Path) -> None:
    path = write(tmp_path, pcap_bytes(timed(ethernet_frames())))
    (fast, _), (ref, _) = read(path, fast=True), read(path, fast=False)
    for f, r in zip(fast, ref, strict=True):
        assert type(f) is Segment and type(f.options) is type(r.options)
        assert pickle.loads(pickle.dumps(f)) == r
        assert copy.deepcopy(f) == r and dataclasses.astuple(f) == dataclasses.astuple(r)
        assert dataclasses.replace(f, frame=0) == dataclasses.replace(r, frame=0)


def test_fast_path_reads_plain_files_directly_and_other_sources_through_the_stream(
    tmp_path: Path, fast_frames: list[int]
) -> None:
    data = _plain_file()
    path = write(tmp_path, data)
    gz = write(tmp_path, gzip.compress(data), "capture.pcap.gz")
    with CaptureReader(path) as reader:
        assert isinstance(reader._fast_file, io.BufferedReader)
        whole = list(reader)
    with CaptureReader(path, fast=False) as reader:
        assert reader._fast_file is None
    for source in (gz, io.BytesIO(data), io.BytesIO(gzip.compress(data))):
        with CaptureReader(source) as reader:
            assert isinstance(reader._fast_file, reader_module._StreamFile)
            assert list(reader) == whole
    assert sum(fast_frames) == 4 * len(whole) == 4 * 12


# --- random damage ---------------------------------------------------------------


def _mutations(rng: random.Random, frames: list[bytes]) -> Iterator[tuple[int, bytes]]:
    ts = T0
    for _ in range(1500):
        frame = bytearray(rng.choice(frames))
        for _ in range(rng.choice((0, 0, 1, 1, 2, 5))):
            if frame:
                # Mostly in the headers, where decisions are made.
                i = min(int(rng.expovariate(1 / 40)), len(frame) - 1)
                frame[i] = rng.randrange(256) if rng.random() < 0.7 else frame[i] ^ 0xFF
        if rng.random() < 0.1:
            frame = frame[: rng.randrange(len(frame) + 1)]
        ts += rng.choice((0, 1, 500, 999_999, 1_000_000, 3_000_000, -5_000))
        yield ts, bytes(frame)
        if rng.random() < 0.05:
            yield ts + rng.choice((0, 1_000_000, 1_000_001)), bytes(frame)


def random_sizes(rng: random.Random, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunk, span, walk piece and window sizes drawn at random."""
    monkeypatch.setattr(fastread, "FIRST_CHUNK", rng.choice((1, 7, 64)))
    monkeypatch.setattr(fastread, "CHUNK_FRAMES", rng.choice((13, 256, 1000)))
    monkeypatch.setattr(fastread, "_SPAN", rng.choice((32, 4096, 1 << 22)))
    monkeypatch.setattr(fastread, "_PIECE", rng.choice((1, 200, 1 << 16)))
    monkeypatch.setattr(fastread, "WINDOW", rng.choice((2048, 50_000, 1 << 24)))


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("seed", range(6))
def test_randomly_damaged_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, fast_frames: list[int], gz: bool
) -> None:
    rng = random.Random(seed)
    random_sizes(rng, monkeypatch)
    frames = ethernet_frames()
    records = list(_mutations(rng, frames))
    snaplen = rng.choice((0, 96, 1500))
    data = pcap_bytes(records, snaplen=snaplen, nano=bool(seed % 2), endian="<>"[seed % 3 == 0])
    path = write(tmp_path, _gzipped(data, gz))
    segments, stats = same(path)
    assert sum(fast_frames) == stats.frames == len(records)
    assert len(segments) > 100 and stats.duplicates
    same_sharded(path, 2 + seed % 3)
