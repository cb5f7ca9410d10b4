"""Many captures at once: find them, analyze them in worker processes, stack the tables.

Theory of operation
-------------------
``find_captures`` expands the user's PATH arguments (files, directories
searched recursively, glob patterns) into capture files, in a stable order.
``analyze_many`` runs ``analyze`` on each in a pool of worker processes; every
worker returns its tables (or the error that stopped it), so one bad file
never stops the batch: it gets its row in the ``captures`` table with the
message. The per-capture tables are stacked with a leading ``capture`` column;
``conn_id`` stays the capture's own, so ``(capture, conn_id)`` names a
connection.

The command line does not need the frames: ``stream_many`` runs the streamed
analysis (``stream.analyze_to_csv``, what ``analyze --out`` runs) on each
capture, each record written with its ``capture`` field in front (a line that
ends inside a quoted field is continued, not given a field:
``csvtext.prefix_records``). One capture, or one series, is written straight
into the batch's ``NAME.csv``; several each into a directory of their own,
beside the output, appended to the batch's tables as soon as the captures
before it are done, then removed. Memory then follows one capture's open connections per
worker, not the rows of the whole batch; each capture's rows are those
``analyze --out`` writes for it, in the same order (the order its connections
retire).
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .api import TABLES, analyze_rows, read_typed, table_dtypes
from .config import Config
from .csvtext import EOL, field_prefix, header_line, prefix_records
from .reader import CaptureError
from .report import line_format, typed_frame
from .stream import OutputError, analyze_to_csv

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CAPTURE_COLUMNS",
    "BatchResult",
    "StreamedBatch",
    "analyze_many",
    "analyze_series",
    "csv_to_parquet",
    "find_captures",
    "stream_many",
    "work_directory",
]

# File names taken from a directory; anything given by name is taken whatever its name.
_SUFFIXES = (".pcap", ".pcapng", ".cap", ".dmp", ".pcap.gz", ".pcapng.gz", ".cap.gz")

CAPTURE_COLUMNS: dict[str, str] = {
    "capture": "string",
    "status": "string",  # ok | warning | error
    "error": "string",
    "frames": "Int64",
    "segments": "Int64",
    "connections": "Int64",
    "skipped": "Int64",
    "skipped_by_reason": "string",  # reason=count;...
    "findings": "Int64",
    "findings_by_code": "string",  # code=count;...
    "duplicates": "Int64",  # frames captured twice (byte-identical within 1 ms)
    "out_of_order": "Int64",  # frames timed before the previous one of their interface
    "warnings": "string",  # joined by " | "
    "seconds": "float64",  # wall time spent analyzing this capture
}


def find_captures(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files named, captures found under directories (recursively), and glob matches."""
    found: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            found.append(p)

    for raw in paths:
        text = os.fspath(raw)
        p = Path(text)
        if p.is_dir():
            for sub in sorted(p.rglob("*")):
                if sub.is_file() and sub.name.lower().endswith(_SUFFIXES):
                    add(sub)
        elif p.exists() or not glob.has_magic(text):
            add(p)  # a missing file is reported as that capture's error
        else:
            for match in sorted(glob.glob(text, recursive=True)):
                mp = Path(match)
                if mp.is_file():
                    add(mp)
    return found


@dataclass
class BatchResult:
    """Stacked tables of many captures, plus one row per capture in ``captures``."""

    tables: dict[str, pd.DataFrame]
    captures: pd.DataFrame
    failed: int = 0

    @property
    def connections(self) -> pd.DataFrame:
        """Every capture's connections, with a leading ``capture`` column."""
        return self.tables["connections"]

    @property
    def transitions(self) -> pd.DataFrame:
        """Every capture's transitions, with a leading ``capture`` column."""
        return self.tables["transitions"]

    def write(self, directory: str | os.PathLike[str], fmt: str = "csv") -> list[Path]:
        """Write every table and captures as ``NAME.csv`` (or ``.parquet``)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, df in {**self.tables, "captures": self.captures}.items():
            path = out / f"{name}.{fmt}"
            if fmt == "parquet":
                df.to_parquet(path, index=False)
            else:
                df.to_csv(path, index=False)
            paths.append(path)
        return paths


@dataclass
class _Outcome:
    row: dict[str, Any]
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _joined(counts: dict[str, int]) -> str:
    return ";".join(f"{k}={v}" for k, v in sorted(counts.items()))


def _one(path: str | list[str], config: Config) -> _Outcome:
    """Analyze one capture (or one series) in a worker; never raises."""
    start = time.perf_counter()
    row = _new_row(path)
    try:
        result = analyze_rows(path, config)
    except Exception as exc:
        _failed(row, exc)
    else:
        by_code = dict(Counter(f.code.value for f in result.finding_records))
        _fill(
            row,
            result.frames,
            result.segments,
            len(result.tables["connections"]),
            result.skipped,
            by_code,
            result.duplicates,
            result.out_of_order,
            result.warnings,
        )
        row["seconds"] = time.perf_counter() - start
        return _Outcome(row, result.tables)
    row["seconds"] = time.perf_counter() - start
    return _Outcome(row)


def _new_row(path: str | list[str]) -> dict[str, Any]:
    """A capture's row, empty but for its name (a series: its files joined by " + ")."""
    row: dict[str, Any] = {name: None for name in CAPTURE_COLUMNS}
    row["capture"] = path if isinstance(path, str) else " + ".join(path)
    return row


