"""Read a capture and replay it: the step shared by ``analyze`` and ``show``.

Returns the tracked connections themselves (with their traces), not tables;
``api.analyze`` turns them into DataFrames, the ladder diagram draws one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

from .config import Config
from .reader import CaptureReader, ReadStats
from .tracker import Connection, Tracker

__all__ = ["Replay", "replay"]


@dataclass
class Replay:
    """A capture replayed: its connections in order of first frame, and read statistics."""

    name: str
    connections: list[Connection]
    stats: ReadStats
    segments: int
    capture_end_ns: int
    config: Config

    def previous(self, conn: Connection) -> Connection | None:
        """The previous incarnation of ``conn``'s 4-tuple, if any."""
        if conn.prev_conn_id is None:
            return None
        return self.connections[conn.prev_conn_id - 1]


def replay(source: str | os.PathLike[str] | BinaryIO, config: Config) -> Replay:
    """Read ``source`` and replay every segment for both endpoints."""
    tracker = Tracker(config)
    segments = 0
    with CaptureReader(source) as reader:
        for seg in reader:
            segments += 1
            tracker.add(seg)
        stats, name = reader.stats, reader.name
    conns = tracker.finish()
    return Replay(name, conns, stats, segments, tracker.capture_end_ns, config)
