"""The census made on integer codes and numpy arrays equals the census as first written.

``tests/census_reference.py`` is the census as it was (pandas frames of
strings per event, ``groupby``, row-wise ``apply``). The lean one must give the
same three tables, to the dtype, on every capture of ``captures/`` and
``../shared/corpus``, for all hosts and for one, with the transitions in the
table's order and shuffled, and on a batch's tables (a ``capture`` column
naming the connections with ``conn_id``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tcpflow_analyzer
from tcpflow_analyzer.batch import analyze_many
from tcpflow_analyzer.census import HOST_COLUMNS, Census, census
from tcpflow_analyzer.reader import CaptureError

from . import census_reference
from .test_frame_csv import CAPTURES

ROOT = Path(__file__).resolve().parents[1]


def _same(made: Census, kept: Census) -> None:
    for part in ("states", "hosts", "ports"):
        pd.testing.assert_frame_equal(getattr(made, part), getattr(kept, part), obj=part)


def _both(conns: pd.DataFrame, trans: pd.DataFrame, **kw: object) -> None:
    try:
        kept = census_reference.census(conns, trans, **kw)  # type: ignore[arg-type]
    except ValueError as exc:
        with pytest.raises(ValueError, match="intervals"):
            census(conns, trans, **kw)  # type: ignore[arg-type]
        assert "intervals" in str(exc)
        return
    _same(census(conns, trans, **kw), kept)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", CAPTURES, ids=[str(p.relative_to(p.parents[1])) for p in CAPTURES])
def test_the_lean_census_is_the_first_one(path: Path) -> None:
    try:
        a = tcpflow_analyzer.analyze(str(path), msl=5.0)
    except CaptureError:
        return
    conns, trans = a.connections, a.transitions
    _both(conns, trans, interval=0.5, msl=5.0)
    if len(conns):
        host = str(conns["server_ip"].iloc[len(conns) // 2])
        _both(conns, trans, interval=0.5, msl=5.0, host=host)
        _both(conns, trans, interval=2.0, msl=5.0, host="192.0.2.99")  # a host not there
        shuffled = trans.sample(frac=1.0, random_state=len(trans)).reset_index(drop=True)
        _both(conns.iloc[::-1].reset_index(drop=True), shuffled, interval=1.0, msl=5.0)


# The first census's fillna of texts into an empty float column (no transitions) warns.
@pytest.mark.filterwarnings("ignore:.*is not supported as a fill value")
def test_a_batch_census_is_the_first_one() -> None:
    paths = sorted((ROOT / "captures" / "batch").glob("*.pcap"))
    batch = analyze_many([str(p) for p in paths], jobs=1)
    conns, trans = batch.connections, batch.transitions
    assert "capture" in conns.columns and conns["capture"].nunique() > 1
    _both(conns, trans, interval=0.25)
    _both(conns, trans.iloc[0:0], interval=0.25)  # no transitions at all


def test_an_empty_batch_has_an_empty_census() -> None:
    """(The first census failed here: its reuse gaps subtracted a text column from times.)"""
    paths = sorted((ROOT / "captures" / "batch").glob("*.pcap"))[:3]
    batch = analyze_many([str(p) for p in paths], jobs=1)
    made = census(batch.connections.iloc[0:0], batch.transitions.iloc[0:0], interval=0.25)
    for part in (made.states, made.hosts, made.ports):
        assert part.empty
    assert list(made.hosts.columns) == list(HOST_COLUMNS)
    assert made.hosts.dtypes.astype(str).tolist() == list(HOST_COLUMNS.values())
    with pytest.raises(TypeError):
        census_reference.census(batch.connections.iloc[0:0], batch.transitions.iloc[0:0])


def test_a_transition_of_no_listed_connection_counts_nowhere() -> None:
    a = tcpflow_analyzer.analyze(str(ROOT / "captures" / "tuple_reuse.pcap"))
    conns, trans = a.connections, a.transitions
    kept = conns[conns["conn_id"] != conns["conn_id"].iloc[0]].reset_index(drop=True)
    _both(kept, trans, interval=0.1)
    states = census(kept, trans, interval=0.1).states
    assert np.isfinite(states["ts"]).all()
