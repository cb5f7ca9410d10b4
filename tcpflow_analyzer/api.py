"""The library surface: ``analyze(source) -> Analysis``.

Theory of operation
-------------------
``analyze`` wires the layers together: the reader decodes frames into
segments (counting what it skips), the tracker replays them for both
endpoints, the detectors turn each connection's trace (with its previous
incarnation) into findings, and the report layer turns connections and
findings into DataFrames with fixed columns. ``Analysis`` holds the results;
``to_csv`` is the only file output. pandas is imported when the first frame is
made (``report.py``), not with this module: the streamed analysis uses the
rows alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config
from .findings import Finding
from .replay import Source, replay
from .report import (
    ANOMALY_COLUMNS,
    CONNECTION_COLUMNS,
    FINDING_COLUMNS,
    TRANSITION_COLUMNS,
    ZEEK_COLUMNS,
    add_retired,
    anomalies_frame,
    connections_frame,
    findings_frame,
    text_summary,
    transitions_frame,
    write_csv,
    zeek_frame,
)
from .tracker import Connection

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TABLES",
    "Analysis",
    "Rows",
    "analyze",
    "analyze_rows",
    "connection_rows",
    "dropped_warning",
    "load_tables",
    "skipped_by_reason",
]


@dataclass
class Analysis:
    """Results of analyzing one capture."""

    source: str
    connections: pd.DataFrame
    transitions: pd.DataFrame
    anomalies: pd.DataFrame
    zeek: pd.DataFrame
    skipped: dict[str, int]
    frames: int
    segments: int
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False
    config: Config = field(default_factory=Config)
    # One row per finding (report.FINDING_COLUMNS), and the Finding records behind it.
    findings: pd.DataFrame = field(default_factory=lambda: findings_frame([]))
    finding_records: list[Finding] = field(default_factory=list)
    # Half-open connections dropped without a row under memory pressure, by
    # "client_state/server_state" (Config.max_connections).
    expired: dict[str, int] = field(default_factory=dict)
    # Frames byte-identical to one just before (captured twice), and frames timed
    # before the previous frame of their interface (see docs/robustness.md).
    duplicates: int = 0
    out_of_order: int = 0

    def to_csv(self, directory: str | os.PathLike[str]) -> list[Path]:
        """Write connections, transitions, anomalies, zeek_conn and findings CSVs."""
        return write_csv(self.frames_by_name(), directory)

    def frames_by_name(self) -> Mapping[str, pd.DataFrame]:
        """The result tables by their CSV name."""
        return {
            "connections": self.connections,
            "transitions": self.transitions,
            "anomalies": self.anomalies,
            "zeek_conn": self.zeek,
            "findings": self.findings,
        }

    def summary(self) -> str:
        """The readable text summary (what the CLI prints)."""
        return text_summary(
            self.source,
            self.connections,
            self.skipped,
            self.frames,
            self.segments,
            self.warnings,
            findings=self.finding_records,
            duplicates=self.duplicates,
        )


def dropped_warning(name: str, expired: Mapping[str, int], config: Config) -> str:
    """The warning for half-open connections dropped under memory pressure."""
    n = sum(expired.values())
    return (
        f"{name}: {n} half-open connection(s) (no completed handshake, no data) "
        f"were dropped without a row to keep memory bounded (more than "
        f"{config.max_connections} connections held at once: a SYN flood or a scan?)"
    )


def skipped_by_reason(by_reason: Mapping[str, int], bad_records: int) -> dict[str, int]:
    """Frames not analyzed, by reason; unusable records count as ``bad_record``."""
    counts = dict(by_reason)
    if bad_records:
        counts["bad_record"] = bad_records
    return dict(sorted(counts.items()))


# The result tables: CSV name -> columns and dtypes (the public vocabulary).
TABLES: dict[str, dict[str, str]] = {
    "connections": CONNECTION_COLUMNS,
    "transitions": TRANSITION_COLUMNS,
    "anomalies": ANOMALY_COLUMNS,
    "zeek_conn": ZEEK_COLUMNS,
    "findings": FINDING_COLUMNS,
}


@dataclass
class Rows:
    """An analysis before it becomes DataFrames: rows per table, plus what was read.

    Batch workers send these (cheap to pickle) and the parent builds one frame per
    table for all captures.
    """

    source: str
    tables: dict[str, list[dict[str, Any]]]
    skipped: dict[str, int]
    frames: int
    segments: int
    warnings: list[str]
    truncated: bool
    finding_records: list[Finding]
    expired: dict[str, int]
    duplicates: int = 0
    out_of_order: int = 0


def _conn_id(row: dict[str, Any]) -> int:
    return int(row["conn_id"])


def connection_rows(
    conn: Connection, config: Config
) -> tuple[dict[str, list[dict[str, Any]]], list[Finding]]:
    """The rows one retired connection adds to each table, and its findings."""
    end_ns = conn.retired_ns if conn.retired_ns is not None else conn.end_ns
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    mine = add_retired(rows, conn, conn.prev, config, end_ns)
    conn.trace.release()
    return rows, mine


def analyze_rows(source: Source | Sequence[str | os.PathLike[str]], config: Config) -> Rows:
    """Read, replay and detect; the result as rows (``analyze`` makes them frames)."""
    tables: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    found: list[Finding] = []

    def retire(conn: Connection) -> None:
        # Called as each connection finishes; its trace is freed afterwards.
        rows, mine = connection_rows(conn, config)
        found.extend(mine)
        for name, more in rows.items():
            tables[name].extend(more)

    played = replay(source, config, on_retire=retire)
    stats = played.stats
    # Connections retire in the order they finish; report them in order of first frame.
    for rows in tables.values():
        rows.sort(key=_conn_id)
    found.sort(key=lambda f: f.conn_id)
    warnings = list(stats.warnings)
    if played.expired:
        warnings.append(dropped_warning(played.name, played.expired, config))
    return Rows(
        source=played.name,
        tables=tables,
        skipped=skipped_by_reason(stats.skipped, stats.bad_records),
        frames=stats.frames,
        segments=played.segments,
        warnings=warnings,
        truncated=stats.truncated,
        finding_records=found,
        expired=played.expired,
        duplicates=stats.duplicates,
        out_of_order=stats.out_of_order,
    )


def analyze(
    source: Source | Sequence[str | os.PathLike[str]],
    *,
    msl: float = 30.0,
    config: Config | None = None,
) -> Analysis:
    """Analyze one capture (path, ``"-"`` for standard input, or a binary file object).

    A list of paths is one capture rotated into several files (a series): they
    are replayed as one stream in the order of their first segment's time.
    Raises ``reader.CaptureError`` when a file cannot be read at all; a
    capture cut short yields what was read, with ``truncated`` set and a
    warning.
    """
    cfg = config if config is not None else Config(msl=msl)
    r = analyze_rows(source, cfg)
    t = r.tables
    return Analysis(
        source=r.source,
        connections=connections_frame(t["connections"]),
        transitions=transitions_frame(t["transitions"]),
        anomalies=anomalies_frame(t["anomalies"]),
        zeek=zeek_frame(t["zeek_conn"]),
        skipped=r.skipped,
        frames=r.frames,
        segments=r.segments,
        warnings=r.warnings,
        truncated=r.truncated,
        config=cfg,
        findings=findings_frame(t["findings"]),
        finding_records=r.finding_records,
        expired=r.expired,
        duplicates=r.duplicates,
        out_of_order=r.out_of_order,
    )


def load_tables(directory: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Read the CSV tables ``to_csv`` or ``batch`` wrote, with their documented dtypes.

    Each of ``TABLES`` present in ``directory`` is read (a batch's ``capture``
    column included); missing ones are left out.
    """
    out: dict[str, pd.DataFrame] = {}
    for name in TABLES:
        path = Path(directory) / f"{name}.csv"
        if path.exists():
            out[name] = read_table(path, name)
    return out


