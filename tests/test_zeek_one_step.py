"""``ZeekConn.add_unless_new`` against its two steps.

The tracker feeds Zeek's view with one call per packet, ``add_unless_new``,
which looks at the timers' due times once. It must do exactly what
``zeek_starts_new_conn`` followed by ``add`` (or by a new connection) does:
every capture under ``captures/`` and the shared corpus is split into 4-tuples
and replayed both ways in lockstep, with the shortcuts of ``zeek.FAST_PATH``
on and off; the new-connection decision and the complete internal state must
agree after every packet.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tcpflow_analyzer.zeek as zeek
from tcpflow_analyzer.segment import Segment
from tcpflow_analyzer.zeek import ZeekConn, zeek_starts_new_conn

from .test_zeek_fast import ALL_CAPTURES, _flows, _id, _segments, _state


def _two_ways(packets: list[tuple[Segment, bool]]) -> tuple[int, list[str]]:
    """Replay one 4-tuple both ways; how many new connections, and the differences."""
    steps: ZeekConn | None = None  # zeek_starts_new_conn, then add
    one: ZeekConn | None = None  # add_unless_new
    first_is_a = True
    new = 0
    for seg, from_a in packets:
        if steps is None or one is None:
            steps, one = ZeekConn(), ZeekConn()
            first_is_a = from_a
            steps.add(seg, True)
            one.add(seg, True)
            continue
        from_first = from_a == first_is_a
        starts_new = zeek_starts_new_conn(steps, seg, from_first)
        added = one.add_unless_new(seg, from_first)
        if added == starts_new:
            return new, [f"frame {seg.frame}: added {added}, new connection {starts_new}"]
        if starts_new:
            new += 1
            steps, one = ZeekConn(), ZeekConn()
            first_is_a = from_a
            one.add(seg, True)
        steps.add(seg, True if starts_new else from_first)
        if _state(one) != _state(steps):
            return new, [f"frame {seg.frame}: {_state(one)} != {_state(steps)}"]
    return new, []


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])
@pytest.mark.parametrize("path", ALL_CAPTURES, ids=_id)
def test_one_step_agrees_with_two(path: Path, fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zeek.FAST_PATH, "on", fast)
    for packets in _flows(_segments(path)):
        _, diffs = _two_ways(packets)
        assert diffs == []


def test_the_captures_start_new_connections_on_a_tuple() -> None:
    """The comparison above sees the refusal too, not only packets added."""
    total = sum(
        _two_ways(packets)[0] for path in ALL_CAPTURES for packets in _flows(_segments(path))
    )
    assert total > 0
