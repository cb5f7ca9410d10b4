"""The fast path on streams: gzip-compressed captures, standard input, pipes, file objects.

They are read through the reader's stream (``reader._StreamFile``): the fast path
decodes what it holds whole, and hands what it read past its stop back to the record
walk. Each test compares with the record-by-record reader (``same``), and counts the
frames the fast path decoded. (Random damage and the pcapng block cases are read
gzipped too, as a parameter of their tests in test_fastread*.py.)
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
import random
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from tcpflow_analyzer.reader import CaptureError, CaptureReader, ReadStats
from tcpflow_analyzer.segment import Segment

from .test_fastread import (
    _captures,
    _gzipped,
    _plain_file,
    ethernet_frames,
    fast_frames,
    pcap_bytes,
    pieces,
    same,
    same_sharded,
    small_chunks,
    timed,
    write,
)

__all__ = ["fast_frames", "small_chunks"]  # fixtures

ROOT = Path(__file__).resolve().parents[1]
CLASSIC = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"M<\xb2\xa1")


@pytest.mark.parametrize("path", _captures(), ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_every_capture_gzipped_reads_the_same_both_ways(
    tmp_path: Path, path: Path, fast_frames: list[int]
) -> None:
    data = path.read_bytes()
    gz = write(tmp_path, data if data[:2] == b"\x1f\x8b" else _gzipped(data, True))
    segments, stats = same(gz)
    if gzip.decompress(gz.read_bytes())[:4] in CLASSIC and isinstance(segments, list):
        assert sum(fast_frames) == stats.frames  # the fast path read every frame


def test_a_gzipped_capture_in_small_windows_and_pieces(
    tmp_path: Path, small_chunks: None, fast_frames: list[int]
) -> None:
    data = pcap_bytes(timed(ethernet_frames()))
    same(write(tmp_path, data))
    plain_file = sum(fast_frames)  # up to a record longer than the window
    fast_frames.clear()
    gz = write(tmp_path, _gzipped(data, True))
    same(gz)
    assert sum(fast_frames) == plain_file > 0
    plain = write(tmp_path, _gzipped(_plain_file(23), True), "plain.pcap")
    sizes = (1, 4, 0, 7)
    assert pieces(plain, True, sizes, 23) == pieces(plain, False, sizes, 23)
    same_sharded(gz)


def _long_capture() -> bytes:
    """About 3 MB: several of the stream's inflated pieces (``reader._CHUNK``, 1 MiB)."""
    rng = random.Random(7)  # payloads that do not compress: a long gzip stream
    frames = [f + rng.randbytes(300) for f in ethernet_frames()]
    return pcap_bytes(timed(frames * 50))


@pytest.mark.parametrize("where", [0.2, 0.5, 0.9])
def test_corrupt_gzip_data_is_reported_where_it_is(
    tmp_path: Path, fast_frames: list[int], where: float
) -> None:
    gz = bytearray(gzip.compress(_long_capture()))
    at = int(len(gz) * where)
    gz[at : at + 8] = b"\xff" * 8
    segments, stats = same(write(tmp_path, bytes(gz), "capture.pcap.gz"))
    # Inflated garbage is met as a corrupt record, or the member's check fails at its end.
    kind = "corrupt gzip data" if where > 0.8 else "corrupt record header"
    assert stats.truncated and any(kind in w for w in stats.warnings)
    assert 0 < sum(fast_frames) <= stats.frames and segments


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.99])
def test_a_gzip_stream_cut_short(tmp_path: Path, fast_frames: list[int], keep: float) -> None:
    gz = gzip.compress(_long_capture())
    segments, stats = same(write(tmp_path, gz[: int(len(gz) * keep)], "capture.pcap.gz"))
    assert stats.truncated and any("gzip stream ends early" in w for w in stats.warnings)
    assert 0 < sum(fast_frames) <= stats.frames and segments


