"""``CaptureReader(reuse=True)``: one Segment object handed out again and again, each time
with the values a fresh reader gives that segment (replay.py reads this way)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

from tcpflow_analyzer.reader import CaptureReader
from tcpflow_analyzer.segment import Segment
from tcpflow_analyzer.shard import shard_of

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = [
    ROOT / "captures" / "crawler" / "crawler.pcap",
    ROOT / "captures" / "vlan_client_close.pcap",
    ROOT / "captures" / "ipv6_client_close.pcap",
]


def _values(seg: Segment) -> Segment:
    """A copy of what ``seg`` holds now (its options copied too: they are reused as well)."""
    return dataclasses.replace(seg, options=copy.copy(seg.options))


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_reused_segment_holds_each_segments_values(path: Path) -> None:
    with CaptureReader(path) as reader:
        fresh = list(reader)
    seen: list[Segment] = []
    same = 0
    first: Segment | None = None
    with CaptureReader(path, reuse=True) as reader:
        for seg in reader:
            seen.append(_values(seg))
            first = first or seg
            same += seg is first
    assert seen == fresh
    assert repr(seen) == repr(fresh)
    # Not vacuous: the plain frames' segments were one object.
    assert len(fresh) >= 10 and same >= 0.8 * len(fresh)


def test_a_fresh_reader_hands_out_new_segments() -> None:
    with CaptureReader(CAPTURES[0]) as reader:
        segments = list(reader)
    assert len({id(s) for s in segments}) == len(segments)
    assert len({id(s.options) for s in segments if s.options is not None}) == sum(
        s.options is not None for s in segments
    )


def test_sharded_reuse_gives_the_same_segments_and_times() -> None:
    path = CAPTURES[0]
    with CaptureReader(path) as reader:
        fresh = list(reader)
    for k in range(2):
        seen: list[Segment | int] = []
        with CaptureReader(path, reuse=True) as reader:
            for seg in reader.sharded(k, 2, seen.append):
                seen.append(_values(seg))
        assert seen == [s if shard_of(s, 2) == k else s.ts_ns for s in fresh]
