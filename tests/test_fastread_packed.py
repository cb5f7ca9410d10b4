"""The fast path's packed columns (fastread step 7) at the limits of every packed field.

Ports, flags, window, checksum verdict and ``caplen_short`` share one column,
``seq`` and ``payload_len`` another, ``ack`` and ``ip_len`` a third, ``ts_val``
and the count of other shards' frames before a fourth. Each field is taken here
to its largest value (the longest IPv4 and IPv6 datagrams, all-ones sequence
numbers and timestamps, long runs of other shards' frames) and the fast path
must still give what the reference path gives, whole and sharded.
"""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from tcpflow_analyzer.reader import CaptureReader
from tcpflow_analyzer.shard import shard_of

from .test_fastread import MAC, fast_frames, pcap_bytes, same, same_sharded, timed, write

__all__ = ["fast_frames"]  # the fixture, used by name

ONES = 2**32 - 1
STAMP = [("NOP", None), ("NOP", None), ("Timestamp", (ONES, ONES))]


def _frames() -> list[bytes]:
    big4 = IP(src="192.0.2.1", dst="198.51.100.7") / TCP(
        sport=65535, dport=65535, seq=ONES, ack=ONES, flags=0xFF, window=65535, options=STAMP
    )
    big4 = big4 / (b"\xff" * (65535 - len(big4)))
    big6 = IPv6(src="2001:db8::1", dst="2001:db8:ff::2") / TCP(
        sport=65534, dport=1, seq=ONES - 1, ack=0, flags="PA", window=1, options=STAMP
    )
    big6 = big6 / (b"\xfe" * (65535 + 40 - len(big6)))
    frames = []
    for pkt in (big4, big6):
        whole = bytes(Ether(**MAC) / pkt)
        bad = bytearray(whole)
        bad[-1] ^= 0x55  # wrong checksum
        frames += [whole, bytes(bad), whole[:200], whole[:60], whole[: len(whole) - 1]]
    return frames


def test_largest_fields(tmp_path: Path, fast_frames: list[int]) -> None:
    frames = _frames()
    path = write(tmp_path, pcap_bytes(timed(frames), snaplen=262144))
    segments, stats = same(path)
    assert sum(fast_frames) == stats.frames == len(frames)
    # Not vacuous: every field at its largest, every verdict, cut and whole.
    assert max(s.ip_len for s in segments) == 65575
    assert max(s.payload_len for s in segments) == 65535 + 40 - 40 - 32
    assert {s.seq for s in segments} == {ONES, ONES - 1}
    assert {s.checksum_ok for s in segments} == {True, False, None}
    assert {s.caplen_short for s in segments} == {True, False}
    assert {s.flags for s in segments} == {0xFF, 0x18}
    assert {s.options.ts_val for s in segments if s.options} == {ONES}
    same_sharded(path, 2)


def test_long_runs_of_other_shards_frames(tmp_path: Path, fast_frames: list[int]) -> None:
    """Hundreds of other shards' frames before one of the shard's own (the packed count)."""
    flows = [
        Ether(**MAC) / IP(src="192.0.2.1", dst="198.51.100.7") / TCP(sport=p, dport=80, flags="A")
        for p in range(1000, 1100)
    ]
    with CaptureReader(write(tmp_path, pcap_bytes(timed([bytes(f) for f in flows])))) as reader:
        shard = {s.sport: shard_of(s, 2) for s in reader}
    a = next(f for f in flows if shard[f[TCP].sport] == 0)
    b = next(f for f in flows if shard[f[TCP].sport] == 1)
    frames = [bytes(a)] + [bytes(b)] * 700 + [bytes(a)] * 3 + [bytes(b)] * 300 + [bytes(a)]
    path = write(tmp_path, pcap_bytes(timed(frames, step_ns=10**9)), "runs.pcap")
    fast_frames.clear()
    same(path)
    assert sum(fast_frames) == len(frames)
    same_sharded(path, 2)
