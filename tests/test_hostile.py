"""Hostile and broken captures, crafted at test time: clear errors, partial results, bounds.

Every problem is either a warning on the result (reading goes on, or stops at
the damage keeping what came before) or a ``CaptureError`` naming the file,
what is wrong and the byte offset. Each case is checked through
``tcpflow_analyzer.analyze()`` and through the command line in a subprocess
(exit 3 for unreadable, 0 with warnings on stderr for damaged but readable,
never a traceback). docs/robustness.md describes the model these tests pin.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
from scapy.layers.l2 import Dot1Q, Ether

import tcpflow_analyzer
from tcpflow_analyzer.decode import MAX_IPV6_EXT_HEADERS, MAX_LINK_HEADERS
from tcpflow_analyzer.reader import MAX_CAPLEN, CaptureError, CaptureReader, ReadStats

from .test_reader import T0, block, epb, eth_frame, idb, pcap_bytes, shb

ROOT = Path(__file__).resolve().parents[1]
CLIENT_CLOSE = ROOT / "captures" / "client_close.pcap"
ETHERNET = 1
USER0 = 147  # LINKTYPE_USER0: private use, never decodable


def pcap_records(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, record bytes incl. its 16-byte header) of a little-endian pcap."""
    out, pos = [], 24
    while pos < len(data):
        caplen = struct.unpack_from("<I", data, pos + 8)[0]
        out.append((pos, data[pos : pos + 16 + caplen]))
        pos += 16 + caplen
    return out


def ng(*blocks: bytes) -> bytes:
    """A little-endian pcapng: section header, one Ethernet interface, the blocks."""
    return shb() + idb("<", ETHERNET) + b"".join(blocks)


def ng_prefix_len() -> int:
    return len(ng())


def us(n: int) -> int:
    """EPB ticks (microseconds) n microseconds after T0."""
    return T0 // 1000 + n


# --- the crafted files --------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One crafted file and what must happen to it."""

    data: bytes
    error: str | None = None  # CaptureError message after "<path>: " (exact)
    warns: tuple[str, ...] = ()  # substrings, one per expected warning, in order
    frames: int = 0
    segments: int = 0
    skipped: tuple[tuple[str, int], ...] = ()


def _client_close() -> bytes:
    return CLIENT_CLOSE.read_bytes()