def test_gzip_members_one_after_another(tmp_path: Path, fast_frames: list[int]) -> None:
    data = _long_capture()
    cuts = [0, 1000, 1001, len(data) // 2, len(data)]
    gz = b"".join(gzip.compress(data[a:b]) for a, b in itertools.pairwise(cuts))
    segments, stats = same(write(tmp_path, gz, "capture.pcap.gz"))
    assert sum(fast_frames) == stats.frames and segments and not stats.truncated


def _read(source: object) -> tuple[list[Segment], ReadStats]:
    with CaptureReader(source) as reader:  # type: ignore[arg-type]
        return list(reader), reader.stats


def test_a_pipe_written_in_small_pieces(tmp_path: Path, fast_frames: list[int]) -> None:
    """Short reads: the stream waits for each piece as the record walk does."""
    data = _long_capture()
    whole = _read(write(tmp_path, data))
    fast_frames.clear()
    r, w = os.pipe()

    def writer() -> None:
        with os.fdopen(w, "wb", buffering=0) as f:
            for at in range(0, len(data), 777):
                f.write(data[at : at + 777])

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with os.fdopen(r, "rb", buffering=0) as f:
            got = _read(f)
    finally:
        thread.join(10)
    assert got == whole and repr(got) == repr(whole)
    assert sum(fast_frames) == whole[1].frames > 0


def test_standard_input(monkeypatch: pytest.MonkeyPatch, fast_frames: list[int]) -> None:
    data = _long_capture()
    whole = _read(io.BytesIO(data))
    for source in (data, gzip.compress(data)):
        monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(source)))
        assert _read("-") == whole
    assert sum(fast_frames) == 3 * whole[1].frames > 0


class _FailingFile(io.RawIOBase):
    """A file object whose reads fail once ``limit`` bytes have been read."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._data, self._at, self._limit = data, 0, limit

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._at >= self._limit:
            raise OSError(5, "Input/output error")
        n = min(len(b), self._limit - self._at, 5000)  # short reads, as from a pipe
        b[:n] = self._data[self._at : self._at + n]
        self._at += n
        return n


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_a_read_error_comes_after_the_segments_before_it(fast_frames: list[int], gz: bool) -> None:
    data = _long_capture()
    source = gzip.compress(data) if gz else data
    got = []
    for fast in (True, False):
        segments: list[Segment] = []
        reader = CaptureReader(_FailingFile(source, len(source) * 2 // 3), fast=fast)
        with reader, pytest.raises(CaptureError, match="read error at byte") as err:
            segments.extend(reader)
        got.append((segments, str(err.value), reader.stats))
    assert got[0] == got[1] and repr(got[0]) == repr(got[1])
    assert len(got[0][0]) > 1000 and sum(fast_frames) > 1000


def test_cli_reads_a_real_capture_through_a_pipe(tmp_path: Path) -> None:
    """``tcpdump -w - | tcpflow-analyzer analyze --jobs 1 -``: the file's tables, from a
    pipe, in one process (the workers' reading of it: tests/test_fanout.py)."""
    capture = ROOT / "captures" / "crawler" / "crawler.pcap"  # real-kernel traffic
    run = [sys.executable, "-m", "tcpflow_analyzer", "analyze"]
    subprocess.run([*run, str(capture), "--out", str(tmp_path / "file")], check=True)
    with capture.open("rb") as f:
        cat = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
        pipe = [*run, "-", "--jobs", "1", "--out", str(tmp_path / "pipe")]
        subprocess.run(pipe, stdin=cat.stdout, check=True)
        assert cat.stdout is not None
        cat.stdout.close()
        assert cat.wait(10) == 0
    for name in ("connections", "transitions", "findings", "zeek_conn"):
        piped = (tmp_path / "pipe" / f"{name}.csv").read_text()
        assert piped == (tmp_path / "file" / f"{name}.csv").read_text()
    assert len(piped.splitlines()) > 300
