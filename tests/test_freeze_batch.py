"""The freezer's batch of retired connections' results (``freeze.Batch``)."""

from __future__ import annotations

from tcpflow_analyzer import freeze


def test_a_batch_is_handed_over_when_full() -> None:
    fulls: list[int] = []
    batch = freeze.Batch(("a", "b"), 3, lambda: fulls.append(len(batch.rows)))
    batch.add({"conn_id": 1}, {"a": "x"}, [])
    batch.add({"conn_id": 2}, {"a": "y", "b": "z"}, [])
    assert fulls == []
    batch.add({"conn_id": 3}, {}, [])
    assert fulls == [3]
    assert batch.lines == {"a": ["x", "y"], "b": ["z"]}
    batch.clear()
    assert (batch.rows, batch.lines, batch.findings) == ([], {"a": [], "b": []}, [])
    batch.close()  # the callback dropped: nothing is handed over any more
    for i in range(4):
        batch.add({"conn_id": i}, {}, [])
    assert fulls == [3]
