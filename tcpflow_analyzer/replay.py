"""Read a capture (or a rotated series of them) and replay it for both endpoints.

This is the step shared by ``analyze``, ``show`` and ``census``: it returns the
tracked connections themselves (with their traces), not tables.

A *series* is one capture rotated into several files (tcpdump ``-G``/``-C``/
``-W``). Its files are read in the order of their first segment's time and
replayed as one stream, so a connection that spans files is one connection;
frame numbers count on across the files, as ``mergecap -a`` would number them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from .config import Config
from .reader import CaptureReader, ReadStats
from .segment import Segment
from .shard import PUBLISH_EVERY
from .tracker import Connection, Tracker, play

if TYPE_CHECKING:
    from .freeze import RowFreezer
    from .shard import ShardIds

__all__ = ["Replay", "Source", "replay"]

Source = str | os.PathLike[str] | BinaryIO


@dataclass
class Replay:
    """A capture replayed: its connections in order of first frame, and read statistics."""

    name: str
    connections: list[Connection]
    stats: ReadStats
    segments: int
    capture_end_ns: int
    config: Config
    expired: dict[str, int]  # half-open connections dropped under memory pressure

    def previous(self, conn: Connection) -> Connection | None:
        """The previous incarnation of ``conn``'s 4-tuple, if it was still held.

        A previous incarnation already retired (its record closed long before)
        is known only by number (``prev_conn_id``), as when streaming.
        """
        return conn.prev


def _series(paths: Sequence[str | os.PathLike[str]], stats: ReadStats) -> Iterator[Segment]:
    """Segments of several files in time order, frames renumbered across them."""
    heads: list[tuple[int, int, CaptureReader, Segment | None]] = []
    for i, path in enumerate(paths):
        reader = CaptureReader(path)
        first = next(iter(reader), None)
        heads.append((first.ts_ns if first else 0, i, reader, first))
    heads.sort(key=lambda h: (h[0], h[1]))
    offset = 0
    try:
        for _, _, reader, first in heads:
            if first is not None:
                yield dataclasses.replace(first, frame=first.frame + offset)
                for seg in reader:
                    yield dataclasses.replace(seg, frame=seg.frame + offset)
            offset += reader.stats.frames
            stats.frames += reader.stats.frames
            stats.skipped.update(reader.stats.skipped)
            stats.warnings.extend(reader.stats.warnings)
            stats.linktypes.update(reader.stats.linktypes)
            stats.truncated = stats.truncated or reader.stats.truncated
            stats.bad_records += reader.stats.bad_records
            stats.duplicates += reader.stats.duplicates
            stats.out_of_order += reader.stats.out_of_order
    finally:
        for _, _, reader, _ in heads:
            reader.close()


def replay(
    source: Source | Sequence[str | os.PathLike[str]],
    config: Config,
    on_retire: Callable[[Connection], None] | None = None,
    freezer: RowFreezer | None = None,
    shard: ShardIds | None = None,
) -> Replay:
    """Read ``source`` (one capture, or a list of files forming one series) and replay it.

    With ``on_retire``, connections are handed to it as they finish and not
    kept (``Replay.connections`` is then empty); see ``tracker.Tracker``.
    With ``shard`` (one capture only), only that shard's segments are replayed
    (see shard.py); ``segments`` counts those.
    """
    tracker = Tracker(config, on_retire, freezer)
    segments = 0
    if isinstance(source, (list, tuple)):
        if shard is not None:
            raise ValueError("a series is not sharded")
        stats = ReadStats()
        for seg in _series(source, stats):
            segments += 1
            tracker.add(seg)
        name = " + ".join(os.fspath(p) for p in source)
    elif shard is not None:
        tracker.firsts, tracker.public_id = shard.firsts, shard.public
        shard.clock = tracker  # how far the replay is, between play's publications
        # reuse: the tracker keeps nothing of a segment but its values (reader.py).
        with CaptureReader(source, reuse=True) as reader:  # type: ignore[arg-type]
            # Another shard's segment only moves the clock: the reader passes its
            # time to ``tracker.tick`` in its place among this shard's segments.
            own = reader.sharded(shard.k, shard.n, tracker.tick)
            segments = play(tracker, own, shard, PUBLISH_EVERY)
            shard.finish()  # all its connections are made: others need not wait for it
            stats, name = reader.stats, reader.name
    else:
        with CaptureReader(source, reuse=True) as reader:  # type: ignore[arg-type]
            segments = play(tracker, reader)
            stats, name = reader.stats, reader.name
    conns = tracker.finish()
    return Replay(
        name, conns, stats, segments, tracker.capture_end_ns, config, dict(tracker.expired)
    )
