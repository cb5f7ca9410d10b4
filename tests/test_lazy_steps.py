"""``compact.Trace.lazy``: steps built one at a time read as the materialized list.

The detectors read a packed trace through ``Trace.lazy`` (each step rebuilt
when first read) and its ``flags`` and ``directions`` (read off the records);
here every connection of the real captures and the public corpus is read that
way, in a shuffled order, with negative indices and slices, against
``Trace.steps`` (the whole list, field by field equal to the steps appended).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tcpflow_analyzer.compact import LazySteps, Trace
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.reader import CaptureError
from tcpflow_analyzer.replay import replay
from tcpflow_analyzer.tracker import Connection

from .wire import CLIENT, SERVER, Wire

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CAPTURES = sorted(
    p
    for p in [*(ROOT / "captures").rglob("*.pcap*"), *CORPUS.rglob("*.pcap*")]
    if p.stat().st_size < 2_000_000
)


def _connections(path: Path) -> list[Connection]:
    try:
        return list(replay(path, Config()).connections)
    except CaptureError:
        return []


def _check(trace: Trace, rng: random.Random) -> None:
    trace.release()
    lazy = trace.lazy()
    assert isinstance(lazy, LazySteps)
    n = len(trace)
    assert len(lazy) == n and bool(lazy) == (n > 0)
    order = list(range(n))
    rng.shuffle(order)
    got = {i: lazy[i] for i in order[: n // 2]}  # half of them built, in any order
    want = trace.steps()
    assert len(want) == n
    for i, step in got.items():
        assert step == want[i]
        assert step is want[i]  # the whole list takes the steps already built
    assert list(lazy) == want
    assert [lazy[-k] for k in range(1, n + 1)] == want[::-1]
    assert lazy[1:-1:2] == want[1:-1:2]
    assert lazy[:] == want
    with pytest.raises(IndexError):
        lazy[n]
    assert trace.flags() == bytes(step.seg.flags for step in want)
    assert trace.directions() == bytes(1 if step.from_client else 0 for step in want)


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_lazy_steps_are_the_steps(path: Path) -> None:
    rng = random.Random(path.name)
    conns = _connections(path)
    for conn in conns:
        assert isinstance(conn.trace, Trace)
        _check(conn.trace, rng)


def test_a_second_read_gets_the_whole_list() -> None:
    """Read again before its release, a trace gives its list, with the steps built."""
    conn = next(
        c for c in _connections(ROOT / "captures" / "client_close.pcap") if len(c.trace) > 3
    )
    trace = conn.trace
    assert isinstance(trace, Trace)
    trace.release()
    first = trace.lazy()
    built = first[2]
    again = trace.lazy()
    assert isinstance(again, list) and again == trace.steps()
    assert again[2] is built
    assert trace.lazy() is again
    trace.release()
    assert isinstance(trace.lazy(), LazySteps)  # released: read step by step again


def test_a_step_added_or_a_release_drops_what_was_built() -> None:
    w = Wire()
    w.established()
    conn = next(iter(w.tracker.connections))
    trace = conn.trace
    assert isinstance(trace, Trace)
    lazy = trace.lazy()
    first = lazy[0]
    w.data(CLIENT)
    w.ack(SERVER)
    fresh = trace.lazy()
    assert isinstance(fresh, LazySteps)  # a new trace to read: built step by step
    assert len(fresh) == len(lazy) + 2
    assert fresh[0] == first and fresh[-1].seg.flags == trace.flags()[-1]
    trace.release()
    assert list(trace.lazy()) == trace.steps()