def _truncated_mid_record() -> Case:
    data = _client_close()
    recs = pcap_records(data)
    offset, last = recs[-1]
    return Case(
        data[: offset + len(last) // 2],
        warns=(f"file ends inside record {len(recs)} ", f"at offset {offset}; reading stopped"),
        frames=len(recs) - 1,
        segments=len(recs) - 1 - 2,  # two ARP frames in this capture
        skipped=(("not_ip", 2),),
    )


def _caplen_2_31() -> Case:
    data = bytearray(_client_close())
    offset, _ = pcap_records(bytes(data))[3]
    data[offset + 8 : offset + 12] = struct.pack("<I", 2**31)
    return Case(
        bytes(data),
        warns=(
            f"record 4 claims {2**31} captured bytes, more than the {MAX_CAPLEN}-byte "
            f"maximum (corrupt record header) at offset {offset}; reading stopped",
        ),
        frames=3,
        segments=1,
        skipped=(("not_ip", 2),),
    )


def _beyond_snaplen() -> Case:
    big = eth_frame(2, payload=b"b" * 300)
    data = pcap_bytes([(T0, eth_frame(1)), (T0 + 1, big), (T0 + 2, eth_frame(3))], snaplen=96)
    return Case(
        data,
        warns=(f"record 2 at offset 94 has {len(big)} captured bytes, more than the snap length",),
        frames=3,
        segments=2,
        skipped=(("bad_record", 1),),
    )


def _unknown_block() -> Case:
    odd = block("<", 0x0BADBEEF, b"whatever this is, it is skipped unread")
    data = ng(epb("<", 0, us(0), eth_frame(1)), odd, epb("<", 0, us(1), eth_frame(2)))
    return Case(data, frames=2, segments=2)


def _block_too_big_at_end() -> Case:
    b2 = bytearray(epb("<", 0, us(1), eth_frame(2)))
    b2[4:8] = struct.pack("<I", len(b2) + 400)
    b1 = epb("<", 0, us(0), eth_frame(1))
    return Case(
        ng(b1, bytes(b2)),
        warns=(
            f"file ends inside a pcapng block of type 0x00000006 (record needs "
            f"{len(b2) + 400} bytes, {len(b2)} present) at offset "
            f"{ng_prefix_len() + len(b1)}; reading stopped",
        ),
        frames=1,
        segments=1,
    )


def _block_too_big_in_the_middle() -> Case:
    b1, b3 = epb("<", 0, us(0), eth_frame(1)), epb("<", 0, us(2), eth_frame(3))
    b2 = bytearray(epb("<", 0, us(1), eth_frame(2)))
    b2[4:8] = struct.pack("<I", len(b2) + len(b3))  # swallows the next block
    return Case(
        ng(b1, bytes(b2), b3),
        warns=(
            f"pcapng block length {len(b2) + len(b3)} does not match its trailing copy "
            f"{len(b3)} at offset {ng_prefix_len() + len(b1)}; reading stopped",
        ),
        frames=1,
        segments=1,
    )


def _block_length_not_multiple_of_4() -> Case:
    b1 = epb("<", 0, us(0), eth_frame(1))
    b2 = bytearray(epb("<", 0, us(1), eth_frame(2)))
    b2[4:8] = struct.pack("<I", len(b2) - 1)
    return Case(
        ng(b1, bytes(b2)),
        warns=(
            f"pcapng block of type 0x00000006 has bad length {len(b2) - 1} at offset "
            f"{ng_prefix_len() + len(b1)}; reading stopped",
        ),
        frames=1,
        segments=1,
    )


def _trailing_length_mismatch() -> Case:
    b1 = epb("<", 0, us(0), eth_frame(1))
    b2 = bytearray(epb("<", 0, us(1), eth_frame(2)))
    b2[-4:] = struct.pack("<I", len(b2) + 4)
    return Case(
        ng(b1, bytes(b2), b1),
        warns=(
            f"pcapng block length {len(b2)} does not match its trailing copy {len(b2) + 4} "
            f"at offset {ng_prefix_len() + len(b1)}; reading stopped",
        ),
        frames=1,
        segments=1,
    )


def _unknown_linktype_pcapng() -> Case:
    head = shb() + idb("<", ETHERNET) + idb("<", USER0) + idb("<", 148)  # 148 never used
    user_idb_at = len(shb() + idb("<", ETHERNET))
    frames = [epb("<", i % 2, us(i), eth_frame(i)) for i in range(5)]
    return Case(
        head + b"".join(frames),
        warns=(
            f"link type {USER0} of interface 1 (described at offset {user_idb_at}) is not "
            "supported: 2 frame(s) skipped as unsupported_linktype",
        ),
        frames=5,
        segments=3,
        skipped=(("unsupported_linktype", 2),),
    )


def _unknown_linktype_pcap() -> Case:
    return Case(
        pcap_bytes([(T0 + i, eth_frame(i)) for i in range(3)], linktype=USER0),
        warns=(f"link type {USER0} of the file header is not supported: 3 frame(s) skipped",),
        frames=3,
        skipped=(("unsupported_linktype", 3),),
    )


def _ipv6_extension_chain(n: int) -> bytes:
    pkt = IPv6(src="2001:db8::1", dst="2001:db8::2")
    for _ in range(n):
        pkt = pkt / IPv6ExtHdrDestOpt()
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / pkt / TCP())


def _ipv6_loop() -> Case:
    # 100 destination-options headers, each naming the next as another one:
    # the walk is cut at MAX_IPV6_EXT_HEADERS, not after 100 (or never).
    data = pcap_bytes([(T0, _ipv6_extension_chain(100)), (T0 + 1, eth_frame(1))])
    return Case(data, frames=2, segments=1, skipped=(("too_many_headers", 1),))


def _vlan_64() -> Case:
    pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    for i in range(64):
        pkt = pkt / Dot1Q(vlan=i + 1)
    frame = bytes(pkt / IP(src="192.0.2.1", dst="192.0.2.2") / TCP())
    data = pcap_bytes([(T0, frame), (T0 + 1, eth_frame(1))])
    return Case(data, frames=2, segments=1, skipped=(("too_many_headers", 1),))


def _out_of_order() -> Case:
    times = [5, 1, 2, 9, 3]  # frames 2 and 5 go back in time
    data = pcap_bytes([(T0 + t * 1000, eth_frame(i)) for i, t in enumerate(times)])
    return Case(
        data,
        warns=(
            "2 frame(s) timed earlier than the frame before them on the same interface "
            "(first: frame 2); analyzed in capture order",
        ),
        frames=5,
        segments=5,
    )


def _timestamp_beyond_int64() -> Case:
    huge = idb("<", ETHERNET, tsresol=0)  # seconds: 2**63 ticks overflow int64 ns
    data = shb() + huge + epb("<", 0, 2**63, eth_frame(1)) + epb("<", 0, 5, eth_frame(2))
    return Case(
        data,
        warns=("frame 1 at offset", "beyond the 64-bit range; skipped"),
        frames=2,
        segments=1,
        skipped=(("bad_record", 1),),
    )


