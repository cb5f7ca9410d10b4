"""Streamed analysis: rows go to the CSV files as connections retire.

Theory of operation
-------------------
``api.analyze`` keeps every row until the end to return DataFrames: its memory
grows with the capture. The command line does not need the frames:
``analyze_to_csv`` replays the capture with the tracker's ``on_retire`` hook,
turns each retired connection into the lines of CSV of its rows (the text
``Analysis.to_csv`` writes for them, with no frame made: ``rows.RowTexts``,
which does for a connection what ``analyze`` does, but to text); every
``batch`` connections the lines are appended to ``NAME.csv`` and the connection
rows handed to a ``report.SummaryBuilder`` for the text summary. Closed
connections are frozen while they wait out their TIME_WAIT and late-segment
windows (``freeze.py``): their rows are made early and they leave memory for a
spill file. Memory then follows the connections open at one time, not the
capture's length.

Rows are written in the order connections retire, as Zeek writes conn.log:
a connection is retired when it has been closed for ``2 * msl`` plus the
late-segment window, idle for ``idle_timeout``, replaced by a new incarnation,
or at the capture's end (those in ``conn_id`` order). ``api.load_tables`` and
a sort by ``conn_id`` give the capture order back. The tables' contents are
those ``Analysis.to_csv`` writes for the same capture.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import gc
import multiprocessing
import multiprocessing.connection
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from .api import TABLES, connection_rows, dropped_warning, skipped_by_reason, table_dtypes
from .config import Config
from .csvtext import EOL, field_prefix, header_line, prefix_records
from .fanout import RING_BYTES, Ring, read_once
from .findings import Finding
from .freeze import SUMMARY_COLUMNS, Batch, RowFreezer, SpillError
from .reader import (
    CaptureError,
    CaptureReader,
    ReadStats,
    inflated_messages,
    open_raw,
    opened_stream,
    series_messages,
    stream_messages,
)
from .replay import Replay, Series, Source, open_source, replay
from .report import SummaryBuilder, line_format
from .rows import RowTexts
from .shard import Ledger, ShardIds
from .tracker import Connection

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OutputError", "Streamed", "WorkerError", "analyze_read_back", "analyze_to_csv"]


class OutputError(Exception):
    """A result file could not be written (the message names it)."""


class WorkerError(Exception):
    """A worker process of a sharded run failed for another reason, or died."""


@dataclass
class Streamed:
    """What a streamed analysis leaves besides its CSV files."""

    source: str
    summary: str
    paths: list[Path]
    frames: int
    segments: int
    connections: int
    findings: int
    skipped: dict[str, int]
    findings_by_code: dict[str, int] = field(default_factory=dict)  # code -> findings
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False
    expired: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    out_of_order: int = 0
    frozen: int = 0  # closed connections frozen (freeze.py)
    thawed: int = 0  # of those, brought back by a later segment
    spilled_bytes: int = 0  # written to the spill files
    spill_peak_bytes: int = 0  # held on disk at most at one time
    capture_end_ns: int = 0  # the time of the last segment read (Replay.capture_end_ns)


class _CsvTables:
    """Appends batches of lines to ``NAME.csv`` per table in ``directory``.

    ``shared`` tables are appended to by several processes at once (a sharded
    run): the parent writes the headers first (``start``), and each batch is
    then written whole, under an exclusive lock, at the end of the file. With
    ``capture``, every table has a leading ``capture`` column holding it (a
    batch's tables: ``batch.stream_many``), put in front of each record.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, shared: bool = False, capture: str | None = None
    ) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot write to {directory}: {exc}") from exc
        self.paths = {name: self.directory / f"{name}.csv" for name in TABLES}
        self.formats = {name: line_format(columns) for name, columns in TABLES.items()}
        self._headers = {
            name: header_line(list(table_dtypes(name, capture=capture is not None)))
            for name in TABLES
        }
        self._prefix = b"" if capture is None else field_prefix(capture)
        self._shared = shared
        self._started: set[str] = set(TABLES) if shared else set()

    def start(self) -> None:
        """Write every table's header (a new file each)."""
        for name in TABLES:
            self.write(name, [])

    def write(self, name: str, lines: list[str]) -> None:
        """Append ``lines`` (each without its end; one may hold several, joined by
        ``EOL``) to table ``name``; the header first."""
        path = self.paths[name]
        data = (EOL.join(lines) + EOL).encode() if lines else b""
        if self._prefix:
            data = prefix_records(data, self._prefix)[0]
        try:
            if self._shared:
                if data:
                    _append_whole(path, data)
            else:
                first = name not in self._started
                if first:
                    data = self._headers[name].encode() + data
                with path.open("wb" if first else "ab") as f:
                    f.write(data)
        except OSError as exc:
            raise OutputError(f"cannot write to {path}: {exc}") from exc
        self._started.add(name)

    def started(self, name: str) -> bool:
        return name in self._started


