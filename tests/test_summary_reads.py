"""The summary makes dicts of flagged connections from ``report._FLAGGED_READS`` only.

Every column that ``_worth_a_look`` reads must be among them: checked on every
connection row of the real captures and the public corpus, by watching which
keys are read. (A column missing for the line written for a flagged
connection would be a KeyError in the summary tests of test_stream.py.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import tcpflow_analyzer
from tcpflow_analyzer.report import _FLAGGED_READS, CONNECTION_COLUMNS, _worth_a_look

from .readable import readable

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CAPTURES = sorted(
    p
    for p in [*(ROOT / "captures").rglob("*.pcap*"), *CORPUS.rglob("*.pcap*")]
    if p.stat().st_size < 2_000_000
)

CAPTURES = readable(CAPTURES)


class _Watched(dict[str, Any]):
    """A row that notes the keys read from it."""

    def __init__(self, row: dict[str, Any]) -> None:
        super().__init__(row)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)


def test_the_reads_are_columns() -> None:
    assert set(_FLAGGED_READS) <= set(CONNECTION_COLUMNS)


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_worth_a_look_reads_only_those_columns(path: Path) -> None:
    frame = tcpflow_analyzer.analyze(path).connections
    for row in frame.to_dict("records"):
        watched = _Watched(row)
        _worth_a_look(watched)
        assert watched.read <= set(_FLAGGED_READS)
