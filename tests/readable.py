"""Captures a reader accepts: a few corpus files none does (test_corpus.py covers those)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tcpflow_analyzer.reader import CaptureError, CaptureReader


def readable(paths: Iterable[Path]) -> list[Path]:
    """The paths whose capture header the reader accepts, in their order."""
    kept = []
    for path in paths:
        try:
            with CaptureReader(path):
                kept.append(path)
        except CaptureError:
            continue
    return kept