def _failed(row: dict[str, Any], exc: Exception) -> None:
    """Mark ``row`` as the capture that ``exc`` stopped."""
    if isinstance(exc, CaptureError | OutputError):
        row.update(status="error", error=str(exc))
    else:  # a bug must not stop the batch; say what it was
        row.update(
            status="error", error=f"{row['capture']}: internal error: {type(exc).__name__}: {exc}"
        )


def _fill(
    row: dict[str, Any],
    frames: int,
    segments: int,
    connections: int,
    skipped: dict[str, int],
    by_code: dict[str, int],
    duplicates: int,
    out_of_order: int,
    warnings: list[str],
) -> None:
    """Fill the row of a capture analyzed to its end."""
    row.update(
        status="warning" if warnings else "ok",
        error=None,
        frames=frames,
        segments=segments,
        connections=connections,
        skipped=sum(skipped.values()),
        skipped_by_reason=_joined(skipped),
        findings=sum(by_code.values()),
        findings_by_code=_joined(by_code),
        duplicates=duplicates,
        out_of_order=out_of_order,
        warnings=" | ".join(warnings),
    )


def analyze_many(
    sources: Sequence[str | os.PathLike[str]],
    *,
    jobs: int | None = None,
    msl: float = 30.0,
    config: Config | None = None,
    progress: Callable[[int, int], None] | None = None,
    scheduler: str | None = None,
) -> BatchResult:
    """Analyze every capture in ``sources`` with ``jobs`` worker processes (default: all cores).

    ``progress(done, total)`` is called as captures finish. Tables come back in
    the order of ``sources`` whatever order the workers finish in. With
    ``scheduler`` (a Dask scheduler address, ``pip install 'tcpflow-analyzer[dask]'``)
    the captures are analyzed on that Dask cluster instead: each worker must be
    able to read the paths.
    """
    paths = [os.fspath(p) for p in sources]
    cfg = config if config is not None else Config(msl=msl)
    jobs = max(1, jobs or os.cpu_count() or 1)
    outcomes: list[_Outcome | None] = [None] * len(paths)
    if scheduler is not None:
        _on_dask(scheduler, paths, cfg, outcomes, progress)
    elif jobs == 1 or len(paths) <= 1:
        for i, path in enumerate(paths):
            outcomes[i] = _one(path, cfg)
            if progress:
                progress(i + 1, len(paths))
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures: dict[Future[_Outcome], int] = {
                pool.submit(_one, path, cfg): i for i, path in enumerate(paths)
            }
            for done, fut in enumerate(as_completed(futures), 1):
                outcomes[futures[fut]] = fut.result()
                if progress:
                    progress(done, len(paths))
    return _stack([o for o in outcomes if o is not None])