CASES: dict[str, Callable[[], Case]] = {
    "zero_length": lambda: Case(b"", error="empty file at offset 0"),
    "text_file": lambda: Case(
        b"This is not a capture.\nJust text.\n" * 4,
        error="not a pcap or pcapng file (first bytes 0x54686973) at offset 0",
    ),
    "header_only": lambda: Case(pcap_bytes([])),
    "truncated_mid_record": _truncated_mid_record,
    "caplen_2_31": _caplen_2_31,
    "beyond_snaplen": _beyond_snaplen,
    "pcapng_unknown_block": _unknown_block,
    "pcapng_length_too_big_at_end": _block_too_big_at_end,
    "pcapng_length_too_big_in_middle": _block_too_big_in_the_middle,
    "pcapng_length_not_multiple_of_4": _block_length_not_multiple_of_4,
    "pcapng_trailing_length_mismatch": _trailing_length_mismatch,
    "unknown_linktype_pcapng": _unknown_linktype_pcapng,
    "unknown_linktype_pcap": _unknown_linktype_pcap,
    "ipv6_extension_loop_100": _ipv6_loop,
    "vlan_64_tags": _vlan_64,
    "out_of_order_timestamps": _out_of_order,
    "timestamp_beyond_int64": _timestamp_beyond_int64,
}


def _matches_in_order(texts: list[str], parts: tuple[str, ...]) -> bool:
    """Each of ``parts`` occurs in ``texts``, in this order."""
    joined = "\n".join(texts)
    pos = 0
    for part in parts:
        pos = joined.find(part, pos)
        if pos < 0:
            return False
        pos += len(part)
    return True


@pytest.fixture
def crafted(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, Case]:
    case = CASES[request.param]()
    path = tmp_path / f"{request.param}.pcap"
    path.write_bytes(case.data)
    return path, case


@pytest.mark.parametrize("crafted", sorted(CASES), indirect=True)
def test_crafted_file_through_analyze(crafted: tuple[Path, Case]) -> None:
    path, case = crafted
    if case.error is not None:
        with pytest.raises(CaptureError) as err:
            tcpflow_analyzer.analyze(path)
        assert str(err.value) == f"{path}: {case.error}"
        return
    result = tcpflow_analyzer.analyze(path)
    assert (result.frames, result.segments) == (case.frames, case.segments)
    assert result.skipped == dict(case.skipped)
    # One warning per case at most (``warns`` holds parts of that one message),
    # and every warning names the file.
    assert len(result.warnings) == (1 if case.warns else 0), result.warnings
    assert all(w.startswith(f"{path}: ") for w in result.warnings)
    assert _matches_in_order(result.warnings, case.warns)


# --- the command line -----------------------------------------------------------


