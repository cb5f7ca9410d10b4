"""One capture analyzed by several processes, each taking the flows of one shard.

Theory of operation
-------------------
A connection's rows depend on its own segments and on the time (the tracker's
timers run on capture time), never on other address pairs' segments. So
``analyze --jobs N`` forks N workers that all read the whole capture; worker
``k`` replays the segments whose address pair falls in shard ``k``
(:func:`shard_of`: a mix of the sum of both addresses' bytes and both ports, the same in
either direction and on any VLAN, so the two halves of a connection routed
between VLANs stay together) and turns every other segment into a bare
timestamp that only moves its tracker's clock (``Tracker.tick``). Each
worker's connections therefore retire at the same capture times, with the
same rows, as in a one-process run.

One thing is global: ``conn_id`` numbers connections in order of their first
frame across all shards. A worker numbers its own connections 1, 2, ... as it
creates them (its tracker's tables use those *local* numbers) and records
each one's first frame. The :class:`Ledger`, shared by the workers, lets
each worker publish those first frames and how far it has read; a
connection's public number is then its local number plus the count of other
shards' connections whose first frame comes before its own
(:meth:`ShardIds.public`). The tracker swaps the public numbers in only while
rows are made (``Tracker.public_id``).

A worker that needs another's count waits until that worker has read past
the frame in question. This cannot deadlock: a worker asks only about its own
connections, whose first frames come before the frame it is at, and publishes
how far it has read before it waits; two workers each waiting for the other
would each have to be behind the other.
"""

from __future__ import annotations

import mmap
import os
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING

from .segment import Segment

if TYPE_CHECKING:
    from .tracker import Tracker

__all__ = ["DONE", "MIX", "PUBLISH_EVERY", "Ledger", "ShardIds", "shard_of"]

DONE = 1 << 62  # a worker's progress once it has read everything (or died)
PUBLISH_EVERY = 2048  # segments between two publications of progress
_WAIT_S = 0.0005  # poll interval while waiting for another worker


MIX = 2654435761  # Knuth's multiplicative hash: 2**32 / golden ratio, odd


def shard_of(seg: Segment, n: int) -> int:
    """The shard (0 .. n-1) of the segment's address pair: the same both ways and on any VLAN.

    The bytes of both addresses and both ports are summed (so the direction does
    not matter), and the sum is mixed before taking it modulo ``n``: Linux gives
    connect() even ephemeral ports, so the sum alone would put every connection
    between two hosts and one server port in the same of two shards.
    ``fastread`` computes the same on its columns.
    """
    total = sum(seg.src) + sum(seg.dst) + seg.sport + seg.dport
    return (((total * MIX) & 0xFFFFFFFF) >> 16) % n


class Ledger:
    """What the workers of one run share: per worker, how far it has read, and first frames.

    Made by the parent before forking. Per worker ``j``: ``progress(j)``, a
    frame number such that every connection worker ``j`` created at an earlier
    frame is published (:data:`DONE` when it has finished or died), and the
    first frames of its connections, in order, in a shared growing file.
    """

    def __init__(self, n: int, directory: str | os.PathLike[str]) -> None:
        self.n = n
        # progress and published count per worker, in one shared anonymous page
        self._shared = mmap.mmap(-1, max(16 * n, mmap.PAGESIZE))
        self._counts = memoryview(self._shared).cast("q")
        self.paths = [os.path.join(directory, f"firsts-{j}.bin") for j in range(n)]
        for path in self.paths:
            with open(path, "wb"):
                pass

    def progress(self, j: int) -> int:
        return int(self._counts[2 * j])

    def published(self, j: int) -> int:
        return int(self._counts[2 * j + 1])

    def publish(self, j: int, fd: int, firsts: array[int], progress: int) -> None:
        """Worker ``j``: append its new first frames to its file, then announce them."""
        done = self.published(j)
        if len(firsts) > done:
            data = firsts[done:].tobytes()
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            self._counts[2 * j + 1] = len(firsts)
        self._counts[2 * j] = progress

    def finish(self, j: int) -> None:
        """Worker ``j`` will publish nothing more (also set for a worker that died)."""
        self._counts[2 * j] = DONE


class ShardIds:
    """One worker's side of the ledger: its first frames, and public numbers for its rows."""

    def __init__(self, ledger: Ledger, k: int) -> None:
        self.ledger = ledger
        self.k = k
        self.n = ledger.n
        self.firsts: array[int] = array("q")  # first frame of local connection i + 1
        # The frame of the segment being replayed: set by tracker.play every
        # PUBLISH_EVERY segments (when it calls publish), read from the tracker
        # (``clock``, set by replay.replay) between them.
        self.position = 0
        self.clock: Tracker | None = None
        # The reader's frames handed out and replayed (CaptureReader.handed, set by
        # replay.replay): how far this worker is when no segment of its own says it.
        self.read: Callable[[], int] | None = None
        self._read_all = False  # every own connection is made (see finish)
        self._fd = os.open(ledger.paths[k], os.O_WRONLY | os.O_APPEND)
        self._others: dict[int, tuple[int, array[int]]] = {
            j: (os.open(ledger.paths[j], os.O_RDONLY), array("q")) for j in range(self.n) if j != k
        }

    def publish(self) -> None:
        progress = self.position
        if self._read_all:
            progress = DONE
        else:
            if self.clock is not None:
                progress = max(progress, self.clock.frame)
            if self.read is not None:
                progress = max(progress, self.read())
        self.ledger.publish(self.k, self._fd, self.firsts, progress)

    def public(self, local_id: int) -> int:
        """The ``conn_id`` a one-process run gives the local connection ``local_id``."""
        first = self.firsts[local_id - 1]
        before = local_id
        for j, (fd, frames) in self._others.items():
            if not frames or frames[-1] < first:
                # Frames are published in ascending order: once one after ``first`` is
                # here, every earlier one is too (no two shards share a frame).
                frames = self._catch_up(j, fd, frames, first)
            before += bisect_left(frames, first)
        return before

    def _catch_up(self, j: int, fd: int, frames: array[int], first: int) -> array[int]:
        ledger = self.ledger
        if ledger.progress(j) < first:
            self.publish()  # what this worker has read, before it waits (no deadlock)
            while ledger.progress(j) < first:
                time.sleep(_WAIT_S)
        have, count = len(frames), ledger.published(j)
        if count > have:
            frames.frombytes(os.pread(fd, 8 * (count - have), 8 * have))
        return frames

    def finish(self) -> None:
        """The whole capture is read: no connection of this worker comes after this."""
        self._read_all = True
        self.publish()

    def close(self) -> None:
        for fd, _ in self._others.values():
            os.close(fd)
        self._others.clear()
        os.close(self._fd)
