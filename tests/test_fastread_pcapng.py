"""The fast path reads pcapng files as the reference path does.

A pcapng file goes to the fast path (fastread.py) from its first packet block
on when that block is an Enhanced Packet Block of an interface with a decimal
time resolution; the fast path reads that interface's EPBs and hands any other
block (another interface's, a simple or obsolete packet block, statistics,
name resolution, a new section, damage) and everything after it back to the
reader's block walk. Each test reads a file both ways and requires identical
segments and statistics (``test_fastread.same``), and counts the frames the
fast path fast_frames, so that no comparison passes by both sides being the
reference.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from scapy.layers.l2 import Ether

from tcpflow_analyzer import fastread
from tcpflow_analyzer.reader import MAX_CAPLEN, MAX_RECORD_WARNINGS, SNAPLEN_SLACK, CaptureReader

from .test_fastread import (
    CORPUS,
    MAC,
    ROOT,
    _captures,
    _gzipped,
    _mutations,
    ethernet_frames,
    fast_frames,
    pieces,
    random_sizes,
    same,
    same_sharded,
    timed,
    v4,
    write,
)
from .test_reader import T0, block, epb, idb, pb, shb, spb

__all__ = ["fast_frames"]  # the fixture, used by name

ETHERNET, RAW = 1, 101
MICRO = 6
NANO = 9
NRB = block("<", 4, struct.pack("<HH", 0, 0))  # name resolution, no records
ISB = block("<", 5, struct.pack("<III", 0, 0, 0) + struct.pack("<HH", 0, 0))  # statistics


def ng(
    frames: list[tuple[int, bytes]],
    *,
    e: str = "<",
    linktype: int = ETHERNET,
    tsresol: int = NANO,
    tsoffset: int | None = None,
    snaplen: int = 0,
) -> bytes:
    """A one-section, one-interface pcapng file of (ts_ns, frame) pairs."""
    offset_ns = (tsoffset or 0) * 10**9
    out = [shb(e), idb(e, linktype, snaplen=snaplen, tsresol=tsresol, tsoffset=tsoffset)]
    for ts_ns, data in frames:
        out.append(epb(e, 0, (ts_ns - offset_ns) * 10**tsresol // 10**9, data))
    return b"".join(out)


def eth(i: int, **tcp: object) -> bytes:
    return bytes(Ether(**MAC) / v4(sport=1000 + i, dport=80, **tcp))


def plain(n: int, start: int = 0) -> list[tuple[int, bytes]]:
    return [(T0 + (start + i) * 1000, eth(start + i)) for i in range(n)]


@pytest.fixture(params=[False, True], ids=["window", "small-window"])
def windows(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default window, and small ones that blocks straddle."""
    if request.param:
        monkeypatch.setattr(fastread, "WINDOW", 4000)
        monkeypatch.setattr(fastread, "FIRST_CHUNK", 3)
        monkeypatch.setattr(fastread, "CHUNK_FRAMES", 5)
        monkeypatch.setattr(fastread, "_SPAN", 64)
        monkeypatch.setattr(fastread, "_PIECE", 100)


# --- every capture, rewritten as pcapng -------------------------------------------


def _as_pcapng(data: bytes, e: str) -> bytes | None:
    """A classic pcap file's whole records as one pcapng interface (None: not classic)."""
    magic = data[:4]
    for endian in "<>":
        value = struct.unpack(endian + "I", magic)[0] if len(magic) == 4 else 0
        if value in (0xA1B2C3D4, 0xA1B23C4D, 0xA1B2CD34):
            break
    else:
        return None
    snaplen, linktype = struct.unpack_from(endian + "II", data, 16)
    nano = value == 0xA1B23C4D
    hlen = 24 if value == 0xA1B2CD34 else 16
    out = [shb(e), idb(e, linktype & 0xFFFF, snaplen=snaplen, tsresol=NANO if nano else MICRO)]
    pos = 24
    while pos + hlen <= len(data):
        sec, frac, caplen, _ = struct.unpack_from(endian + "IIII", data, pos)
        if caplen > MAX_CAPLEN or pos + hlen + caplen > len(data):
            break
        ticks = sec * (10**9 if nano else 10**6) + frac
        out.append(epb(e, 0, ticks, data[pos + hlen : pos + hlen + caplen]))
        pos += hlen + caplen
    return b"".join(out)


def _classic() -> list[Path]:
    out = []
    for path in _captures():
        with path.open("rb") as f:
            head = f.read(4)
        if head in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"M<\xb2\xa1", b"\xa1\xb2<M"):
            out.append(path)
    return out


