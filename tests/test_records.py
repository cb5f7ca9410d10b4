"""The records made in numbers keep the behaviour of generated dataclasses.

Their ``__init__`` is written out so that the compiled build compiles it (see
segment.py): it must take what the one ``@dataclass`` would generate takes, and
copies, pickles and ``dataclasses.replace`` must give equal records.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from types import FunctionType
from typing import Any

import pytest

from tcpflow_analyzer.compact import Trace
from tcpflow_analyzer.segment import Segment, TcpOptions
from tcpflow_analyzer.states import Anomaly, Event, State
from tcpflow_analyzer.tracker import AnomalyRecord, Connection, Endpoint, Step, TransitionRecord
from tcpflow_analyzer.zeek import ZeekConn

_OPTIONS = TcpOptions(1460, 7, True, ((5, 9),), 11, 12)
_SEGMENT = Segment(
    3, 10**18, (7, 8), b"\x0a\0\0\1", b"\x0a\0\0\2", 40000, 80, 2**32 - 1, 5, 0x12, 65535, 0, 60,
    _OPTIONS, True, None,
)  # fmt: skip
SAMPLES: list[Any] = [
    _OPTIONS,
    TcpOptions(ts_val=1, ts_ecr=2),
    _SEGMENT,
    Segment(1, 2, (), b"\1\2\3\4", b"\4\3\2\1", 1, 2, 3, 4, 0x10, 5, 6, 40),
    Step(_SEGMENT, False, State.SYN_SENT, State.SYN_RECEIVED),
    TransitionRecord("server", None, 9, State.TIME_WAIT, State.CLOSED, Event.TIMEOUT_2MSL, "2MSL"),
    AnomalyRecord("client", 4, 9, State.CLOSED, "rcv_ack", Anomaly.NO_TRANSITION, "why"),
]


@pytest.mark.parametrize("cls", sorted({type(s) for s in SAMPLES}, key=lambda c: c.__name__))
def test_init_takes_what_the_generated_one_takes(cls: type[Any]) -> None:
    if not isinstance(cls.__init__, FunctionType):
        pytest.skip("compiled: no signature to read")
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    fields = dataclasses.fields(cls)
    assert [(p.name, p.kind, p.annotation) for p in params] == [
        (f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, f.type) for f in fields
    ]
    empty = inspect.Parameter.empty
    assert [p.default for p in params] == [
        empty if f.default is dataclasses.MISSING else f.default for f in fields
    ]


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_copies_are_equal(record: Any) -> None:
    values = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    assert type(record)(*values.values()) == record == type(record)(**values)
    for twin in (
        copy.copy(record),
        copy.deepcopy(record),
        pickle.loads(pickle.dumps(record)),
        dataclasses.replace(record),
    ):
        assert type(twin) is type(record) and twin == record and repr(twin) == repr(record)
        assert dataclasses.astuple(twin) == dataclasses.astuple(record)
    assert copy.copy(record) is not record


def test_replace_changes_one_field() -> None:
    moved = dataclasses.replace(_SEGMENT, frame=99)
    assert moved.frame == 99 and moved.options is _OPTIONS
    assert dataclasses.replace(moved, frame=_SEGMENT.frame) == _SEGMENT
    assert moved != _SEGMENT


def _endpoint(role: str, port: int) -> Endpoint:
    return Endpoint(role, State.ESTABLISHED, b"\x0a\0\0\1", port, isn=5, snd_nxt=2**32 - 1, pkts=3)


def _connection() -> Connection:
    return Connection(
        conn_id=7,
        key=((), b"\x0a\0\0\1", 40000, b"\x0a\0\0\2", 80),
        vlan=(),
        client=_endpoint("client", 40000),
        server=_endpoint("server", 80),
        incarnation=2,
        prev_conn_id=3,
        roles="syn",
        first_frame=1,
        start_ns=10**18,
        first_sender=(b"\x0a\0\0\1", 40000),
        zeek_records=[((b"\x0a\0\0\1", 40000), ZeekConn())],
        end_ns=5,
        first_fin="client",
    )


def test_endpoint_is_a_record_made_in_numbers() -> None:
    test_init_takes_what_the_generated_one_takes(Endpoint)
    test_copies_are_equal(_endpoint("client", 1))


def test_connection_init_takes_what_the_generated_one_takes() -> None:
    """But for its two lists, whose default None stands for a new list."""
    if not isinstance(Connection.__init__, FunctionType):
        pytest.skip("compiled: no signature to read")
    params = list(inspect.signature(Connection.__init__).parameters.values())[1:]
    fields = [f for f in dataclasses.fields(Connection) if f.init]
    assert [(p.name, p.kind) for p in params] == [
        (f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for f in fields
    ]
    for p, f in zip(params, fields, strict=True):
        if f.default_factory is not dataclasses.MISSING:
            assert p.default is None and p.annotation == f"{f.type} | None"
        else:
            assert p.annotation == f.type
            assert p.default == (
                inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
            )


def test_connection_is_made_as_the_generated_init_would() -> None:
    conn = _connection()
    assert conn.transitions == [] and conn.anomalies == []
    assert conn.transitions is not _connection().transitions
    assert isinstance(conn.trace, Trace) and len(conn.trace) == 0
    assert conn.trace.dump()[:3] == ((b"\x0a\0\0\1", 40000), (b"\x0a\0\0\1", 80), ())
    assert (conn.reverse_vlan, conn.prev, conn.packets, conn.end_ns) == (None, None, 0, 5)
    twin = copy.copy(conn)
    assert twin == conn and twin.trace is conn.trace and twin.transitions is conn.transitions
    conn.trace.add(_SEGMENT, True, State.SYN_SENT, State.SYN_RECEIVED)
    for twin in (copy.deepcopy(conn), pickle.loads(pickle.dumps(conn))):
        assert type(twin) is Connection and twin.trace.steps() == conn.trace.steps()
        for f in dataclasses.fields(Connection):
            if f.name not in ("trace", "zeek_records"):
                assert getattr(twin, f.name) == getattr(conn, f.name)
