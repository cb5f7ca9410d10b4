"""The freezer's spill files: records read back whole, disk given back as records retire."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tcpflow_analyzer.freeze import Spill, SpillError


@pytest.mark.parametrize("buffer_bytes", [1, 64, 1 << 20])
def test_records_read_back_across_files(buffer_bytes: int) -> None:
    """Whether a record is still in the write buffer or in its file, it reads back whole."""
    spill = Spill(file_bytes=100, buffer_bytes=buffer_bytes)
    records = [os.urandom(n) for n in (10, 60, 45, 99, 1, 250, 30, 7, 7)]
    refs = []
    for r in records:
        refs.append(spill.put(r))
        # Read back between writes too: every record so far, as it is now.
        assert [spill.get(ref) for ref in refs] == records[: len(refs)]
    assert spill.files > 1
    assert spill.size == sum(map(len, records))
    spill.close()


def test_records_are_written_a_buffer_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records gather in memory and go to the file when ``buffer_bytes`` are held."""
    from tcpflow_analyzer import freeze

    writes: list[int] = []
    pwritev = os.pwritev

    def counted(fd: int, buffers: list[bytes], offset: int) -> int:
        writes.append(sum(map(len, buffers)))
        return pwritev(fd, buffers, offset)

    monkeypatch.setattr(freeze.os, "pwritev", counted)
    spill = Spill(file_bytes=1000, buffer_bytes=100)
    refs = [spill.put(bytes([i]) * 30) for i in range(10)]
    assert writes == [120, 120]  # four records of 30 bytes reach 100, twice
    assert [spill.get(ref) for ref in refs] == [bytes([i]) * 30 for i in range(10)]
    spill.close()


def test_a_short_write_is_finished(monkeypatch: pytest.MonkeyPatch) -> None:
    """What os.pwritev leaves unwritten (it may stop short) is written after it."""
    from tcpflow_analyzer import freeze

    pwritev = os.pwritev

    def short(fd: int, buffers: list[bytes], offset: int) -> int:
        return pwritev(fd, [b"".join(buffers)[:7]], offset)

    monkeypatch.setattr(freeze.os, "pwritev", short)
    spill = Spill(file_bytes=10_000, buffer_bytes=100)
    records = [(os.urandom(25), os.urandom(i)) for i in range(12)]
    refs = [spill.put(a, b) for a, b in records]
    spill.put(b"x" * 100)  # all written
    assert [spill.get(ref) for ref in refs] == [a + b for a, b in records]
    spill.close()


def test_many_small_records_are_written_in_several_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """os.pwritev takes at most 1024 buffers: more are written a call per 1024."""
    from tcpflow_analyzer import freeze

    calls: list[int] = []
    pwritev = os.pwritev

    def counted(fd: int, buffers: list[bytes], offset: int) -> int:
        calls.append(len(buffers))
        return pwritev(fd, buffers, offset)

    monkeypatch.setattr(freeze.os, "pwritev", counted)
    spill = Spill(file_bytes=1 << 20, buffer_bytes=2500 * 3)
    records = [os.urandom(3) for _ in range(2500)]
    refs = [spill.put(r) for r in records]
    assert calls == [1024, 1024, 452]
    assert [spill.get(ref) for ref in refs] == records
    spill.close()


def test_a_record_put_in_two_parts_reads_back_whole() -> None:
    spill = Spill(file_bytes=1000, buffer_bytes=64)
    parts = [
        (os.urandom(n), os.urandom(m)) for n, m in ((10, 0), (0, 7), (40, 50), (3, 90), (1, 1))
    ]
    refs = [spill.put(a, b) for a, b in parts]
    assert [spill.get(ref) for ref in refs] == [a + b for a, b in parts]
    assert spill.size == sum(len(a) + len(b) for a, b in parts)
    spill.close()


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes os.pread is asked for from now on (in freeze)."""
    from tcpflow_analyzer import freeze

    sizes: list[int] = []
    pread = os.pread

    def counted(fd: int, n: int, offset: int) -> bytes:
        sizes.append(n)
        return pread(fd, n, offset)

    monkeypatch.setattr(freeze.os, "pread", counted)
    return sizes


def test_records_read_in_order_take_few_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read back in about the order they were put (neighbours swapped), 3000 records
    of 100 to 300 bytes across several files take a read for many."""
    spill = Spill(file_bytes=200_000, buffer_bytes=4096, ahead_bytes=64 << 10)
    records = [os.urandom(100 + i % 201) for i in range(3000)]
    refs = [spill.put(r) for r in records]
    assert spill.files > 2
    order = list(range(len(refs)))
    for i in range(0, len(order) - 1, 3):
        order[i], order[i + 1] = order[i + 1], order[i]
    sizes = _counting_reads(monkeypatch)
    for i in order:
        assert spill.get(refs[i]) == records[i]
        spill.release(refs[i])
    assert len(sizes) < len(records) / 20
    assert sum(sizes) < 3 * sum(map(len, records))
    spill.close()


