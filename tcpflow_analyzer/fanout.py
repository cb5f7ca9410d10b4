"""Captures the parent reads once for all the workers: read-once sources, gzip files.

Theory of operation
-------------------
``analyze --jobs N`` on a capture file lets every worker read the file itself
(shard.py). Standard input, a pipe or a FIFO can be read once only, and a gzip
file read by every worker is inflated by every worker, so for them the parent
reads (and inflates) once, and the workers read from a :class:`Ring`, an
anonymous shared memory ring made before they are forked:

- The parent's *pump* (a thread, once the workers are started) writes into the
  ring as it has room: the bytes the slowest worker has not read yet stay, and
  the ring holds at most ``size`` of them.
- A read-once source's bytes go as they are (unless gzip: below). Each worker
  reads them through :class:`RingFile`, a file object the capture reader takes
  as it takes standard input; at the end of the source it reads the end of the
  file, and a read error of the parent's is raised in each worker where it
  happened (the same ``OSError``), so the reader reports it after the segments
  before it, as in one process.
- A gzip file, or a read-once source that turns out to be gzip (the parent reads
  its first piece through the reader's stream before the workers start), goes as
  *messages* (``Ring(messages=True)``): each piece of data as the parent's own
  reader stream inflated it, with the warnings that stream added and whether it
  was cut short, and its failure (corrupt data, a read error) as the last
  message (``reader.stream_messages``). Each worker's stream takes them in place
  of inflating (``reader._Stream._given_piece``): the same pieces, warnings and
  failures at the same places as one process's stream.
- A rotated series whose files are gzip (``tcpdump -C N -z gzip``) goes as the
  messages of each such file in turn, in the series' reading order, each file's
  followed by an empty message (``reader.series_messages``; the ring's
  :class:`SeriesPlan` says which files and in what order). Each worker reads the
  series itself (``replay.Series``), its plain files from disk and each gzip file
  from the ring (:class:`RingPart`: that file's messages, up to its empty one, the
  rest passed over once its reader is done, as when the capture data ends before
  the inflated bytes do).
- A worker that has finished (or died) reads no more: the pump stops waiting
  for it (:meth:`Ring.leave`).

Waiting cannot deadlock. The pump waits for the slowest worker only; a worker
waits for the pump only when it has read everything written; and a worker that
waits for bytes first publishes how far it has got (``before_wait``: the shard
ledger's rule, shard.py), so a worker behind it, which has bytes to read, never
waits for it in vain. How far it has got is every frame its reader has handed out
(``CaptureReader.handed``: as a segment or, of the other shards, a time), not
only its last own segment: a worker whose shard has had no segment for longer
than the ring holds (all the connections in the other shard) would otherwise
say it is far behind, and the one behind it, waiting to number a connection,
would never read the bytes the pump needs room for. In a series, the worker
behind may be reading a plain file from disk, not the ring, while one ahead
waits for the next gzip file's bytes: the files read to their end count whole
(``Series.handed``), so the one behind, in them, never needs more.
"""

from __future__ import annotations

import mmap
import os
import select
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Final

__all__ = ["RING_BYTES", "Ring", "RingFile", "RingPart", "SeriesPlan"]

RING_BYTES: Final = 16 << 20  # the bytes the ring holds
_READ_MOST: Final = 1 << 20  # bytes the pump asks the source for at a time
_WAIT_LEAST_S: Final = 0.0002  # polling while waiting: from this, doubling up to
_WAIT_MOST_S: Final = 0.005
_POLL_S: Final = 0.1  # the pump, waiting for a descriptor's data, checks the run that often

# The shared words: bytes written, the source's state, its error; then per worker
# the bytes it has read (_GONE once it reads no more).
_WRITTEN, _STATE, _ERRNO, _FIRST_READER = 0, 1, 2, 3
_RUNNING, _ENDED, _FAILED, _STOPPED = 0, 1, 2, 3
_GONE: Final = 1 << 62
_MESSAGE_MOST: Final = 2048  # bytes of the error's text, after the words


@dataclass(frozen=True)
class SeriesPlan:
    """A series whose gzip files the parent inflates: the files as named, the order they
    are read in (indices into ``paths``), and those whose bytes come by the ring."""

    paths: Sequence[str | os.PathLike[str]]
    order: tuple[int, ...]
    inflated: frozenset[int]


