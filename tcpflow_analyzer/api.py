"""The library surface: ``analyze(source) -> Analysis``.

Theory of operation
-------------------
``analyze`` wires the layers together: the reader decodes frames into
segments (counting what it skips), the tracker replays them for both
endpoints, the detectors turn each connection's trace (with its previous
incarnation) into findings, and the report layer turns connections and
findings into DataFrames with fixed columns. ``Analysis`` holds the results;
``to_csv`` is the only file output.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from .config import Config
from .findings import Finding, detect
from .reader import CaptureReader
from .report import (
    anomalies_frame,
    anomaly_rows,
    connections_frame,
    finding_rows,
    findings_frame,
    summarize,
    text_summary,
    transition_rows,
    transitions_frame,
    write_csv,
    zeek_frame,
    zeek_rows,
)
from .tracker import Tracker

__all__ = ["Analysis", "analyze"]


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
        )


def _skipped(by_reason: Mapping[str, int], bad_records: int) -> dict[str, int]:
    """Frames not analyzed, by reason; unusable records count as ``bad_record``."""
    counts = dict(by_reason)
    if bad_records:
        counts["bad_record"] = bad_records
    return dict(sorted(counts.items()))


def analyze(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    msl: float = 30.0,
    config: Config | None = None,
) -> Analysis:
    """Analyze one capture (path, ``"-"`` for standard input, or a binary file object).

    Raises ``reader.CaptureError`` when the file cannot be read at all; a
    capture cut short yields what was read, with ``truncated`` set and a
    warning.
    """
    cfg = config if config is not None else Config(msl=msl)
    tracker = Tracker(cfg)
    segments = 0
    with CaptureReader(source) as reader:
        for seg in reader:
            segments += 1
            tracker.add(seg)
        stats = reader.stats
        name = reader.name
    conns = tracker.finish()
    end_ns = tracker.capture_end_ns
    by_id = {c.conn_id: c for c in conns}
    rows, found = [], []
    for conn in conns:
        prev = by_id.get(conn.prev_conn_id) if conn.prev_conn_id is not None else None
        mine = detect(conn, prev, cfg, end_ns)
        found.extend(mine)
        rows.append(summarize(conn, prev=prev, findings=mine, capture_end_ns=end_ns))
    return Analysis(
        source=name,
        connections=connections_frame(rows),
        transitions=transitions_frame(transition_rows(conns)),
        anomalies=anomalies_frame(anomaly_rows(conns)),
        zeek=zeek_frame(zeek_rows(conns)),
        skipped=_skipped(stats.skipped, stats.bad_records),
        frames=stats.frames,
        segments=segments,
        warnings=list(stats.warnings),
        truncated=stats.truncated,
        config=cfg,
        findings=findings_frame(finding_rows(found)),
        finding_records=found,
    )
