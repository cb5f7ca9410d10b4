"""``tracker.SAME_CONNECTION``: the shortcut for a segment of the last segment's connection.

Off, every segment finds its connection by its key. Every capture is analyzed
both ways, with default timers and with timers short enough that connections
retire, freeze and thaw between the segments of one connection; the tables
written must be the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tcpflow_analyzer.tracker as tracker
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.reader import CaptureError, CaptureReader
from tcpflow_analyzer.stream import analyze_to_csv
from tcpflow_analyzer.tracker import track

from .test_shard import CAPTURES, SHORT

CONFIGS = {"default": Config(), "short": SHORT}


def _tables(path: Path, config: Config, out: Path) -> dict[str, bytes] | str:
    try:
        analyze_to_csv(path, config, out)
    except CaptureError as exc:
        return str(exc)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.mark.parametrize("config", CONFIGS, ids=str)
@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_the_shortcut_changes_no_table(
    path: Path, config: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = _tables(path, CONFIGS[config], tmp_path / "fast")
    monkeypatch.setattr(tracker.SAME_CONNECTION, "on", False)
    full = _tables(path, CONFIGS[config], tmp_path / "full")
    assert fast == full


def test_the_switch_is_on_by_default() -> None:
    assert tracker.SAME_CONNECTION.on is True


def test_the_switch_turns_the_shortcut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """On, most segments of a capture take it (so the comparison above compares two paths)."""
    path = Path(__file__).resolve().parents[1] / "captures" / "crawler" / "crawler.pcap"
    with CaptureReader(path) as reader:
        segments = list(reader)
    assert track(segments).repeats > len(segments) // 4
    monkeypatch.setattr(tracker.SAME_CONNECTION, "on", False)
    assert track(segments).repeats == 0
