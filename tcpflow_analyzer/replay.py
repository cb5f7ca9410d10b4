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
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, BinaryIO, cast

from .config import Config
from .fanout import RingFile, RingPart, SeriesPlan
from .reader import CaptureReader, ReadStats
from .segment import Segment
from .shard import PUBLISH_EVERY
from .tracker import Connection, Stop, Tracker, play

if TYPE_CHECKING:
    from .freeze import RowFreezer
    from .shard import ShardIds

__all__ = ["Replay", "Series", "Source", "open_source", "replay"]

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
    # An on_retire callback ended the replay (tracker.Stop): the capture was read up
    # to that segment (``stats`` count what was read), nothing after was replayed.
    stopped: bool = False

    def previous(self, conn: Connection) -> Connection | None:
        """The previous incarnation of ``conn``'s 4-tuple, if it was still held.

        A previous incarnation already retired (its record closed long before)
        is known only by number (``prev_conn_id``), as when streaming.
        """
        return conn.prev


class Series:
    """A rotated series read as one capture, with a reader's interface (iterate,
    ``sharded``, ``stats``, ``name``, ``close``).

    The files are put in the order of their first segment's time (each opened
    for it and closed again), then read one at a time on the fast path, each
    numbering its frames on from the files before it (``frame_offset``): no
    segment is copied to renumber it, and only one file's read window is held.
    The statistics are summed over the files as each ends. Like the reader of
    one capture that ``open_source`` gives, it hands out reused segments
    (``CaptureReader``'s ``reuse``). A source that cannot be read twice (``-``,
    standard input, or a pipe named by path) stays open from its first segment
    on, its segments renumbered one by one (copies).

    In a worker of a sharded run whose parent inflates the series' gzip files
    (fanout.py), ``given`` is the parent's plan (the order, already found, and the
    files it inflates) and the worker's reading of the ring: each of those files
    is read from it, the others from disk.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        given: tuple[SeriesPlan, RingFile] | None = None,
    ) -> None:
        self.name = " + ".join(os.fspath(p) for p in paths)
        self.stats = ReadStats()
        self._all = list(paths)
        self._files: Generator[Iterator[Segment], None, None] | None = None
        # Read once (not a regular file): the reader and its first segment, kept.
        self._kept: dict[int, tuple[CaptureReader, Segment | None]] = {}
        self._given = given
        self._reader: CaptureReader | None = None  # the file being read
        self._done = 0  # the frames of the files read to their end
        self.compressed: set[int] = set()  # the gzip files (indices into paths)
        if given is not None:
            plan = given[0]
            self._paths = [(i, paths[i]) for i in plan.order]
            self.compressed = set(plan.inflated)
            return
        firsts: list[tuple[int, int]] = []
        try:
            for i, path in enumerate(paths):
                reader = CaptureReader(path)
                if reader.compressed:
                    self.compressed.add(i)
                first = next(iter(reader), None)
                if os.fspath(path) != "-" and os.path.isfile(path):
                    reader.close()
                else:
                    self._kept[i] = (reader, first)
                firsts.append((first.ts_ns if first is not None else 0, i))
        except BaseException:
            self.close()
            raise
        self._paths = [(i, paths[i]) for _, i in sorted(firsts)]

    def plan(self) -> SeriesPlan:
        """The order the files are read in, and its gzip files (for a parent that
        inflates them for its workers)."""
        return SeriesPlan(self._all, tuple(i for i, _ in self._paths), frozenset(self.compressed))

    def __enter__(self) -> Series:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file being read (the generator's own ``with``), and any kept open."""
        if self._files is not None:
            self._files.close()
            self._files = None
        for reader, _ in self._kept.values():
            reader.close()
        self._kept.clear()

    def __iter__(self) -> Iterator[Segment]:
        return self._chain(None, None)

    def sharded(self, k: int, n: int, other: Callable[[int], None]) -> Iterator[Segment]:
        """As ``CaptureReader.sharded``, over the whole series."""
        return self._chain((k, n), other)

    def handed(self) -> int:
        """As ``CaptureReader.handed``, over the whole series: the files read to their end
        count whole (the next may keep its reader waiting before it hands anything out)."""
        reader = self._reader
        return max(self._done, reader.handed()) if reader is not None else self._done

    def _chain(
        self, shard: tuple[int, int] | None, other: Callable[[int], None] | None
    ) -> Iterator[Segment]:
        # chain hands out each file's segments with no generator of this module in between.
        self._files = self._each(shard, other)
        return chain.from_iterable(self._files)

    def _each(
        self, shard: tuple[int, int] | None, other: Callable[[int], None] | None
    ) -> Generator[Iterator[Segment], None, None]:
        offset = 0
        stats = self.stats
        for i, path in self._paths:
            self._done = offset
            kept = self._kept.pop(i, None)
            if kept is not None:
                # (Never sharded: a run is sharded only over regular files, stream.py.)
                assert shard is None
                reader, first = kept
                with reader:
                    yield _renumbered(first, reader, offset)
            else:
                # Given by the parent (a gzip file it inflates): that file's messages.
                part = None
                if self._given is not None and i in self.compressed:
                    part = RingPart(self._given[1], os.fspath(path))
                # reuse: the tracker keeps nothing of a segment but its values (reader.py).
                # (A RingPart is read by message, as the reader's stream asks such a source.)
                source = path if part is None else cast("BinaryIO", part)
                with CaptureReader(source, reuse=True, frame_offset=offset) as reader:
                    self._reader = reader
                    if shard is None:
                        yield iter(reader)
                    else:
                        assert other is not None
                        yield reader.sharded(shard[0], shard[1], other)
                if part is not None:
                    part.pass_rest()
            one = reader.stats
            offset += one.frames
            stats.frames += one.frames
            stats.skipped.update(one.skipped)
            stats.warnings.extend(one.warnings)
            stats.linktypes.update(one.linktypes)
            stats.truncated = stats.truncated or one.truncated
            stats.bad_records += one.bad_records
            stats.duplicates += one.duplicates
            stats.out_of_order += one.out_of_order


