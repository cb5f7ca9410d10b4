"""A capture read once only (standard input, a pipe, a file object) shared by the workers
through the parent's ring (fanout.py): one process's results, errors and all."""

from __future__ import annotations

import gzip
import io
import itertools
import multiprocessing
import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tcpflow_analyzer import fastread, reader, replay, stream
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.fanout import Ring, read_once
from tcpflow_analyzer.reader import CaptureError, CaptureReader
from tcpflow_analyzer.shard import shard_of
from tcpflow_analyzer.stream import Streamed, WorkerError, analyze_to_csv

from .test_shard import CAPTURES, SHORT, _compare, _rows_by_connection, _same_run, kill_worker_1

ROOT = Path(__file__).resolve().parents[1]
CRAWLER = ROOT / "captures" / "crawler" / "crawler.pcap"  # real kernel, 300 connections


class _Failing(io.RawIOBase):
    """A source whose reads fail once ``good`` bytes of ``data`` are read."""

    def __init__(self, data: bytes, good: int) -> None:
        self._data, self._good, self._at = data, good, 0
        self.name = "<failing>"

    def readable(self) -> bool:
        return True

    def readinto(self, view: Any) -> int:
        if self._at >= self._good:
            raise OSError(5, "Input/output error")
        n = min(len(view), self._good - self._at, 1000)
        view[:n] = self._data[self._at : self._at + n]
        self._at += n
        return n


def _read_all(ring: Ring, k: int, waits: list[int], out: dict[int, Any]) -> None:
    f = ring.reader(k, lambda: waits.append(k))
    chunks = []
    try:
        while chunk := f.read(700 + 300 * k):
            chunks.append(chunk)
        out[k] = b"".join(chunks)
    except OSError as exc:
        out[k] = (b"".join(chunks), exc)
    f.close()


def _pumped(source: Any, n: int, size: int) -> tuple[dict[int, Any], list[int]]:
    ring = Ring(n, "<test>", size=size)
    out: dict[int, Any] = {}
    waits: list[int] = []
    readers = [threading.Thread(target=_read_all, args=(ring, k, waits, out)) for k in range(n)]
    for t in readers:
        t.start()
    ring.start(source, owned=False)
    for t in readers:
        t.join(timeout=60)
        assert not t.is_alive()
    ring.stop()
    return out, waits


def test_every_reader_reads_the_whole_source_through_a_small_ring() -> None:
    """100 KB through a 4 KB ring, read in pieces of three sizes that do not divide it:
    each reader gets every byte, in order; readers that catch up wait (and say so)."""
    data = os.urandom(100_000)
    out, waits = _pumped(io.BytesIO(data), 3, 4096)
    assert out == {0: data, 1: data, 2: data}
    assert waits  # they caught up with the pump at least once


def test_a_read_error_reaches_every_reader_where_it_happened() -> None:
    data = os.urandom(50_000)
    out, _ = _pumped(_Failing(data, 31_234), 2, 8192)
    for k in (0, 1):
        got, exc = out[k]
        assert got == data[:31_234]
        assert isinstance(exc, OSError) and (exc.errno, exc.strerror) == (5, "Input/output error")


def test_a_reader_that_leaves_is_not_waited_for() -> None:
    """Reader 1 stops after a piece: the pump goes on for reader 0 through the small ring."""
    data = os.urandom(60_000)
    ring = Ring(2, "<test>", size=4096)
    ring.reader(1).close()
    out: dict[int, Any] = {}
    t = threading.Thread(target=_read_all, args=(ring, 0, [], out))
    t.start()
    ring.start(io.BytesIO(data), owned=False)
    t.join(timeout=60)
    assert not t.is_alive() and out[0] == data
    ring.stop()


def test_a_ring_for_many_workers() -> None:
    """200 workers (``--jobs 200``): each has its own word; the last reads it all, the
    others having left, and the error's text is kept past the words."""
    data = os.urandom(20_000)
    ring = Ring(200, "<test>", size=4096)
    for k in range(199):
        ring.reader(k).close()
    out: dict[int, Any] = {}
    t = threading.Thread(target=_read_all, args=(ring, 199, [], out))
    t.start()
    ring.start(_Failing(data, 15_000), owned=False)
    t.join(timeout=60)
    assert not t.is_alive()
    got, exc = out[199]
    assert got == data[:15_000] and exc.strerror == "Input/output error"
    ring.stop()


