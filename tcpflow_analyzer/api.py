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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .config import Config
from .findings import Finding, detect
from .replay import Source, replay
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
    played = replay(source, cfg)
    conns, stats, name, segments = played.connections, played.stats, played.name, played.segments
    end_ns = played.capture_end_ns
    rows, found = [], []
    for conn in conns:
        prev = played.previous(conn)
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
