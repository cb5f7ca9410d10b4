"""``compact.Trace``: the packed records read back as the steps appended.

A record is written in place (the buffer grows several records at a time) as
six 64-bit words, most fields sharing one, and read back field by field: every
step appended to a trace of the real captures and the public corpus must come
back equal, through ``steps``, ``flags``, ``directions`` and ``dump``/``load``;
so must made-up steps with every state, checksum verdict, options kind and
the largest field values.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import marshal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tcpflow_analyzer.compact import Trace
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.reader import CaptureError
from tcpflow_analyzer.replay import replay
from tcpflow_analyzer.segment import Segment, TcpOptions
from tcpflow_analyzer.states import State
from tcpflow_analyzer.tracker import Step

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CAPTURES = sorted(
    p
    for p in [*(ROOT / "captures").rglob("*.pcap*"), *CORPUS.rglob("*.pcap*")]
    if p.stat().st_size < 2_000_000
)

_CLIENT = (b"\x0a\0\0\1", 40000)
_SERVER = (b"\x0a\0\0\2", 443)


def _check(trace: Trace, appended: list[Step]) -> None:
    trace.release()
    assert len(trace) == len(appended)
    assert trace.steps() == appended
    assert trace.flags() == bytes(step.seg.flags for step in appended)
    assert trace.directions() == bytes(1 if step.from_client else 0 for step in appended)
    again = Trace.load(marshal.loads(marshal.dumps(trace.dump())))
    assert again.steps() == appended
    assert again.flags() == trace.flags() and again.directions() == trace.directions()


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_every_step_appended_reads_back(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    appended: dict[int, tuple[Trace, list[Step]]] = {}
    add = Trace.add

    def recording(
        trace: Trace, seg: Segment, from_client: bool, client: State, server: State
    ) -> None:
        add(trace, seg, from_client, client, server)
        # A copy: replay's reader hands out one Segment object again and again.
        seg = dataclasses.replace(seg, options=copy.copy(seg.options))
        appended.setdefault(id(trace), (trace, []))[1].append(
            Step(seg, from_client, client, server)
        )

    monkeypatch.setattr(Trace, "add", recording)
    try:
        replay(path, Config())
    except CaptureError:
        return
    for trace, steps in appended.values():
        _check(trace, steps)


def _made_up() -> Iterator[tuple[Segment, bool, State, State]]:
    options = [
        None,
        TcpOptions(ts_val=2**32 - 1, ts_ecr=0),
        TcpOptions(mss=1460, wscale=14, sack_permitted=True, ts_val=1, ts_ecr=2),
        TcpOptions(sack_blocks=((1, 2), (2**32 - 2, 2**32 - 1))),
        TcpOptions(ts_val=5),  # a timestamp without its echo: not "timestamps only"
    ]
    states = list(State)
    for i, (opts, checksum, short) in enumerate(
        itertools.product(options, (None, False, True), (False, True))
    ):
        for k, (cs, ss) in enumerate(zip(states, [*states[3:], *states[:3]], strict=True)):
            n = i * len(states) + k
            from_client = n % 3 != 0
            src, dst = (_CLIENT, _SERVER) if from_client else (_SERVER, _CLIENT)
            yield (
                Segment(
                    n + 1 if n % 7 else 2**63 - 1,
                    2**63 - 1 - n if n % 2 else n,
                    (7, 8) if n % 5 == 0 else (),  # a connection's other tags
                    src[0],
                    dst[0],
                    src[1],
                    dst[1],
                    2**32 - 1 - n,
                    n * 99991 % 2**32,
                    n % 256,
                    65535 if n % 4 else 0,
                    0 if n % 6 == 0 else 2**32 - 1 - n,
                    2**32 - 1 if n % 9 == 0 else 40 + n,
                    opts,
                    short,
                    checksum,
                ),
                from_client,
                cs,
                ss,
            )


def test_made_up_steps_read_back() -> None:
    trace = Trace(_CLIENT, _SERVER, ())
    appended: list[Step] = []
    for seg, from_client, cs, ss in _made_up():
        trace.add(seg, from_client, cs, ss)
        appended.append(Step(seg, from_client, cs, ss))
        if len(appended) in (1, 7, 8, 9, 17, 100):  # around where the buffer grows
            _check(trace, appended)
    assert len(appended) > 300
    _check(trace, appended)
    assert Trace(_CLIENT, _SERVER, ()).dump()[4] == b""


@pytest.mark.parametrize(("flags", "window"), [(0x100, 0), (0, 0x10000)])
def test_flags_or_window_beyond_the_header_are_refused(flags: int, window: int) -> None:
    """They share the record's packed field with other values: refused, not spilled."""
    seg, from_client, cs, ss = next(iter(_made_up()))
    seg = dataclasses.replace(seg, flags=flags, window=window)
    trace = Trace(_CLIENT, _SERVER, ())
    with pytest.raises(ValueError, match="out of the TCP header's range"):
        trace.add(seg, from_client, cs, ss)
    assert len(trace) == 0