def _run_cli(paths: list[Path]) -> dict[Path, subprocess.CompletedProcess[str]]:
    """``python -m tcpflow_analyzer analyze PATH`` for every path, concurrently."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = {
        p: subprocess.Popen(
            [sys.executable, "-m", "tcpflow_analyzer", "analyze", str(p)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for p in paths
    }
    done = {}
    for p, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        done[p] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return done


def test_crafted_files_through_the_cli(tmp_path: Path) -> None:
    cases = {name: make() for name, make in CASES.items()}
    paths = {}
    for name, case in cases.items():
        paths[name] = tmp_path / f"{name}.pcap"
        paths[name].write_bytes(case.data)
    paths["directory"] = tmp_path
    results = _run_cli(list(paths.values()))
    for name, path in paths.items():
        run = results[path]
        assert "Traceback" not in run.stdout + run.stderr, name
        case = cases.get(name)
        if case is None or case.error is not None:
            assert run.returncode == 3, (name, run.stderr)
            assert run.stderr.startswith(f"tcpflow-analyzer: error: {path}: "), name
            if case is not None:
                assert case.error in run.stderr, name
            continue
        assert run.returncode == 0, (name, run.stderr)
        warnings = [line for line in run.stderr.splitlines() if line]
        assert all(w.startswith("tcpflow-analyzer: warning: ") for w in warnings), name
        assert _matches_in_order(warnings, case.warns), (name, warnings)
        assert bool(warnings) == bool(case.warns), name
        assert "connections:" in run.stdout, name


# --- beyond the table -------------------------------------------------------------


def test_truncated_capture_keeps_every_connection_before_the_cut(tmp_path: Path) -> None:
    data = _client_close()
    offset, _ = pcap_records(data)[-1]
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: offset + 5])
    clean = tmp_path / "clean.pcap"
    clean.write_bytes(data[:offset])
    got, want = tcpflow_analyzer.analyze(cut), tcpflow_analyzer.analyze(clean)
    assert got.truncated and not want.truncated
    assert got.connections.equals(want.connections)
    assert got.transitions.equals(want.transitions)
    assert got.anomalies.equals(want.anomalies)


def _peak_bytes_while_reading(data: bytes, tmp_path: Path) -> tuple[int, ReadStats]:
    path = tmp_path / "peak.pcap"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with CaptureReader(path) as reader:
            for _ in reader:
                pass
        return tracemalloc.get_traced_memory()[1], reader.stats
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("caplen", [2**31, 2**32 - 1, MAX_CAPLEN + 1])
def test_absurd_caplen_is_never_allocated(tmp_path: Path, caplen: int) -> None:
    data = bytearray(pcap_bytes([(T0, eth_frame(1)), (T0, eth_frame(2))]))
    data[24 + 8 : 24 + 12] = struct.pack("<I", caplen)
    peak, stats = _peak_bytes_while_reading(bytes(data), tmp_path)
    assert stats.truncated and stats.frames == 0
    assert peak < 4 << 20  # the reader's 1 MiB read chunk, not the claimed length


def test_pcapng_block_claiming_4_gib_is_skipped_without_holding_it(tmp_path: Path) -> None:
    odd = bytearray(block("<", 0x0BADBEEF, bytes(64)))
    odd[4:8] = struct.pack("<I", 0xFFFFFFFC)
    peak, stats = _peak_bytes_while_reading(ng(bytes(odd)) + bytes(3 << 20), tmp_path)
    assert stats.truncated
    assert peak < 4 << 20


def test_deep_stacks_are_bounded_at_the_documented_limits() -> None:
    assert MAX_LINK_HEADERS < 64 and MAX_IPV6_EXT_HEADERS < 100
    at_limit = pcap_bytes([(T0, _ipv6_extension_chain(MAX_IPV6_EXT_HEADERS))])
    with CaptureReader(io.BytesIO(at_limit)) as reader:
        assert len(list(reader)) == 1


def test_duplicate_frames_are_counted_not_dropped() -> None:
    # The same frame on two interfaces 200 us apart, and once more 5 ms later
    # (not a duplicate: outside the 1 ms window).
    f1, f2 = eth_frame(1), eth_frame(2)
    data = shb() + idb("<", ETHERNET) + idb("<", ETHERNET)
    data += epb("<", 0, us(0), f1) + epb("<", 1, us(200), f1) + epb("<", 0, us(300), f2)
    data += epb("<", 1, us(5300), f2)
    with CaptureReader(io.BytesIO(data)) as reader:
        segments = list(reader)
    assert len(segments) == 4
    assert reader.stats.duplicates == 1
    assert reader.stats.out_of_order == 0
    assert reader.stats.warnings == []


def test_out_of_order_compares_frames_of_the_same_interface_only() -> None:
    # dumpcap interleaves two interfaces in batches: not damage.
    data = shb() + idb("<", ETHERNET) + idb("<", ETHERNET)
    data += epb("<", 0, us(10), eth_frame(1)) + epb("<", 0, us(20), eth_frame(2))
    data += epb("<", 1, us(5), eth_frame(3)) + epb("<", 1, us(15), eth_frame(4))
    data += epb("<", 0, us(19), eth_frame(5))  # earlier than interface 0's last frame
    with CaptureReader(io.BytesIO(data)) as reader:
        assert [s.frame for s in reader] == [1, 2, 3, 4, 5]
    assert reader.stats.out_of_order == 1
    assert len(reader.stats.warnings) == 1
    assert "1 frame(s) timed earlier" in reader.stats.warnings[0]
    assert "(first: frame 5)" in reader.stats.warnings[0]


# --- gzip -------------------------------------------------------------------------


class _OneByteAtATime(io.RawIOBase):
    """A pipe that hands out one byte per read."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(1)


def test_gzip_members_split_across_reads_are_joined() -> None:
    # A member boundary can fall anywhere in a read, even between the two
    # magic bytes of the next member.
    data = pcap_bytes([(T0 + i, eth_frame(i)) for i in range(3)])
    gz = gzip.compress(data[:70]) + gzip.compress(data[70:])
    with CaptureReader(_OneByteAtATime(gz)) as reader:  # type: ignore[arg-type]
        assert [s.frame for s in reader] == [1, 2, 3]
    assert reader.stats.warnings == [] and not reader.stats.truncated


def test_gzip_bomb_is_inflated_in_bounded_steps(tmp_path: Path) -> None:
    # 64 MiB of zeros inside one skipped pcapng block compress to ~64 KiB.
    odd = block("<", 0x0BADBEEF, b"")
    inner = bytes(64 << 20)
    big = struct.pack("<II", 0x0BADBEEF, 12 + len(inner)) + inner
    big += struct.pack("<I", 12 + len(inner))
    bomb = gzip.compress(ng(odd, big, epb("<", 0, us(0), eth_frame(1))), compresslevel=9)
    assert len(bomb) < 1 << 20
    peak, stats = _peak_bytes_while_reading(bomb, tmp_path)
    assert stats.frames == 1 and not stats.warnings
    assert peak < 8 << 20