class Ring:
    """Bytes of a read-once source, shared by the parent (writing) and ``n`` workers."""

    def __init__(
        self,
        n: int,
        name: str,
        size: int = RING_BYTES,
        messages: bool = False,
        series: SeriesPlan | None = None,
    ) -> None:
        self.n = n
        self.name = name  # what the workers' readers call the capture
        self.series = series  # a series' gzip files, one after the other (messages)
        self.size = size
        # The ring carries the source's bytes, or messages (start_messages): each its
        # length (8 bytes) and itself.
        self.messages = messages
        self._written = 0  # bytes written (the pump's)
        self._data = mmap.mmap(-1, size)
        self._message_at = 8 * (_FIRST_READER + n)  # the error's text, after the words
        self._page = mmap.mmap(-1, max(mmap.PAGESIZE, self._message_at + _MESSAGE_MOST))
        self._words = memoryview(self._page)[: self._message_at].cast("q")
        self._pump: threading.Thread | None = None
        self._fd: int | None = None

    # -- the parent ---------------------------------------------------------------

    def start(
        self, source: BinaryIO, owned: bool, fd: int | None = None, head: bytes = b""
    ) -> None:
        """Start pumping ``source`` into the ring (after the workers are forked); the pump
        closes it at the end if ``owned``. With ``fd`` (standard input's, or a pipe's the
        run opened: nothing read from it yet) the pump reads that descriptor itself, as
        it has data, and a stopped run's pump ends though no more data comes; a
        caller's file object is read through its own methods (a read that waits
        for a pipe's writer then keeps the pump until it returns). ``head``: the
        source's first bytes, read already."""
        self._fd = fd
        self._pump = threading.Thread(
            target=self._pump_all,
            args=(source, owned, fd, head),
            name="tcpflow-analyzer pump",
            daemon=True,
        )
        self._pump.start()

    def start_messages(self, messages: Iterator[bytes]) -> None:
        """Start pumping ``messages`` into the ring (after the workers are forked): what
        each worker's ``RingFile.message`` reads, one at a time. (For a gzip file the
        parent inflates once for all: ``reader.inflated_messages``.)"""
        self._pump = threading.Thread(
            target=self._pump_messages, args=(messages,), name="tcpflow-analyzer pump", daemon=True
        )
        self._pump.start()

    def leave(self, k: int) -> None:
        """Worker ``k`` reads no more (it finished or died): no one waits for it."""
        self._words[_FIRST_READER + k] = _GONE

    def stop(self) -> None:
        """Stop pumping: the run is over, or has failed. A pump reading a descriptor ends
        within ``_POLL_S`` and is waited for; one reading a caller's file object is not
        (a read waiting for a pipe's writer returns when the writer writes or ends)."""
        if self._words[_STATE] == _RUNNING:
            self._words[_STATE] = _STOPPED
        if self._pump is not None and self._fd is not None:
            self._pump.join()

    def _pump_all(self, source: BinaryIO, owned: bool, fd: int | None, head: bytes) -> None:
        try:
            if self._put(head):
                self._pump_some(source, fd)
        finally:
            if owned:
                source.close()

    def _room(self) -> memoryview | None:
        """Where the next bytes go, once the slowest worker has left room: the ring from
        the end of what is written to its own end or the room's; None once the run is
        over (stopped, or every worker gone)."""
        words, size = self._words, self.size
        readers = range(_FIRST_READER, _FIRST_READER + self.n)
        wait = _WAIT_LEAST_S
        while words[_STATE] == _RUNNING:
            slowest = min(words[i] for i in readers)
            if slowest == _GONE:
                return None  # every worker has stopped reading
            room = size - (self._written - slowest)
            if room > 0:
                at = self._written % size
                return memoryview(self._data)[at : at + min(room, size - at)]
            time.sleep(wait)
            wait = min(wait * 2, _WAIT_MOST_S)
        return None

    def _wrote(self, n: int) -> None:
        self._written += n
        self._words[_WRITTEN] = self._written

    def _pump_some(self, source: BinaryIO, fd: int | None) -> None:
        while (room := self._room()) is not None:
            piece = room[:_READ_MOST]
            try:
                if fd is None:
                    got = _read_into(source, piece)
                elif select.select([fd], [], [], _POLL_S)[0]:
                    got = os.readv(fd, [piece])
                else:
                    continue  # nothing yet: whether the run goes on, then wait again
            except OSError as exc:
                self._fail(exc)
                return
            if not got:
                self._words[_STATE] = _ENDED
                return
            self._wrote(got)

    def _pump_messages(self, messages: Iterator[bytes]) -> None:
        try:
            for message in messages:
                if not (self._put(len(message).to_bytes(8, "little")) and self._put(message)):
                    return  # the run is over
            if self._words[_STATE] == _RUNNING:
                self._words[_STATE] = _ENDED
        finally:
            close = getattr(messages, "close", None)
            if close is not None:
                close()  # (a generator: its file closed now)

    def _put(self, data: bytes) -> bool:
        """Write ``data`` as room comes; False if the run ended first."""
        at = 0
        while at < len(data):
            room = self._room()
            if room is None:
                return False
            n = min(len(room), len(data) - at)
            room[:n] = data[at : at + n]
            self._wrote(n)
            at += n
        return True

    def _fail(self, exc: OSError) -> None:
        text = (exc.strerror or str(exc)).encode("utf-8", "replace")[: _MESSAGE_MOST - 1]
        at = self._message_at
        self._page[at : at + len(text) + 1] = text + b"\0"
        self._words[_ERRNO] = exc.errno or 0
        self._words[_STATE] = _FAILED

    # -- a worker ---------------------------------------------------------------------

    def reader(self, k: int, before_wait: Callable[[], None] | None = None) -> RingFile:
        """Worker ``k``'s file of the source's bytes."""
        return RingFile(self, k, before_wait)

    def _error(self) -> OSError:
        page = self._page
        at = self._message_at
        text = page[at : page.find(b"\0", at)].decode("utf-8", "replace")
        errno = int(self._words[_ERRNO])
        return OSError(errno, text) if errno else OSError(text)