def read_table(
    path: str | os.PathLike[str], name: str, usecols: Sequence[str] | None = None
) -> pd.DataFrame:
    """Read the CSV file of table ``name`` (of ``TABLES``), with its documented dtypes
    (and a batch's ``capture`` column, when it has one); ``usecols``: those columns only."""
    import pandas as pd

    header = pd.read_csv(path, nrows=0).columns
    dtypes = table_dtypes(name, capture="capture" in header)
    if usecols is not None:
        dtypes = {c: dtypes[c] for c in usecols}
    frame: pd.DataFrame = read_typed(path, dtypes, usecols=usecols)
    return frame


def read_typed(
    path: str | os.PathLike[str],
    dtypes: Mapping[str, str],
    usecols: Sequence[str] | None = None,
    **more: Any,
) -> Any:
    """``pandas.read_csv`` of a CSV file as the tables are written: the columns with the
    ``dtypes`` given, an empty field missing; ``usecols``: those columns only; ``more``
    (``chunksize``) passed on."""
    import pandas as pd

    return pd.read_csv(
        path,
        dtype=dict(dtypes),
        keep_default_na=False,
        na_values=[""],
        usecols=list(usecols) if usecols is not None else None,
        **more,
    )


def table_dtypes(name: str, *, capture: bool = False) -> dict[str, str]:
    """The columns of table ``name`` and their dtypes; a batch's (``capture``): with its
    ``capture`` column first."""
    columns = TABLES[name]
    return {"capture": "string", **columns} if capture else dict(columns)