def _append_whole(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` in one piece, whatever other processes append."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)  # releases the lock


class _Sink:
    """Turns retired connections into lines of the tables and into the summary.

    Each row becomes its CSV line at once (the text ``report.frame_csv``
    writes for the typed frame), straight from the connection
    (``rows.RowTexts.made``); a connection's lines of one table are kept
    joined, as one text. Every ``batch`` connections (``freeze.Batch`` gathers
    them) the texts are appended to the files and the connection rows (the
    columns the summary reads) handed to the summary
    (``SummaryBuilder.add_rows``). Connections are retired through
    the freezer (``freeze.RowFreezer``): a frozen connection's texts other than
    its connection row's are made when it freezes.
    """

    def __init__(
        self, config: Config, tables: _CsvTables | None, batch: int, limit: int, examples: int
    ) -> None:
        self.config = config
        self.tables = tables
        self.batch = batch
        self.summary = SummaryBuilder(limit, examples)
        self._gathered = Batch(TABLES, batch, self.flush)
        emit = self._gathered.add
        if tables is None:
            self.freezer = RowFreezer(self.made, None, None, emit)
        else:
            # The rows made straight as text (compiled, with no call back to this class).
            texts = RowTexts(tables.formats, config)
            line = tables.formats["connections"]
            self.freezer = RowFreezer(texts.made_retired, texts.transitions, line, emit)

    def made(
        self, conn: Connection
    ) -> tuple[tuple[Any, ...], list[str], dict[str, str], list[Finding]]:
        """Without output (the summary alone): the values of a retired connection's row
        the summary reads, no fields nor texts, its findings (``freeze.MadeFn``)."""
        rows, found = connection_rows(conn, self.config)
        row = rows["connections"][0]
        return tuple([row[c] for c in SUMMARY_COLUMNS]), [], {}, found

    def flush(self) -> None:
        gathered = self._gathered
        self.summary.add_rows(gathered.rows, gathered.findings)
        tables = self.tables
        if tables is not None:
            for name, lines in gathered.lines.items():
                if lines or not tables.started(name):
                    tables.write(name, lines)
        gathered.clear()

    def spill_counts(self) -> tuple[int, int, int, int]:
        """Connections frozen and thawed, bytes spilled, and the most held at one time."""
        fz = self.freezer
        return fz.frozen, fz.thawed, fz.spill.size, fz.spill.peak

    def replay(self, source: Any, shard: ShardIds | None = None) -> Replay:
        """Replay ``source`` into this sink (all of it, or one shard's flows)."""
        try:
            with _no_cycle_collection():
                played = replay(
                    source,
                    self.config,
                    on_retire=self.freezer.retire_live,
                    freezer=self.freezer,
                    shard=shard,
                )
        except SpillError as exc:
            raise OutputError(str(exc)) from exc
        finally:
            self.freezer.close()
            self._gathered.close()
        self.flush()
        return played


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Keep Python's cycle collector off while a capture is replayed.

    The replay makes no reference cycles (tests/test_stream.py checks, on every
    capture, with and without freezing, that the collector finds nothing after
    a streamed analysis): what it frees is freed by reference counting. The
    collector would only walk objects still alive: each young one once or twice
    (about 1 s of 15 s of CPU on the 1.5M-packet capture of bench/RESULTS.md),
    and every connection held in each full collection. It is turned back on
    afterwards (if it was on).
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def analyze_to_csv(
    source: Source | Sequence[str | os.PathLike[str]],
    config: Config,
    directory: str | os.PathLike[str] | None,
    *,
    batch: int = 500,
    limit: int = 20,
    examples: int = 3,
    jobs: int = 1,
    capture: str | None = None,
) -> Streamed:
    """Analyze ``source``, appending each table to ``directory/NAME.csv`` as it goes.

    With ``directory`` None only the summary is made. With ``jobs`` above 1, that
    many worker processes each take a shard of the flows (see shard.py): capture
    files named by path (one, or a list: a rotated series) each worker reads
    itself, but a capture read once only (standard input, a pipe, a file object)
    the parent reads for them all, and a gzip file it inflates for them all
    (fanout.py). The rows are the same, the order in which they are appended is
    not. Raises
    ``reader.CaptureError`` when the capture cannot be read at all and
    ``OutputError`` when a result file cannot be written. With ``capture``, every table
    has a leading ``capture`` column holding it (a batch's tables).
    """
    if sharded(source, jobs):
        shared = cast("str | os.PathLike[str] | Sequence[str | os.PathLike[str]]", source)
        run = _Run(shared, config, directory, batch, limit, examples, capture)
        return _analyze_sharded(run, jobs)
    tables = _CsvTables(directory, capture=capture) if directory is not None else None
    sink = _Sink(config, tables, batch, limit, examples)
    played = sink.replay(source)
    stats = played.stats
    return _streamed(
        played.name,
        sink.summary,
        tables,
        stats,
        played.segments,
        played.expired,
        config,
        sink.spill_counts(),
        played.capture_end_ns,
    )


def analyze_read_back(
    source: Source | Sequence[str | os.PathLike[str]],
    config: Config,
    reads: Mapping[str, Sequence[str] | None],
    directory: str | os.PathLike[str] | None = None,
    *,
    jobs: int = 1,
) -> tuple[Streamed, dict[str, pd.DataFrame]]:
    """``analyze_to_csv`` into ``directory`` (None: a scratch directory, removed after),
    then the tables of ``reads`` read back (``api.read_table``: those columns; None:
    all), in the order their rows were written. For what needs some of the tables
    whole (``census``, ``analyze --html``): memory follows those columns, not the
    capture's connections kept whole."""
    from .api import read_table

    with tempfile.TemporaryDirectory(prefix="tcpflow-tables-") as scratch:
        where = Path(directory if directory is not None else scratch)
        done = analyze_to_csv(source, config, where, jobs=jobs)
        tables = {
            name: read_table(where / f"{name}.csv", name, usecols)
            for name, usecols in reads.items()
        }
    return done, tables


def _streamed(
    name: str,
    summary: SummaryBuilder,
    tables: _CsvTables | None,
    stats: ReadStats,
    segments: int,
    expired: dict[str, int],
    config: Config,
    spill: tuple[int, int, int, int],
    capture_end_ns: int,
) -> Streamed:
    warnings = list(stats.warnings)
    if expired:
        warnings.append(dropped_warning(name, expired, config))
    skipped = skipped_by_reason(stats.skipped, stats.bad_records)
    text = summary.text(name, skipped, stats.frames, segments, warnings, stats.duplicates)
    frozen, thawed, spilled, peak = spill
    return Streamed(
        source=name,
        summary=text,
        paths=list(tables.paths.values()) if tables is not None else [],
        frames=stats.frames,
        segments=segments,
        connections=summary.connections,
        findings=summary.findings,
        skipped=skipped,
        findings_by_code=summary.findings_by_code,
        warnings=warnings,
        truncated=stats.truncated,
        expired=expired,
        duplicates=stats.duplicates,
        out_of_order=stats.out_of_order,
        frozen=frozen,
        thawed=thawed,
        spilled_bytes=spilled,
        spill_peak_bytes=peak,
        capture_end_ns=capture_end_ns,
    )


# -- sharded runs (shard.py) --------------------------------------------------


def sharded(source: object, jobs: int) -> bool:
    """Whether ``jobs`` workers read ``source`` (capture files named by path, or one the
    parent reads for them), or one process."""
    return jobs > 1 and (_shardable(source) or read_once(source))


def _shardable(source: object) -> bool:
    """Capture files named by path: one, or a series (not standard input or a stream)."""
    paths = source if isinstance(source, list | tuple) else [source]
    return bool(paths) and all(
        isinstance(p, str | os.PathLike) and os.fspath(p) != "-" and os.path.isfile(p)
        for p in paths
    )


@dataclass
class _ShardResult:
    """What a worker sends back to the parent."""

    summary: SummaryBuilder
    stats: ReadStats
    segments: int
    expired: dict[str, int]
    spill: tuple[int, int, int, int]
    capture_end_ns: int


@dataclass(frozen=True)
class _Run:
    """What every worker of a sharded run is told."""

    # A path; a series: a list; a capture read once only: the Ring the parent fills.
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Ring
    config: Config
    directory: str | os.PathLike[str] | None
    batch: int
    limit: int
    examples: int
    capture: str | None = None  # each table's leading capture column (a batch's)


def _analyze_sharded(run: _Run, jobs: int) -> Streamed:
    source, config, directory = run.source, run.config, run.directory
    name, ring, start = _parent_reads(source, jobs)
    if ring is not None:
        run = dataclasses.replace(run, source=ring)
    tables = _CsvTables(directory, capture=run.capture) if directory is not None else None
    if tables is not None:
        tables.start()  # the headers
    run = dataclasses.replace(run, config=shared_config(config, jobs))
    results = run_workers(jobs, _shard_worker, (run,), "shard", ring, start)
    first, *others = results
    summary = first.summary
    expired: Counter[str] = Counter(first.expired)
    for other in others:
        summary.merge(other.summary)
        expired.update(other.expired)
    # Spill counts summed (the peak: at most the sum of the workers' peaks).
    spills = zip(*(r.spill for r in results), strict=True)
    frozen, thawed, spilled, peak = (sum(v) for v in spills)
    segments = sum(r.segments for r in results)
    # Every worker read every frame: the reading statistics are any one's.
    return _streamed(
        name,
        summary,
        tables,
        first.stats,
        segments,
        dict(expired),
        config,
        (frozen, thawed, spilled, peak),
        # Every worker's clock saw every segment's time (the others' as ticks).
        max(r.capture_end_ns for r in results),
    )


def _parent_reads(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | Ring, jobs: int
) -> tuple[str, Ring | None, Callable[[], None] | None]:
    """The capture's name; and for a capture the parent reads for the workers
    (fanout.py), the ring they read and what starts the parent's reading of it
    (else None and None).

    A capture that cannot be read fails here, before any fork: for a read-once
    source, what one process would fail on at once (its first piece, read here
    through the reader's stream); what else makes it unreadable each worker finds,
    as one process would.
    """
    if not read_once(source):
        with open_source(
            cast("str | os.PathLike[str] | Sequence[str | os.PathLike[str]]", source)
        ) as reader:
            name = reader.name
            gzipped = isinstance(reader, CaptureReader) and reader.compressed
            plan = reader.plan() if isinstance(reader, Series) else None
        if gzipped:
            path = cast("str | os.PathLike[str]", source)
            ring = Ring(jobs, name, RING_BYTES, messages=True)
            return name, ring, functools.partial(ring.start_messages, inflated_messages(path))
        if plan is not None and plan.inflated:
            # A series' gzip files, in the order it reads them; its other files each
            # worker reads itself (replay.Series).
            ring = Ring(jobs, name, RING_BYTES, messages=True, series=plan)
            inflated = [plan.paths[i] for i in plan.order if i in plan.inflated]
            return name, ring, functools.partial(ring.start_messages, series_messages(inflated))
        return name, None, None  # each worker reads the file(s) itself
    raw, name, owned = open_raw(cast("str | os.PathLike[str] | BinaryIO", source))
    # Standard input or a pipe named by path: read through its descriptor (no buffer,
    # nor its lock, between the pump and the data).
    fd = raw.fileno() if isinstance(source, str | os.PathLike) else None
    try:
        unbuffered = raw if fd is None else open(fd, "rb", buffering=0, closefd=False)  # noqa: SIM115 - closes nothing
        opened = opened_stream(unbuffered, name)
    except BaseException:
        if owned:
            raw.close()
        raise
    if opened.gzipped:  # inflated once for all the workers, as a gzip file is
        ring = Ring(jobs, name, RING_BYTES, messages=True)
        messages = stream_messages(opened, raw.close if owned else None)
        return name, ring, functools.partial(ring.start_messages, messages)
    ring = Ring(jobs, name, RING_BYTES)
    return name, ring, functools.partial(ring.start, raw, owned, fd, opened.buf)


def _collect(
    workers: list[tuple[Any, Any]],
    ledger: Ledger,
    ring: Ring | None = None,
    enough: Callable[[Any], bool] | None = None,
) -> list[Any]:
    """Each worker's result; the first failure (after stopping the others) is raised.
    A worker done (or dead) reads no more of the ``ring``. A result ``enough`` says
    is enough is returned alone at once (the others still running: show.py)."""
    results: dict[int, Any] = {}
    failure: BaseException | None = None
    pending = dict(enumerate(workers))
    while pending and failure is None:
        ready = multiprocessing.connection.wait([receive for _, receive in pending.values()])
        for k, (process, receive) in list(pending.items()):
            if receive not in ready:
                continue
            try:
                kind, payload = receive.recv()
            except EOFError:
                process.join()
                kind, payload = "died", f"worker {k} stopped (exit code {process.exitcode})"
            except Exception as exc:  # a result that does not unpickle: a bug, said plainly
                kind, payload = "error", f"worker {k} sent what cannot be read: {exc!r}"
            del pending[k]
            if ring is not None:
                ring.leave(k)
            process.join()
            if kind == "ok":
                if enough is not None and enough(payload):
                    return [payload]
                results[k] = payload
            else:
                ledger.finish(k)  # no one waits for a dead worker
                failure = _failure(kind, payload)
                break
    if failure is not None:
        for process, _ in pending.values():
            process.terminate()
        for process, _ in pending.values():
            process.join()
        raise failure
    return [results[k] for k in range(len(workers))]


def _failure(kind: str, message: str) -> BaseException:
    if kind == "capture":
        return CaptureError(message)
    if kind == "output":
        return OutputError(message)
    return WorkerError(message)


def shared_config(config: Config, jobs: int) -> Config:
    """``config`` for each of ``jobs`` workers: ``max_connections`` bounds the connections
    held by all of them together."""
    return dataclasses.replace(config, max_connections=max(1, config.max_connections // jobs))


def run_workers(
    jobs: int,
    target: Callable[..., None],
    args: tuple[Any, ...],
    name: str,
    ring: Ring | None,
    start: Callable[[], None] | None,
    enough: Callable[[Any], bool] | None = None,
) -> list[Any]:
    """Run ``jobs`` forked workers of one sharded run: worker ``k`` runs
    ``target(k, ledger, *args, send)`` (``send``: its end of a pipe to the parent, for
    ``report``). ``ring`` and ``start`` are ``_parent_reads``'s: the ring the parent
    fills for them, started once they are forked. Their results (``_collect``: the
    first failure raised; one ``enough`` says is enough returned alone); whatever
    workers still run at the end are stopped, and the parent's reading with them."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or each worker would write what is buffered once more
    context = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory(prefix=f"tcpflow-{name}-") as scratch:
        ledger = Ledger(jobs, scratch)
        workers = []
        for k in range(jobs):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=target, args=(k, ledger, *args, send), name=f"tcpflow-analyzer {name} {k}"
            )
            process.start()
            send.close()
            workers.append((process, receive))
        if start is not None:
            start()
        try:
            return _collect(workers, ledger, ring, enough)
        finally:
            for process, receive in workers:
                if process.is_alive():
                    process.terminate()
                process.join()
                receive.close()
            if ring is not None:
                ring.stop()


@contextlib.contextmanager
def shard_source(ledger: Ledger, k: int, source: Any) -> Iterator[tuple[ShardIds, Any]]:
    """Worker ``k``'s side of the ledger, and what it reads: ``source``, or for a capture
    the parent reads for the workers (a ``Ring``) its reader, which publishes how far
    it has got before it waits for bytes (fanout.py). A worker that fails tells the
    others not to wait for it; one whose replay ends has told them (``replay.replay``:
    unless it stopped early, show.py)."""
    ids = ShardIds(ledger, k)
    given = None
    if isinstance(source, Ring):
        given = source.reader(k, ids.publish)
        plan = source.series
        source = given if plan is None else Series(plan.paths, (plan, given))
    try:
        yield ids, source
    except BaseException:
        ledger.finish(k)
        raise
    finally:
        if given is not None:
            given.close()
        ids.close()


def report(k: int, send: Any, work: Callable[[], Any]) -> None:
    """Worker ``k``'s end: ``work()``'s result sent as ("ok", result), or its failure's
    kind and text, which the parent raises (``_collect``)."""
    message: tuple[str, Any]
    try:
        message = ("ok", work())
    except CaptureError as exc:
        message = ("capture", str(exc))
    except OutputError as exc:
        message = ("output", str(exc))
    except BaseException as exc:  # reported by the parent, which raises it
        message = ("error", f"shard {k}: {type(exc).__name__}: {exc}")
    send.send(message)
    send.close()


def _shard_worker(k: int, ledger: Ledger, run: _Run, send: Any) -> None:
    """Worker ``k``: replay shard ``k`` into the shared tables; send the result or the error."""
    report(k, send, functools.partial(_shard_work, k, ledger, run))


def _shard_work(k: int, ledger: Ledger, run: _Run) -> _ShardResult:
    with shard_source(ledger, k, run.source) as (ids, source):
        tables = (
            _CsvTables(run.directory, shared=True, capture=run.capture)
            if run.directory is not None
            else None
        )
        sink = _Sink(run.config, tables, run.batch, run.limit, run.examples)
        played = sink.replay(source, ids)
    return _ShardResult(
        sink.summary,
        played.stats,
        played.segments,
        played.expired,
        sink.spill_counts(),
        played.capture_end_ns,
    )
