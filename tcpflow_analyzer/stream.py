"""Streamed analysis: rows go to the CSV files as connections retire.

Theory of operation
-------------------
``api.analyze`` keeps every row until the end to return DataFrames: its
memory grows with the capture. The command line does not need the frames:
``analyze_to_csv`` replays the capture with the tracker's ``on_retire`` hook,
turns each retired connection into its rows (``api.connection_rows``, the same
function ``analyze`` uses), and every ``batch`` connections makes one typed
frame per table (``report.typed_frame``, the same columns and dtypes) that is
appended to ``NAME.csv`` and handed to a ``report.SummaryBuilder`` for the
text summary. Closed connections are frozen while they wait out their
TIME_WAIT and late-segment windows (``freeze.py``): their rows are made early
and they leave memory for a spill file. Memory then follows the connections
open at one time, not the capture's length.

Rows are written in the order connections retire, as Zeek writes conn.log:
a connection is retired when it has been closed for ``2 * msl`` plus the
late-segment window, idle for ``idle_timeout``, replaced by a new incarnation,
or at the capture's end (those in ``conn_id`` order). ``api.load_tables`` and
a sort by ``conn_id`` give the capture order back. The tables' contents are
those ``Analysis.to_csv`` writes for the same capture.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .api import TABLES, connection_rows, dropped_warning, skipped_by_reason
from .config import Config
from .findings import Finding
from .freeze import RowFreezer, SpillError
from .replay import Source, replay
from .report import SummaryBuilder, typed_frame
from .tracker import Connection

__all__ = ["OutputError", "Streamed", "analyze_to_csv"]


class OutputError(Exception):
    """A result file could not be written (the message names it)."""


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
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False
    expired: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    out_of_order: int = 0
    frozen: int = 0  # closed connections frozen (freeze.py)
    thawed: int = 0  # of those, brought back by a later segment
    spilled_bytes: int = 0  # written to the spill files
    spill_peak_bytes: int = 0  # held on disk at most at one time


class _CsvTables:
    """Appends typed batches to ``NAME.csv`` per table in ``directory``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot write to {directory}: {exc}") from exc
        self.paths = {name: self.directory / f"{name}.csv" for name in TABLES}
        self._started: set[str] = set()

    def write(self, name: str, frame: Any) -> None:
        path = self.paths[name]
        first = name not in self._started
        try:
            frame.to_csv(path, mode="w" if first else "a", header=first, index=False)
        except OSError as exc:
            raise OutputError(f"cannot write to {path}: {exc}") from exc
        self._started.add(name)

    def started(self, name: str) -> bool:
        return name in self._started


@contextlib.contextmanager
def _young_collections_only() -> Iterator[None]:
    """Keep Python's collector to its young generations while a capture is replayed.

    A full collection walks every container object alive; during a replay those
    are the connections held, and the collector ran one every time they grew
    by a quarter: 17 full collections, 1.7 s of 34.5 s on the 1.5M-packet
    capture of bench/RESULTS.md. What the replay frees is freed by reference
    counting (its records hold no cycles); young cycles are still collected.
    The previous thresholds come back afterwards.
    """
    saved = gc.get_threshold()
    gc.set_threshold(saved[0], saved[1], 1_000_000)
    try:
        yield
    finally:
        gc.set_threshold(*saved)


def analyze_to_csv(
    source: Source | Sequence[str | os.PathLike[str]],
    config: Config,
    directory: str | os.PathLike[str] | None,
    *,
    batch: int = 2000,
    limit: int = 20,
    examples: int = 3,
) -> Streamed:
    """Analyze ``source``, appending each table to ``directory/NAME.csv`` as it goes.

    With ``directory`` None only the summary is made. Raises
    ``reader.CaptureError`` when the capture cannot be read at all and
    ``OutputError`` when a result file cannot be written.
    """
    tables = _CsvTables(directory) if directory is not None else None
    summary = SummaryBuilder(limit, examples)
    pending: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    pending_findings: list[Finding] = []
    held = 0

    def flush() -> None:
        nonlocal held
        for name, columns in TABLES.items():
            rows = pending[name]
            if name != "connections" and tables is None:
                rows.clear()
                continue
            frame = typed_frame(rows, columns)
            if name == "connections":
                summary.add(frame, pending_findings)
            if tables is not None and (rows or not tables.started(name)):
                tables.write(name, frame)
            rows.clear()
        pending_findings.clear()
        held = 0

    def emit(rows: dict[str, list[dict[str, Any]]], found: list[Finding]) -> None:
        nonlocal held
        for name, more in rows.items():
            pending[name].extend(more)
        pending_findings.extend(found)
        held += 1
        if held >= batch:
            flush()

    def retire(conn: Connection) -> None:
        emit(*connection_rows(conn, config))

    freezer = RowFreezer(lambda conn: connection_rows(conn, config), emit)
    try:
        with _young_collections_only():
            played = replay(source, config, on_retire=retire, freezer=freezer)
    except SpillError as exc:
        raise OutputError(str(exc)) from exc
    finally:
        freezer.close()
    flush()
    stats = played.stats
    warnings = list(stats.warnings)
    if played.expired:
        warnings.append(dropped_warning(played.name, played.expired, config))
    skipped = skipped_by_reason(stats.skipped, stats.bad_records)
    text = summary.text(
        played.name, skipped, stats.frames, played.segments, warnings, stats.duplicates
    )
    return Streamed(
        source=played.name,
        summary=text,
        paths=list(tables.paths.values()) if tables is not None else [],
        frames=stats.frames,
        segments=played.segments,
        connections=summary.connections,
        findings=summary.findings,
        skipped=skipped,
        warnings=warnings,
        truncated=stats.truncated,
        expired=played.expired,
        duplicates=stats.duplicates,
        out_of_order=stats.out_of_order,
        frozen=freezer.frozen,
        thawed=freezer.thawed,
        spilled_bytes=freezer.spill.size,
        spill_peak_bytes=freezer.spill.peak,
    )