def _read_into(source: BinaryIO, view: memoryview) -> int:
    """What one read of ``source`` gives (a pipe's: what is there), into ``view``."""
    readinto1 = getattr(source, "readinto1", None)
    if readinto1 is not None:
        return int(readinto1(view) or 0)
    data = source.read(len(view)) or b""
    view[: len(data)] = data
    return len(data)


class RingFile:
    """One worker's reading of a :class:`Ring`: ``read`` as a pipe's (what is there, at
    least a byte; ``b""`` at the end), raising the parent's read error where it was."""

    def __init__(self, ring: Ring, k: int, before_wait: Callable[[], None] | None) -> None:
        self.name = ring.name
        self.messages = ring.messages  # read by message (the reader's stream asks)
        self._ring = ring
        self._k = _FIRST_READER + k
        self._before_wait = before_wait
        self._at = 0  # bytes read

    def read(self, size: int = -1) -> bytes:
        ring, words = self._ring, self._ring._words
        wait = _WAIT_LEAST_S
        while True:
            written = words[_WRITTEN]
            if written > self._at:
                break
            state = words[_STATE]
            if state != _RUNNING and words[_WRITTEN] == self._at:
                if state == _FAILED:
                    raise ring._error()
                return b""  # the end (or the run was stopped)
            if self._before_wait is not None:
                self._before_wait()
            time.sleep(wait)
            wait = min(wait * 2, _WAIT_MOST_S)
        at = self._at % ring.size
        n = min(written - self._at, ring.size - at)
        if 0 <= size < n:
            n = size
        data = ring._data[at : at + n]
        self._at += n
        words[self._k] = self._at
        return data

    def message(self) -> bytes:
        """The next message of a ring of messages; b"" once there are no more."""
        head = self._exactly(8)
        return self._exactly(int.from_bytes(head, "little")) if head else b""

    def _exactly(self, n: int) -> bytes:
        parts = []
        while n > 0:
            part = self.read(n)
            if not part:
                return b""
            parts.append(part)
            n -= len(part)
        return b"".join(parts)

    def close(self) -> None:
        """Read no more: the pump need not wait for this worker."""
        self._ring.leave(self._k - _FIRST_READER)


class RingPart:
    """One gzip file of a series, read from a worker's :class:`RingFile` of the series'
    messages: its messages up to the empty one that ends them (then ``b""``, as at the
    end of a ring of one file's)."""

    messages = True  # read by message (the reader's stream asks)

    def __init__(self, given: RingFile, name: str) -> None:
        self.name = name
        self._given = given
        self._ended = False

    def message(self) -> bytes:
        if self._ended:
            return b""
        message = self._given.message()
        if not message:
            self._ended = True
        return message

    def pass_rest(self) -> None:
        """Read past what is left of this file's messages (its reader stopped before the
        end of the data, at damage), so that the next file's start where they start."""
        while not self._ended:
            self.message()


def read_once(source: object) -> bool:
    """Whether ``source`` is a capture that can be read once only: standard input
    (``"-"``), a path naming a pipe, FIFO, socket or character device (``/dev/stdin``,
    ``<(zcat x.gz)``), or a file object."""
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        if path == "-":
            return True
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return False  # the reader says what is wrong with it
        return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)
    return hasattr(source, "read")