def _on_dask(
    scheduler: str,
    paths: list[str],
    cfg: Config,
    outcomes: list[_Outcome | None],
    progress: Callable[[int, int], None] | None,
) -> None:
    """Run ``_one`` for every path on a Dask cluster, filling ``outcomes`` in order."""
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError as exc:
        raise RuntimeError(
            "a Dask scheduler needs the dask extra: pip install 'tcpflow-analyzer[dask]'"
        ) from exc
    with Client(scheduler) as client:  # type: ignore[no-untyped-call]
        futures = client.map(_one, paths, config=cfg, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for done, fut in enumerate(dask_completed(futures), 1):  # type: ignore[no-untyped-call]
            outcomes[index[fut.key]] = fut.result()
            if progress:
                progress(done, len(paths))


def analyze_series(
    sources: Sequence[str | os.PathLike[str]], *, config: Config | None = None
) -> BatchResult:
    """One capture rotated into several files, analyzed as one stream (``batch --series``)."""
    outcome = _one([os.fspath(p) for p in sources], config or Config())
    return _stack([outcome])


def _captures_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The ``captures`` table of these rows (CAPTURE_COLUMNS), typed."""
    import pandas as pd

    return pd.DataFrame(rows, columns=list(CAPTURE_COLUMNS)).astype(CAPTURE_COLUMNS)


def _stack(outcomes: Sequence[_Outcome]) -> BatchResult:

    captures = _captures_frame([o.row for o in outcomes])
    # Rows from every capture, each with its capture, then one typed frame per table.
    tables: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        rows = [
            {"capture": o.row["capture"], **r} for o in outcomes for r in o.tables.get(name, ())
        ]
        tables[name] = typed_frame(rows, table_dtypes(name, capture=True))
    failed = int((captures["status"] == "error").sum())
    return BatchResult(tables, captures, failed)


# -- streamed to CSV (the command line) -------------------------------------------


@dataclass
class StreamedBatch:
    """What ``stream_many`` leaves besides its files."""

    rows: list[dict[str, Any]]  # one per capture: the rows of BatchResult.captures
    paths: list[Path]  # the tables written, then captures.csv
    connections: int
    failed: int = 0

    def captures(self) -> pd.DataFrame:
        """The rows as ``BatchResult.captures`` (imports pandas)."""
        return _captures_frame(self.rows)

    def count(self, status: str) -> int:
        """How many captures have ``status`` (ok, warning or error)."""
        return sum(row["status"] == status for row in self.rows)


def stream_many(
    sources: Sequence[str | os.PathLike[str]],
    directory: str | os.PathLike[str],
    *,
    jobs: int | None = None,
    config: Config | None = None,
    series: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> StreamedBatch:
    """``analyze_many`` (or ``analyze_series``) written straight to ``directory/NAME.csv``.

    Each capture is analyzed by ``stream.analyze_to_csv``, each record written
    with its ``capture`` field in front. A single capture, or a series, goes
    straight into the tables, sharded over ``jobs`` worker processes. Several
    are analyzed by a pool of ``jobs`` processes, each into a directory of its
    own under ``directory``, whose lines are appended to the tables as soon as
    every capture before it is done; then the directory is removed. A capture
    that fails adds no rows, only its row in ``captures.csv``. Raises
    ``stream.OutputError`` when ``directory`` cannot be written.
    """
    paths = [os.fspath(p) for p in sources]
    cfg = config if config is not None else Config()
    jobs = max(1, jobs or os.cpu_count() or 1)
    items: list[str | list[str]] = [paths] if series else list(paths)
    rows: list[dict[str, Any] | None] = [None] * len(items)
    out = Path(directory)
    tables = {name: out / f"{name}.csv" for name in TABLES}
    connections = 0
    if len(items) == 1:
        # One capture, or one series: analyzed straight into the batch's tables, over
        # the cores, each line written with its capture field.
        row = rows[0] = _stream_one(items[0], cfg, str(out), jobs, prefixed=True)
        if row["status"] == "error":
            _Tables(out).close()  # its tables, with no rows
        connections = row["connections"] or 0
        if progress:
            progress(1, 1)
    else:
        work = work_directory(out, ".batch-")
        try:
            with _Tables(out) as appended:
                _stream_pool(items, rows, cfg, jobs, work, appended, progress)
                connections = appended.connections
        finally:
            shutil.rmtree(work, ignore_errors=True)
    # Written with no pandas, as analyze --out writes its tables (imported in this
    # process, pandas would be in every worker forked after, its pages counted in each).
    made = [row for row in rows if row is not None]
    path = out / "captures.csv"
    fmt = line_format(CAPTURE_COLUMNS)
    try:
        with path.open("w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            f.write(fmt.header + "".join(fmt.line(row) + EOL for row in made))
    except OSError as exc:
        raise OutputError(f"cannot write to {path}: {exc}") from exc
    failed = sum(row["status"] == "error" for row in made)
    return StreamedBatch(made, [*tables.values(), path], connections, failed)


def _stream_pool(
    items: list[str | list[str]],
    rows: list[dict[str, Any] | None],
    config: Config,
    jobs: int,
    work: Path,
    tables: _Tables,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Analyze ``items`` with ``jobs`` processes, each into a directory of its own in
    ``work``, filling ``rows``; each item's lines go to ``tables`` once those before it
    are there."""
    if jobs == 1:
        for i, item in enumerate(items):
            row = rows[i] = _stream_one(item, config, str(work / str(i)), 1)
            tables.add(row, work / str(i))
            if progress:
                progress(i + 1, len(items))
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures: dict[Future[dict[str, Any]], int] = {
            pool.submit(_stream_one, item, config, str(work / str(i)), 1): i
            for i, item in enumerate(items)
        }
        ready = 0  # the items whose lines are in the tables
        for done, fut in enumerate(as_completed(futures), 1):
            rows[futures[fut]] = fut.result()
            while ready < len(items) and (finished := rows[ready]) is not None:
                tables.add(finished, work / str(ready))
                ready += 1
            if progress:
                progress(done, len(items))


def work_directory(directory: Path, prefix: str) -> Path:
    """A new directory named ``prefix...`` in ``directory`` (made if need be), for files on
    their way to the output; ``OutputError`` when it cannot be made."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=directory))
    except OSError as exc:
        raise OutputError(f"cannot write to {directory}: {exc}") from exc


def _stream_one(
    path: str | list[str], config: Config, directory: str, jobs: int, prefixed: bool = False
) -> dict[str, Any]:
    """Analyze one capture (or one series) into CSV files in ``directory`` (``prefixed``:
    with the leading capture column); its row. Never raises."""
    start = time.perf_counter()
    row = _new_row(path)
    try:
        capture = row["capture"] if prefixed else None
        done = analyze_to_csv(path, config, directory, jobs=jobs, capture=capture)
    except Exception as exc:
        _failed(row, exc)
    else:
        _fill(
            row,
            done.frames,
            done.segments,
            done.connections,
            done.skipped,
            done.findings_by_code,
            done.duplicates,
            done.out_of_order,
            done.warnings,
        )
    row["seconds"] = time.perf_counter() - start
    return row


class _Tables:
    """The batch's ``NAME.csv`` files, each capture's lines appended in turn."""

    def __init__(self, directory: Path) -> None:
        self.paths = {name: directory / f"{name}.csv" for name in TABLES}
        self.connections = 0
        self._files: dict[str, Any] = {}
        try:
            for name in TABLES:
                f = self._files[name] = self.paths[name].open("wb")
                f.write(header_line(list(table_dtypes(name, capture=True))).encode())
        except OSError as exc:
            self.close()
            raise OutputError(f"cannot write to {directory}: {exc}") from exc

    def __enter__(self) -> _Tables:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for f in self._files.values():
            f.close()

    def add(self, row: dict[str, Any], directory: Path) -> None:
        """Append the lines of the capture of ``row`` (its tables in ``directory``, which
        is then removed); none if it failed."""
        try:
            if row["status"] == "error":
                return
            name = row["capture"]
            prefix = field_prefix(name)
            for table, f in self._files.items():
                source = directory / f"{table}.csv"
                try:
                    lines = _append_lines(source, f, prefix)
                except OSError as exc:
                    raise OutputError(f"cannot write to {self.paths[table]}: {exc}") from exc
                if table == "connections":
                    self.connections += lines
        finally:
            shutil.rmtree(directory, ignore_errors=True)


# Bytes of a table read at a time when appending it to the batch's.
_APPEND_BLOCK = 1 << 20


def _append_lines(source: Path, out: Any, prefix: bytes) -> int:
    """Append the records of the CSV file ``source`` but its header to ``out``, each with
    ``prefix`` in front (``csvtext.prefix_records``, a block of whole lines at a time);
    how many. No file: nothing."""
    count = 0
    inside = False  # in a quoted field, at the start of the next line
    last = b"\n"  # the end of what was written
    try:
        f = source.open("rb")
    except FileNotFoundError:
        return 0
    with f:
        f.readline()  # the header
        rest = b""  # a line begun in the block before
        while True:
            data = f.read(_APPEND_BLOCK)
            block = rest + data
            cut = len(block) if not data else block.rfind(b"\n") + 1
            block, rest = block[:cut], block[cut:]
            if block:
                text, records, inside = prefix_records(block, prefix, inside)
                out.write(text)
                count += records
                last = block
            if not data:
                break
    if not last.endswith((b"\n", b"\r")):
        out.write(EOL.encode())  # a file cut short: the next capture's lines on lines of their own
    return count


# Rows of a table read, and written as one Parquet row group, at a time.
_PARQUET_ROWS = 200_000


def csv_to_parquet(source: Path, directory: Path) -> list[Path]:
    """The batch tables (and ``captures.csv``) in ``source`` as ``NAME.parquet`` in
    ``directory``, with their documented dtypes, each read and written
    ``_PARQUET_ROWS`` rows at a time (a row group each): memory follows that, not the
    table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = {name: table_dtypes(name, capture=True) for name in TABLES}
    written = []
    for name, columns in {**tables, "captures": CAPTURE_COLUMNS}.items():
        path = directory / f"{name}.parquet"
        # The schema of the typed frame (with pandas' own metadata, so that read_parquet
        # gives those dtypes back), whatever the rows.
        schema = pa.Schema.from_pandas(typed_frame([], columns), preserve_index=False)
        chunks = read_typed(source / f"{name}.csv", columns, chunksize=_PARQUET_ROWS)
        try:
            with pq.ParquetWriter(path, schema) as writer:
                for chunk in chunks:
                    table = pa.Table.from_pandas(chunk, schema=schema, preserve_index=False)
                    writer.write_table(table)
        except OSError as exc:
            raise OutputError(f"cannot write to {path}: {exc}") from exc
        written.append(path)
    return written
