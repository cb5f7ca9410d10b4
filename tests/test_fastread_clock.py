"""Sharded fast reading calls a tracker's ``tick`` directly (fastread ``_clock``).

``replay.py`` hands the reader ``tracker.tick`` for the other shards' frames;
the fast path recognizes that bound method and calls the tracker's method
itself (natively in a compiled build). The tracker must see its own segments
and the other shards' times in the same order, with the same values, as the
reference path gives them through the plain callable.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpflow_analyzer import fastread
from tcpflow_analyzer.reader import CaptureReader
from tcpflow_analyzer.segment import Segment
from tcpflow_analyzer.tracker import Tracker

from .test_fastread import ethernet_frames, pcap_bytes, timed, write


class _Recording(Tracker):
    """A tracker that notes every tick, as the reader's clock."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Segment | int] = []

    def tick(self, ts: int) -> None:
        self.seen.append(ts)
        super().tick(ts)


def test_the_clock_is_a_trackers_tick_only() -> None:
    tracker = Tracker()
    assert fastread._clock(tracker.tick) is tracker
    assert fastread._clock(None) is None
    assert fastread._clock([].append) is None
    assert fastread._clock(lambda ts: None) is None
    assert fastread._clock(Tracker().add) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [2, 3])
def test_ticks_in_place_both_ways(tmp_path: Path, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastread, "FIRST_CHUNK", 7)
    monkeypatch.setattr(fastread, "CHUNK_FRAMES", 40)
    path = write(tmp_path, pcap_bytes(timed(ethernet_frames() * 3)))
    mixed = 0
    for k in range(n):
        got = []
        for fast in (True, False):
            tracker = _Recording()
            with CaptureReader(path, fast=fast) as reader:
                for seg in reader.sharded(k, n, tracker.tick):
                    tracker.seen.append(seg)
            if fast:
                assert fastread._clock(tracker.tick) is tracker  # the direct calls were made
            got.append(tracker.seen)
        assert got[0] == got[1]
        assert repr(got[0]) == repr(got[1])
        mixed += {type(x) for x in got[0]} == {int, Segment}
    assert mixed >= 2