def test_records_read_in_no_order_read_little_more_than_themselves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading ahead shrinks when what it read is not taken: records in random order
    cost about one read each, and not many more bytes than their own."""
    spill = Spill(file_bytes=1 << 20, buffer_bytes=4096, ahead_bytes=64 << 10)
    records = [os.urandom(200) for _ in range(3000)]
    refs = [spill.put(r) for r in records]
    order = list(range(len(refs)))
    random.Random(5).shuffle(order)
    sizes = _counting_reads(monkeypatch)
    for i in order:
        assert spill.get(refs[i]) == records[i]
    assert len(sizes) <= len(records)
    assert sum(sizes) < 1.5 * sum(map(len, records))
    spill.close()


def test_a_file_is_closed_once_its_records_are_released() -> None:
    spill = Spill(file_bytes=100)
    first = [spill.put(b"a" * 40), spill.put(b"b" * 40)]  # file 0
    second = [spill.put(b"c" * 40), spill.put(b"d" * 40)]  # file 1 (0 was full)
    third = spill.put(b"e" * 40)  # file 2, the current one
    assert spill.files == 3
    spill.release(first[0])
    assert spill.files == 3  # one record of file 0 is still live
    spill.release(first[1])
    assert spill.files == 2
    assert spill.get(second[1]) == b"d" * 40
    for ref in second:
        spill.release(ref)
    assert spill.files == 1
    spill.release(third)
    assert spill.files == 1  # the current file stays open
    assert spill.peak == 200  # at most five records of 40 bytes were held
    spill.close()


def test_released_files_in_a_long_run_keep_disk_bounded() -> None:
    """Records released a fixed number of puts later: the files open stay few."""
    spill = Spill(file_bytes=1000)
    pending = []
    most = 0
    for i in range(2000):
        pending.append(spill.put(bytes([i % 256]) * 50))
        if len(pending) > 40:
            spill.release(pending.pop(0))
        most = max(most, spill.files)
    assert spill.size == 2000 * 50
    assert most <= 4  # 40 live records of 50 bytes span at most 3 full files + the current
    assert spill.peak <= 4 * 1000
    spill.close()


def test_a_full_disk_is_a_spill_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from tcpflow_analyzer import freeze

    spill = Spill(file_bytes=100, buffer_bytes=1)

    def full(fd: int, buffers: list[bytes], offset: int) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(freeze.os, "pwritev", full)
    with pytest.raises(SpillError, match=r"cannot write a temporary file in .*No space left"):
        spill.put(b"x" * 10)
    spill.close()


def test_cli_reports_a_full_temporary_directory(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """No traceback: exit 3 and a message naming the temporary directory."""
    from tcpflow_analyzer import freeze
    from tcpflow_analyzer.cli import main

    def full(self: Spill, data: bytes, more: bytes) -> tuple[int, int]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(freeze.Spill, "_put", full)
    capture = Path(__file__).resolve().parents[1] / "captures" / "crawler" / "crawler.pcap"
    code = main(["analyze", str(capture), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 3
    assert "cannot write a temporary file in" in err and "Traceback" not in err


def test_fetched_records_are_read_together_in_the_files_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``fetch`` reads the records it is given in few reads, whatever their order; ``get``
    then takes them from memory. Records not written yet and long ones are left to
    ``get``, which reads them as before; a second fetch drops what the first left."""
    from tcpflow_analyzer import freeze

    spill = Spill(file_bytes=50_000, buffer_bytes=1000)
    records = [os.urandom(100 + i % 301) for i in range(2000)]
    long_one = os.urandom(freeze._GAP_MOST + 1)
    records.insert(700, long_one)
    refs = [spill.put(r) for r in records]
    pending = spill.put(b"not written yet")  # below buffer_bytes: still in memory
    assert spill.files > 10
    order = list(range(len(refs)))
    rng = random.Random(3)
    blocks = [order[i : i + 500] for i in range(0, len(order), 500)]
    for block in blocks:
        rng.shuffle(block)
    sizes = _counting_reads(monkeypatch)
    for block in blocks:
        spill.fetch([refs[i] for i in block] + [pending])
        for i in block:
            assert spill.get(refs[i]) == records[i]
    assert spill.get(pending) == b"not written yet"
    # Each block spans a few files: a read per file it touches, and one for the long record.
    assert len(sizes) <= 4 * 16 + 1
    assert sum(sizes) < 1.1 * sum(map(len, records))
    # What a fetch read and no one took is dropped by the next: read again, the same.
    spill.fetch([refs[0], refs[1]])
    spill.fetch([refs[2]])
    assert [spill.get(refs[i]) for i in range(3)] == records[:3]
    spill.close()


def test_a_record_is_read_by_its_first_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record put in two parts can be read back by its first part alone (a frozen
    connection's record, without its trace: what retiring reads)."""
    spill = Spill(file_bytes=1 << 20, buffer_bytes=1)
    head, tail = os.urandom(300), os.urandom(5000)
    offset, _ = spill.put(head, tail)
    spill.put(b"x" * 10)
    sizes = _counting_reads(monkeypatch)
    spill.fetch([(offset, len(head))])
    assert spill.get((offset, len(head))) == head
    assert sizes == [len(head)]  # the first part alone was read
    assert spill.get((offset, len(head)))[: len(head)] == head  # get: the same, read again
    spill.close()