def test_what_is_read_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert read_once("-") and read_once(str(fifo)) and read_once(io.BytesIO(b""))
    assert not read_once(str(CRAWLER)) and not read_once(str(tmp_path))
    assert not read_once(str(tmp_path / "missing.pcap"))


def run_within(work: Callable[[], Streamed], seconds: float = 120) -> Streamed:
    """``work()``'s result, run in a thread: a run whose workers deadlock fails the test
    (its workers stopped, or the test run would wait for them at its end)."""
    result: dict[str, Streamed] = {}
    t = threading.Thread(target=lambda: result.update(run=work()), daemon=True)
    t.start()
    t.join(timeout=seconds)
    if t.is_alive():
        for worker in multiprocessing.active_children():
            worker.terminate()
        pytest.fail("the workers deadlocked")
    return result["run"]


def _rings(monkeypatch: pytest.MonkeyPatch) -> list[Ring]:
    """The rings the runs make (a run that makes none reads its capture file itself)."""
    made: list[Ring] = []

    class Recorded(Ring):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(stream, "Ring", Recorded)
    return made


@pytest.mark.parametrize("path", CAPTURES, ids=[str(p.relative_to(p.parents[1])) for p in CAPTURES])
def test_a_file_object_read_by_two_workers_gives_the_one_process_results(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every capture, as a file object (read once): the workers' rows per connection,
    summary and counts are one process's; a capture one process cannot read, the
    workers cannot either, with the same message."""
    rings = _rings(monkeypatch)
    if _compare(path, SHORT, 2, tmp_path, as_file=True) is not None:
        gzipped = path.read_bytes()[:2] == b"\x1f\x8b"  # (inflated by the parent)
        assert len(rings) == 1 and rings[0].messages == gzipped


def test_a_read_error_is_reported_after_the_segments_before_it(tmp_path: Path) -> None:
    """The source fails two thirds in: the workers' tables and error are one process's."""
    data = CRAWLER.read_bytes()
    good = len(data) * 2 // 3
    with pytest.raises(CaptureError) as one:
        analyze_to_csv(_Failing(data, good), SHORT, tmp_path / "one")
    with pytest.raises(CaptureError) as many:
        analyze_to_csv(_Failing(data, good), SHORT, tmp_path / "many", jobs=2)
    assert str(many.value) == str(one.value)
    assert "read error at byte" in str(one.value)


def test_workers_a_small_ring_apart_and_publishing_rarely_end_with_one_process_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ring of 2 KB (the crawler's 300 KB go round it 150 times; the workers are never
    more than 2 KB apart) and progress published only when a worker waits (for bytes,
    or for the other's first frames), while rows are made at every close: the run
    ends, with one process's rows."""
    monkeypatch.setattr(replay, "PUBLISH_EVERY", 1 << 40)
    monkeypatch.setattr(stream, "RING_BYTES", 2048)
    rings = _rings(monkeypatch)
    one = analyze_to_csv(CRAWLER, SHORT, tmp_path / "one")

    def run() -> Streamed:
        with CRAWLER.open("rb") as f:
            return analyze_to_csv(f, SHORT, tmp_path / "many", jobs=2)

    many = run_within(run)
    assert len(rings) == 1 and not rings[0].messages
    _same_run(one, many)
    assert _rows_by_connection(tmp_path / "many") == _rows_by_connection(tmp_path / "one")


def test_a_worker_that_dies_fails_the_run_while_the_pipe_stays_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Standard input a live pipe (its writer still open, nothing more coming) and a
    worker that dies: the run fails at once, and the pump, waiting for the pipe, ends
    (the pipe is closed after it without waiting for it)."""
    kill_worker_1(monkeypatch)
    r, w = os.pipe()
    data = CRAWLER.read_bytes()
    os.write(w, data[:60_000])  # part of the capture; the writer stays open
    with os.fdopen(r, "rb") as f:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(f))
        try:
            with pytest.raises(WorkerError, match=r"worker 1 stopped"):
                analyze_to_csv("-", Config(), tmp_path / "out", jobs=2)
        finally:
            os.close(w)


@pytest.mark.parametrize("gzipped", [False, True], ids=["pcap", "gzip"])
def test_standard_input_is_read_by_the_workers_by_default(tmp_path: Path, gzipped: bool) -> None:
    """``analyze -`` with a real-kernel capture piped in (as it is, or gzipped: the parent
    inflates it): the file's tables, and the summary names standard input; with
    --jobs 1 the same."""
    data = CRAWLER.read_bytes()
    piped = gzip.compress(data) if gzipped else data
    out = {}
    for name, extra in (("many", []), ("one", ["--jobs", "1"]), ("file", [])):
        args = ["analyze", str(CRAWLER) if name == "file" else "-", "--out", str(tmp_path / name)]
        done = subprocess.run(
            [sys.executable, "-m", "tcpflow_analyzer", *args, *extra],
            input=b"" if name == "file" else piped,
            capture_output=True,
            timeout=120,
            check=True,
        )
        out[name] = done.stdout.decode()
    assert "<stdin>" in out["many"]
    assert out["many"].replace("/many/", "/one/") == out["one"]
    assert out["many"].replace("<stdin>", str(CRAWLER)).replace("/many/", "/file/") == out["file"]
    assert _rows_by_connection(tmp_path / "many") == _rows_by_connection(tmp_path / "file")


@pytest.mark.parametrize("path", CAPTURES, ids=[str(p.relative_to(p.parents[1])) for p in CAPTURES])
def test_a_gzip_file_inflated_once_for_the_workers_gives_the_one_process_results(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every capture gzipped: the parent inflates it and the workers read the pieces
    (with their warnings) from the ring; one process's results, or its error."""
    rings = _rings(monkeypatch)
    data = path.read_bytes()
    gz = tmp_path / "capture.pcap.gz"
    gz.write_bytes(data if data[:2] == b"\x1f\x8b" else gzip.compress(data, 1))
    if _compare(gz, SHORT, 2, tmp_path) is not None:
        assert len(rings) == 1 and rings[0].messages


def _damaged(kind: str, data: bytes) -> bytes:
    gz = bytearray(gzip.compress(data, 6))
    if kind.startswith("corrupt"):
        at = int(len(gz) * float(kind.split("-")[1]))
        gz[at : at + 8] = b"\xff" * 8
    elif kind.startswith("cut"):
        del gz[int(len(gz) * float(kind.split("-")[1])) :]
    elif kind == "members":
        cuts = [0, 1000, 1001, len(data) // 2, len(data)]
        gz = bytearray(b"".join(gzip.compress(data[a:b]) for a, b in itertools.pairwise(cuts)))
    elif kind == "trailing":
        gz += b"not gzip data"
    return bytes(gz)


DAMAGE = ["corrupt-0.2", "corrupt-0.5", "corrupt-0.999", "cut-0.1", "cut-0.5", "cut-0.99"]


@pytest.mark.parametrize("how", ["path", "file object"])
@pytest.mark.parametrize("kind", [*DAMAGE, "members", "trailing"])
def test_a_damaged_gzip_file_inflated_for_the_workers_is_reported_as_one_process_does(
    kind: str, how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crawler (real kernel) gzipped and damaged, inflated 16 KiB a piece (so the
    damage comes many pieces in), named by path or read once as a file object: the
    workers meet the damage where one process does, with the same warnings and the
    same rows before it. (Damage in the middle is met as garbage records; at the end,
    by the gzip member's check.)"""
    monkeypatch.setattr(reader, "_CHUNK", 1 << 14)
    rings = _rings(monkeypatch)
    gz = tmp_path / "crawler.pcap.gz"
    gz.write_bytes(_damaged(kind, CRAWLER.read_bytes()))
    many = _compare(gz, SHORT, 2, tmp_path, as_file=how == "file object")
    assert many is not None
    assert len(rings) == 1 and rings[0].messages
    assert many.truncated == (kind in DAMAGE)
    if kind == "corrupt-0.999":  # the member's check: met by the parent's zlib
        assert any("corrupt gzip data" in w for w in many.warnings)
    if kind.startswith("cut"):
        assert any("gzip stream ends early" in w for w in many.warnings)
    if kind == "trailing":
        assert any("trailing bytes after the gzip stream" in w for w in many.warnings)


def test_a_worker_that_dies_fails_a_gzip_run_the_parent_inflates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent inflating a gzip file for the workers, one of which dies: the run fails
    at once (the pump stops when no one reads)."""
    kill_worker_1(monkeypatch)
    rings = _rings(monkeypatch)
    gz = tmp_path / "crawler.pcap.gz"
    gz.write_bytes(gzip.compress(CRAWLER.read_bytes()))
    with pytest.raises(WorkerError, match=r"worker 1 stopped \(exit code 7"):
        analyze_to_csv(gz, Config(), tmp_path / "out", jobs=2)
    assert len(rings) == 1 and rings[0].messages


def _one_shard_capture(path: Path, k: int, n: int, copies: int, out: Path) -> Path:
    """The frames of ``path`` (classic pcap) whose connections fall in shard ``k`` of
    ``n``, ``copies`` times over, each copy 130 s after the one before (past the closed
    connections' hold: new incarnations, not retransmissions)."""
    with CaptureReader(path) as r:
        ours = {seg.frame for seg in r if shard_of(seg, n) == k}
    data = path.read_bytes()
    records, at, frame = [], 24, 0
    while at + 16 <= len(data):
        caplen = struct.unpack_from("<I", data, at + 8)[0]
        frame += 1
        if frame in ours:
            records.append(data[at : at + 16 + caplen])
        at += 16 + caplen
    parts = [data[:24]]
    for copy in range(copies):
        for record in records:
            sec = struct.unpack_from("<I", record, 0)[0]
            parts.append(struct.pack("<I", sec + 130 * copy) + record[4:])
    out.write_bytes(b"".join(parts))
    return out


@pytest.mark.parametrize("how", ["file object", "gzip"])
@pytest.mark.parametrize("config", [SHORT, Config()], ids=["short", "default"])
def test_a_worker_whose_shard_is_empty_is_not_waited_for_in_vain(
    how: str, config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every connection in shard 1 of 2, read through the parent's ring: worker 0 has no
    segment of its own, so none says how far it is; it reads ahead until the ring is
    full of bytes worker 1 has not read, while worker 1 waits for worker 0's first
    frames to number a connection. Worker 0 says how far it has read as it waits for
    bytes (CaptureReader.handed): the run ends, with one process's rows. (A ring of
    2 KB and reading windows of 64 KiB stand for 16 MiB and 4 MiB: this hung on a 35 MB
    capture piped in.)"""
    monkeypatch.setattr(stream, "RING_BYTES", 2048)
    monkeypatch.setattr(fastread, "WINDOW", 1 << 16)
    monkeypatch.setattr(reader, "_CHUNK", 1 << 12)
    rings = _rings(monkeypatch)
    capture = _one_shard_capture(CRAWLER, 1, 2, 6, tmp_path / "one-shard.pcap")
    assert capture.stat().st_size > 6 * ((1 << 16) + 2048)
    if how == "gzip":
        capture = tmp_path / "one-shard.pcap.gz"
        capture.write_bytes(gzip.compress((tmp_path / "one-shard.pcap").read_bytes(), 1))
    one = analyze_to_csv(capture, config, tmp_path / "one")

    def run() -> Streamed:
        if how == "gzip":
            return analyze_to_csv(capture, config, tmp_path / "many", jobs=2)
        with capture.open("rb") as f:
            return analyze_to_csv(f, config, tmp_path / "many", jobs=2)

    many = run_within(run)
    assert len(rings) == 1
    _same_run(one, many)
    assert _rows_by_connection(tmp_path / "many") == _rows_by_connection(tmp_path / "one")
    assert one.connections > 0
