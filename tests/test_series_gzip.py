"""A rotated series of gzip files (``tcpdump -C N -z gzip``) over several workers: the
parent inflates each gzip file once, in the series' order, and every worker reads those
files from the ring, the plain ones from disk (fanout.py, ``replay.Series``): the one
process results, damage and errors included."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from tcpflow_analyzer import reader, replay, stream
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.fanout import RingPart
from tcpflow_analyzer.ladder import parse_spec
from tcpflow_analyzer.show import draw
from tcpflow_analyzer.stream import WorkerError, analyze_to_csv

from .test_fanout import _rings, run_within
from .test_shard import SHORT, _rows_by_connection, _same_run, kill_worker_1

ROOT = Path(__file__).resolve().parents[1]
SERIES = ROOT / "captures" / "series"
PARTS = sorted(SERIES.glob("part-*.pcap"))  # time order
CRAWLER = ROOT / "captures" / "crawler" / "crawler.pcap"  # real kernel, 300 connections


def _parts_read_from_the_ring(monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    """Each file a worker reads from the ring is noted in ``log`` (one line, by pid)."""

    class Noted(RingPart):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            with log.open("a") as f:
                f.write(f"{os.getpid()} {self.name}\n")

    monkeypatch.setattr(replay, "RingPart", Noted)


def _split(path: Path, n: int, directory: Path) -> list[Path]:
    """A classic pcap cut into ``n`` files of about equal record counts, as rotation cuts it."""
    data = path.read_bytes()
    head, at, records = data[:24], 24, []
    while at + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, at + 8)[0]
        records.append(data[at : at + 16 + caplen])
        at += 16 + caplen
    size = -(-len(records) // n)
    parts = []
    for i in range(n):
        part = directory / f"{path.stem}-{i}.pcap"
        part.write_bytes(head + b"".join(records[i * size : (i + 1) * size]))
        parts.append(part)
    return parts


def _gzipped(parts: list[Path], which: set[int], directory: Path) -> list[Path]:
    out = []
    for i, part in enumerate(parts):
        if i in which:
            gz = directory / f"{part.name}.gz"
            gz.write_bytes(gzip.compress(part.read_bytes(), 1))
            out.append(gz)
        else:
            out.append(part)
    return out


def _both(
    paths: list[Path], config: Config, jobs: int, tmp_path: Path
) -> tuple[stream.Streamed, stream.Streamed]:
    """One process and ``jobs`` workers on the series: the same run, the same rows.
    (The workers' run in a thread, so that a deadlock fails the test, not the suite.)"""
    one = analyze_to_csv(paths, config, tmp_path / "one", jobs=1)
    many = run_within(lambda: analyze_to_csv(paths, config, tmp_path / "many", jobs=jobs))
    _same_run(one, many)
    assert _rows_by_connection(tmp_path / "many") == _rows_by_connection(tmp_path / "one")
    return one, many


@pytest.mark.parametrize("jobs", [2, 3])
@pytest.mark.parametrize("which", ["all", "some"])
def test_a_gzip_series_inflated_once_gives_the_unsplit_captures_rows(
    jobs: int, which: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The series capture's parts gzipped (all of them, or the 2nd and 4th only) and given
    out of order: one ring, carrying the gzip files in time order; each worker reads
    each of them from it once; the rows of the unsplit capture."""
    rings = _rings(monkeypatch)
    log = tmp_path / "parts.log"
    _parts_read_from_the_ring(monkeypatch, log)
    gz = {0, 1, 2, 3} if which == "all" else {1, 3}
    paths = _gzipped(PARTS, gz, tmp_path)
    given = list(reversed(paths))
    _both(given, Config(), jobs, tmp_path)
    whole = analyze_to_csv(SERIES / "whole.pcap", Config(), tmp_path / "whole")
    assert _rows_by_connection(tmp_path / "many") == _rows_by_connection(tmp_path / "whole")
    assert whole.connections == 20
    assert len(rings) == 1 and rings[0].messages
    plan = rings[0].series
    assert plan is not None
    assert [plan.paths[i] for i in plan.order] == paths  # time order
    assert {plan.paths[i] for i in plan.inflated} == {paths[i] for i in gz}
    lines = log.read_text().splitlines()
    pids = {line.split()[0] for line in lines}
    assert len(pids) == jobs and os.getpid() not in {int(p) for p in pids}
    for pid in pids:  # in time order, once each
        read = [line.split(" ", 1)[1] for line in lines if line.startswith(f"{pid} ")]
        assert read == [str(paths[i]) for i in sorted(gz)]


def test_a_plain_series_makes_no_ring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rings = _rings(monkeypatch)
    _both(PARTS, Config(), 2, tmp_path)
    assert rings == []


@pytest.mark.parametrize("ring_bytes", [1 << 12, 1 << 16])
def test_a_gzip_series_through_a_small_ring_with_short_timers(
    ring_bytes: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crawler (real kernel) rotated into 5 files, 3 gzipped, inflated 4 KiB a piece
    through a ring a few pieces long (the pump waits for the slowest worker; messages
    wrap around), with timers that fire at other shards' segments: one process's rows."""
    monkeypatch.setattr(reader, "_CHUNK", 1 << 12)
    monkeypatch.setattr(stream, "RING_BYTES", ring_bytes)
    rings = _rings(monkeypatch)
    paths = _gzipped(_split(CRAWLER, 5, tmp_path), {0, 2, 3}, tmp_path)
    one, _ = _both(paths, SHORT, 2, tmp_path)
    assert one.connections == 300
    assert len(rings) == 1 and rings[0].size == ring_bytes


def _cut_record(part: Path, directory: Path) -> Path:
    """``part`` with its 10th record's caplen made impossible: the reader stops there,
    with data left behind it (which the next file's reading must not take)."""
    data = bytearray(part.read_bytes())
    at = 24
    for _ in range(9):
        at += 16 + struct.unpack_from("<I", data, at + 8)[0]
    struct.pack_into("<I", data, at + 8, 0x7FFFFFF0)
    out = directory / f"cut-{part.name}"
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("kind", ["record", "corrupt", "cut", "trailing"])
def test_a_damaged_gzip_file_in_the_middle_of_a_series(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 2nd of 4 gzip files damaged: a record the reader stops at (the rest of the
    file's data passed over), corrupt gzip data, a gzip stream cut short, or bytes after
    it. The workers meet it where one process does, with the same warnings, and read
    the files after it whole."""
    monkeypatch.setattr(reader, "_CHUNK", 1 << 12)
    rings = _rings(monkeypatch)
    parts = _split(CRAWLER, 4, tmp_path)
    paths = _gzipped(parts, {0, 1, 2, 3}, tmp_path)
    data = gzip.compress(parts[1].read_bytes(), 1)
    if kind == "record":
        data = gzip.compress(_cut_record(parts[1], tmp_path).read_bytes(), 1)
    elif kind == "corrupt":
        at = len(data) // 2
        data = data[:at] + b"\xff" * 8 + data[at + 8 :]
    elif kind == "cut":
        data = data[: len(data) // 2]
    else:
        data += b"not gzip data"
    paths[1].write_bytes(data)
    _, many = _both(paths, SHORT, 2, tmp_path)
    assert len(rings) == 1
    assert any(str(paths[1]) in w for w in many.warnings)
    assert many.truncated == (kind != "trailing")
    # The other files were read whole (the rows above: as one process reads them).
    others = analyze_to_csv([paths[0], *paths[2:]], SHORT, tmp_path / "others", jobs=1)
    assert many.frames > others.frames


def test_a_worker_that_dies_fails_a_gzip_series_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kill_worker_1(monkeypatch)
    rings = _rings(monkeypatch)
    paths = _gzipped(_split(CRAWLER, 3, tmp_path), {0, 1, 2}, tmp_path)
    with pytest.raises(WorkerError, match=r"worker 1 stopped \(exit code 7"):
        analyze_to_csv(paths, Config(), tmp_path / "out", jobs=2)
    assert len(rings) == 1 and rings[0].series is not None


@pytest.mark.parametrize("conn", ["1", "150", "300"])
def test_show_draws_from_a_gzip_series_as_one_process_does(
    conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``show --jobs 2`` on the crawler rotated into gzip files: the parent inflates them
    for the workers; the drawing is one process's, and the run stops at the connection."""
    rings = _rings(monkeypatch)
    paths: list[Any] = _gzipped(_split(CRAWLER, 3, tmp_path), {0, 1, 2}, tmp_path)
    spec = parse_spec(conn)
    one = draw(paths, Config(), spec, jobs=1)
    two = draw(paths, Config(), spec, jobs=2)
    assert two.text == one.text and two.warnings == one.warnings
    assert two.text.startswith(f"connection {conn}: ")
    assert len(rings) == 1 and rings[0].series is not None