def _renumbered(first: Segment | None, rest: Iterable[Segment], offset: int) -> Iterator[Segment]:
    """``first`` (if any), then ``rest``, each with ``offset`` added to its frame number."""
    if first is not None:
        yield dataclasses.replace(first, frame=first.frame + offset)
        for seg in rest:
            yield dataclasses.replace(seg, frame=seg.frame + offset)


def open_source(
    source: Source | Sequence[str | os.PathLike[str]] | Series,
) -> CaptureReader | Series:
    """A reader of one capture, or of a list of files forming one series (a series
    already opened: itself).

    Its segments are reused (``reuse``): for the tracker, which keeps nothing of a
    segment but its values (reader.py).
    """
    if isinstance(source, Series):
        return source
    if isinstance(source, list | tuple):
        return Series(source)
    return CaptureReader(cast("Source", source), reuse=True)


def replay(
    source: Source | Sequence[str | os.PathLike[str]] | Series,
    config: Config,
    on_retire: Callable[[Connection], None] | None = None,
    freezer: RowFreezer | None = None,
    shard: ShardIds | None = None,
    keep: Callable[[Connection], bool] | None = None,
) -> Replay:
    """Read ``source`` (one capture, or a list of files forming one series) and replay it.

    With ``on_retire``, connections are handed to it as they finish and not
    kept (``Replay.connections`` is then empty); see ``tracker.Tracker``. It may
    raise ``tracker.Stop`` to end the replay there (``Replay.stopped``). With
    ``freezer``, closed connections are frozen (freeze.py) but those ``keep`` says.
    With ``shard``, only that shard's segments are replayed (see shard.py);
    ``segments`` counts those.
    """
    tracker = Tracker(config, on_retire, freezer)
    tracker.keep = keep
    with open_source(source) as reader:
        if shard is None:
            segments = play(tracker, reader)
        else:
            tracker.firsts, tracker.public_id = shard.firsts, shard.public
            shard.clock = tracker  # how far the replay is, between play's publications
            # ... and how far the reading is, as the reader waits for bytes (a ring's:
            # fanout.py) when no segment of this shard has come for long.
            shard.read = reader.handed
            # Another shard's segment only moves the clock: the reader passes its
            # time to ``tracker.tick`` in its place among this shard's segments.
            own = reader.sharded(shard.k, shard.n, tracker.tick)
            segments = play(tracker, own, shard, PUBLISH_EVERY)
            if not tracker.stopped:  # all its connections are made: none need wait for it
                shard.finish()
            # (Stopped, it has not read to the end: others counting its connections wait
            # for it, rather than count too few, until the caller stops them: show.py.)
        stats, name = reader.stats, reader.name
    conns: list[Connection] = []
    if not tracker.stopped:
        try:
            conns = tracker.finish()
        except Stop:  # raised when a connection retired at the end
            tracker.stopped = True
    return Replay(
        name,
        conns,
        stats,
        segments,
        tracker.capture_end_ns,
        config,
        dict(tracker.expired),
        tracker.stopped,
    )