@pytest.mark.parametrize("path", _classic(), ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_every_capture_as_pcapng_reads_the_same_both_ways(
    tmp_path: Path, path: Path, fast_frames: list[int]
) -> None:
    e = "<>"[len(path.name) % 2]  # both byte orders across the set
    data = _as_pcapng(path.read_bytes(), e)
    assert data is not None
    segments, stats = same(write(tmp_path, data, "capture.pcapng"))
    assert isinstance(segments, list)
    assert sum(fast_frames) == stats.frames  # the fast path read every frame


def test_the_rewritten_captures_include_the_conformance_set() -> None:
    assert any(CORPUS in p.parents for p in _classic())
    assert any((ROOT / "captures") in p.parents for p in _classic())


# --- files the fast path reads whole ------------------------------------------------


@pytest.mark.parametrize("e", ["<", ">"])
@pytest.mark.parametrize(("tsresol", "tsoffset"), [(MICRO, None), (NANO, None), (NANO, -3600)])
def test_every_kind_of_frame(
    tmp_path: Path,
    fast_frames: list[int],
    windows: None,
    e: str,
    tsresol: int,
    tsoffset: int | None,
) -> None:
    frames = ethernet_frames()
    data = ng(timed(frames, 1000), e=e, tsresol=tsresol, tsoffset=tsoffset)
    path = write(tmp_path, data, "capture.pcapng")
    segments, stats = same(path)
    assert sum(fast_frames) == stats.frames == len(frames)
    assert {s.checksum_ok for s in segments} == {True, False, None}
    same_sharded(path)


def test_raw_ip_link_type(tmp_path: Path, fast_frames: list[int]) -> None:
    frames = [(T0 + i, bytes(v4(sport=i, flags="A"))) for i in range(20)]
    _, stats = same(write(tmp_path, ng(frames, linktype=RAW), "capture.pcapng"))
    assert sum(fast_frames) == stats.frames == 20


def test_statistics_block_at_the_end(tmp_path: Path, fast_frames: list[int]) -> None:
    # dumpcap ends a file with an Interface Statistics Block.
    data = ng(plain(30)) + ISB
    _, stats = same(write(tmp_path, data, "capture.pcapng"))
    assert sum(fast_frames) == stats.frames == 30 and not stats.warnings


def test_oversized_frames_are_bad_records(
    tmp_path: Path, fast_frames: list[int], windows: None
) -> None:
    big = bytes(Ether(**MAC) / v4(sport=9, payload=b"z" * (200 + SNAPLEN_SLACK)))
    frames = [(T0 + i, big if i % 2 else eth(i)) for i in range(30)]
    _, stats = same(write(tmp_path, ng(frames, snaplen=200), "capture.pcapng"))
    assert sum(fast_frames) == stats.frames == 30
    assert stats.bad_records == 15 > MAX_RECORD_WARNINGS
    assert "frame 2 at offset" in stats.warnings[0]


def test_out_of_order_and_duplicates(tmp_path: Path, fast_frames: list[int], windows: None) -> None:
    frames = plain(20)
    frames[5] = (frames[5][0] - 10_000, frames[5][1])  # earlier than frame 5
    frames[9] = (frames[8][0] + 5, frames[8][1])  # a copy of frame 9, 5 ns later
    _, stats = same(write(tmp_path, ng(frames), "capture.pcapng"))
    assert sum(fast_frames) == stats.frames == 20
    assert stats.out_of_order == 1 and stats.duplicates == 1


def test_only_the_header_blocks(tmp_path: Path, fast_frames: list[int]) -> None:
    _, stats = same(write(tmp_path, ng([]), "capture.pcapng"))
    assert stats.frames == 0 and not fast_frames


# --- several interfaces ------------------------------------------------------------------


def _merged(n: int, *, second: bytes, e: str = "<") -> bytes:
    """Two interfaces' frames interleaved, as mergecap writes captures of both ends.

    Each interface's clock runs a little behind the other's now and then (a frame of
    interface 1 earlier than interface 0's last: not out of order), and once behind
    its own last frame (out of order)."""
    out = [shb(e), idb(e, ETHERNET, snaplen=65535, tsresol=MICRO), second]
    for i in range(n):
        ticks = T0 // 1000 + i * 10 - (i % 2) * 15
        if i == n // 2:
            ticks -= 100  # earlier than its own interface's last frame
        out.append(epb(e, i % 2, ticks, eth(i)))
    return b"".join(out)


@pytest.mark.parametrize("e", ["<", ">"])
def test_interfaces_alike_are_read_together(
    tmp_path: Path, fast_frames: list[int], windows: None, e: str
) -> None:
    data = _merged(40, second=idb(e, ETHERNET, snaplen=65535, tsresol=MICRO), e=e)
    path = write(tmp_path, data, "capture.pcapng")
    _, stats = same(path)
    assert sum(fast_frames) == stats.frames == 40
    assert stats.out_of_order == 1  # the one frame behind its own interface
    same_sharded(path)


@pytest.mark.parametrize(
    "second",
    [
        idb("<", ETHERNET, snaplen=1500, tsresol=MICRO),  # another snap length
        idb("<", ETHERNET, snaplen=65535, tsresol=NANO),  # another resolution
        idb("<", ETHERNET, snaplen=65535, tsresol=MICRO, tsoffset=1),  # another offset
    ],
    ids=["snaplen", "tsresol", "tsoffset"],
)
def test_interfaces_unlike_the_first_are_handed_back(
    tmp_path: Path, fast_frames: list[int], second: bytes
) -> None:
    _, stats = same(write(tmp_path, _merged(40, second=second), "capture.pcapng"))
    assert sum(fast_frames) == 1 < stats.frames == 40  # up to the other interface's first


def test_interfaces_alike_for_a_link_type_the_decoder_does_not_know(
    tmp_path: Path, fast_frames: list[int]
) -> None:
    # Its frames are counted as unsupported per interface: one at a time, by the walk.
    user0 = 147
    data = b"".join(
        [shb(), idb("<", user0), idb("<", user0)]
        + [epb("<", i % 2, T0 // 1000 + i, eth(i)) for i in range(10)]
    )
    _, stats = same(write(tmp_path, data, "capture.pcapng"))
    assert sum(fast_frames) == 1 and stats.skipped["unsupported_linktype"] == 10
    assert len([w for w in stats.warnings if "not supported" in w]) == 2


# --- blocks handed back to the block walk ---------------------------------------------


def _later(n: int = 10, start: int = 10) -> bytes:
    return b"".join(epb("<", 0, T0 + i * 1000, eth(i)) for i in range(start, start + n))


def _resumed() -> dict[str, bytes]:
    """Files with blocks other than packets among the packets: the fast path reads
    every packet, the walk only those blocks."""
    first = ng(plain(10))
    big_endian = shb(">") + idb(">", ETHERNET, tsresol=NANO) + epb(">", 0, T0 + 10**6, eth(99))
    dup = eth(9)
    return {
        "name resolution block": first + NRB + _later(),
        "statistics block": first + ISB + _later(),
        "custom block": first + block("<", 0x00000BAD, b"custom") + _later(),
        "several blocks in a row": first + NRB + ISB + NRB + _later(),
        "new section": first + big_endian,
        "new interface alike": (
            first
            + idb("<", ETHERNET, tsresol=NANO)
            + b"".join(epb("<", i % 2, T0 + i * 1000, eth(i)) for i in range(10, 20))
        ),
        # Each the first packet after the walk: a copy of the last one before it
        # (within 1 ms), then one earlier than the last before it.
        "duplicate and earlier across the walk": (
            first + NRB + epb("<", 0, T0 + 9000, dup) + NRB + epb("<", 0, T0, eth(54))
        ),
        "again and again": first + NRB + _later(3) + ISB + _later(3, 13) + NRB + NRB + _later(),
    }


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("case", sorted(_resumed()))
def test_the_fast_path_goes_on_after_other_blocks(
    tmp_path: Path, fast_frames: list[int], windows: None, case: str, gz: bool
) -> None:
    """(gzip: read through the reader's stream, tests/test_fastread_streams.py.)"""
    segments, stats = same(write(tmp_path, _gzipped(_resumed()[case], gz), "capture.pcapng"))
    assert sum(fast_frames) == stats.frames == len(segments)
    if case.startswith("duplicate"):
        assert stats.duplicates == 1 and stats.out_of_order == 1


def _handed_back() -> dict[str, tuple[bytes, int]]:
    """Files whose later packets the fast path leaves to the walk (packets it does not
    read, with no other block after them): (data, frames the fast path reads)."""
    first = ng(plain(10))
    later = _later()
    raw = bytes(v4(sport=7, flags="A"))
    return {
        # After the interface block, the fast path reads the raw interface's packet,
        # and leaves the rest to the walk at the next Ethernet one.
        "interface of another link type": (
            first + idb("<", RAW, tsresol=NANO) + epb("<", 1, T0 + 1, raw) + later,
            11,
        ),
        "simple packet block": (first + spb("<", eth(50)) + later, 10),
        "obsolete packet block": (first + pb("<", 0, T0, eth(51)) + later, 10),
        "unknown interface": (first + epb("<", 7, T0, eth(52)) + later, 10),
        "timestamp beyond the range": (first + epb("<", 0, 2**64 - 1, eth(53)) + later, 10),
    }


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("case", sorted(_handed_back()))
def test_blocks_handed_back_to_the_walk(
    tmp_path: Path, fast_frames: list[int], windows: None, case: str, gz: bool
) -> None:
    data, fast = _handed_back()[case]
    segments, stats = same(write(tmp_path, _gzipped(data, gz), "capture.pcapng"))
    assert sum(fast_frames) == fast < stats.frames
    assert len(segments) >= fast


def test_iteration_continues_where_it_stopped(tmp_path: Path, windows: None) -> None:
    data = ng(plain(8)) + NRB + _later(8, 8) + ISB + spb("<", eth(30)) + NRB + _later(7, 16)
    path = write(tmp_path, data, "capture.pcapng")
    sizes = (1, 4, 0, 7, 2, 5)
    assert pieces(path, True, sizes, 24) == pieces(path, False, sizes, 24)


def test_the_walk_gets_the_last_time_for_a_simple_packet_block(
    tmp_path: Path, fast_frames: list[int]
) -> None:
    data = ng(plain(10)) + spb("<", eth(60))
    segments, _ = same(write(tmp_path, data, "capture.pcapng"))
    assert sum(fast_frames) == 10
    assert segments[-1].ts_ns == segments[-2].ts_ns == T0 + 9000


def test_no_fast_path_for_a_binary_time_resolution(tmp_path: Path, fast_frames: list[int]) -> None:
    data = shb() + idb("<", ETHERNET, tsresol=0x80 | 20) + epb("<", 0, 2**40, eth(1))
    segments, _ = same(write(tmp_path, data, "capture.pcapng"))
    assert len(segments) == 1 and not fast_frames


def test_no_fast_path_when_a_simple_packet_block_comes_first(
    tmp_path: Path, fast_frames: list[int]
) -> None:
    data = shb() + idb("<", ETHERNET) + spb("<", eth(1)) + epb("<", 0, 10**15, eth(2))
    segments, _ = same(write(tmp_path, data, "capture.pcapng"))
    assert len(segments) == 2 and not fast_frames


# --- damage -------------------------------------------------------------------------


def _blocks(data: bytes) -> list[int]:
    """Offsets of the (little-endian) blocks."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        out.append(pos)
        pos += struct.unpack_from("<I", data, pos + 4)[0]
    return out


@pytest.mark.parametrize("keep", [1, 8, 20, 28, 40, -4, -1])
def test_file_ending_inside_a_block(tmp_path: Path, fast_frames: list[int], keep: int) -> None:
    data = ng(plain(12))
    last = _blocks(data)[-1]
    cut = data[: last + keep] if keep > 0 else data[:keep]
    segments, stats = same(write(tmp_path, cut, "capture.pcapng"))
    assert stats.truncated and len(segments) == 11 == sum(fast_frames)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (4, 30),  # block length not a multiple of 4
        (4, 8),  # block length below the smallest block
        (4, 2**31),  # block length past the end of the file
        (20, MAX_CAPLEN + 1),  # caplen above the maximum
        (20, 5000),  # caplen beyond the block (inconsistent block)
        (-4, 12345),  # trailing length copy differs
    ],
)
@pytest.mark.parametrize("where", [2, 7])
def test_damaged_block(
    tmp_path: Path, fast_frames: list[int], windows: None, field: int, value: int, where: int
) -> None:
    data = bytearray(ng(plain(12)))
    start = _blocks(bytes(data))[where]  # the SHB and IDB come first
    blen = struct.unpack_from("<I", data, start + 4)[0]
    at = start + blen + field if field < 0 else start + field
    data[at : at + 4] = struct.pack("<I", value)
    _, stats = same(write(tmp_path, bytes(data), "capture.pcapng"))
    assert sum(fast_frames) == where - 2  # the frames before it
    assert stats.warnings


@pytest.mark.parametrize("seed", range(4))
def test_randomly_damaged_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, fast_frames: list[int]
) -> None:
    rng = random.Random(seed)
    random_sizes(rng, monkeypatch)
    records = [(ts, f) for ts, f in _mutations(rng, ethernet_frames()) if ts > 0]
    snaplen = rng.choice((0, 96, 1500))
    e = "<>"[seed % 2]
    path = write(tmp_path, ng(records, e=e, snaplen=snaplen), "capture.pcapng")
    segments, stats = same(path)
    assert sum(fast_frames) == stats.frames == len(records)
    assert len(segments) > 100 and stats.duplicates
    same_sharded(path, 2 + seed % 3)


def test_the_reader_hands_pcapng_files_to_the_fast_path(tmp_path: Path) -> None:
    path = write(tmp_path, ng(plain(3)), "capture.pcapng")
    with CaptureReader(path) as reader:
        assert reader._fast_file is not None
    with CaptureReader(path, fast=False) as reader:
        assert reader._fast_file is None
