"""``findings._Trace.held`` (the time each of CLOSE_WAIT, FIN_WAIT_2 and TIME_WAIT was
held, all three folded in one pass over the transitions) is ``_state_held`` (a pass
per endpoint and state, itself checked against the listed intervals in
tests/test_findings_fast.py), on every connection of ``captures/`` and the corpus,
at the capture's end and at other ends (before and after the transitions)."""

from __future__ import annotations

import pytest

from tcpflow_analyzer import findings as F
from tcpflow_analyzer.tracker import Connection

from .test_findings_fast import _connections


@pytest.fixture(scope="module")
def connections() -> list[tuple[Connection, int]]:
    return _connections()


def test_held_in_one_pass_is_state_held(connections: list[tuple[Connection, int]]) -> None:
    held = {state: 0 for state in (F._CLOSE_WAIT, F._FIN_WAIT_2, F._TIME_WAIT)}
    open_at_end = 0
    for conn, end_ns in connections:
        tr = F._Trace(conn)
        ts = [t.ts_ns for t in conn.transitions]
        ends = [end_ns, end_ns + 10**9, 0, min(ts, default=0), max(ts, default=0) - 1]
        for end in ends:
            for state in held:
                got = tr.held(state, end)
                assert got == F._state_held(conn, state, end), (conn.conn_id, state, end)
                if end == end_ns and got[0]:
                    held[state] += 1
                    open_at_end += tr.held(state, end + 1) != got
    assert all(n > 20 for n in held.values()), held
    assert open_at_end > 20  # periods still open at the end (they grow with it)


def _parts_listed(conn: Connection, state: F.State) -> list[tuple[int, int | None]]:
    """``state_parts`` from the listed intervals (as it was made before it folded them)."""
    out: list[tuple[int, int | None]] = []
    for role in ("client", "server"):
        periods = F._intervals(conn, role, state, 0)
        if periods:
            open_start = periods[-1][0] if periods[-1][4] is None else None
            ended = periods[:-1] if open_start is not None else periods
            out.append((sum(end - start for start, end, *_ in ended), open_start))
    return out


def test_state_parts_fold_the_intervals(connections: list[tuple[Connection, int]]) -> None:
    kinds = {"ended": 0, "open": 0}
    for conn, _ in connections:
        for state in (F._CLOSE_WAIT, F._FIN_WAIT_2, F._TIME_WAIT):
            parts = F.state_parts(conn, state)
            assert parts == _parts_listed(conn, state)
            kinds["ended"] += any(total for total, _ in parts)
            kinds["open"] += any(start is not None for _, start in parts)
    assert all(n > 20 for n in kinds.values()), kinds
