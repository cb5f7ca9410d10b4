"""``analyze --jobs N``: shards of the flows in worker processes give one process's results."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tcpflow_analyzer import stream
from tcpflow_analyzer.cli import AUTO_JOBS_BYTES, AUTO_JOBS_MAX, auto_jobs, main
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.reader import CaptureError, CaptureReader
from tcpflow_analyzer.segment import Segment
from tcpflow_analyzer.shard import DONE, Ledger, ShardIds, shard_of
from tcpflow_analyzer.stream import OutputError, Streamed, WorkerError, _shardable, analyze_to_csv
from tcpflow_analyzer.tracker import Tracker, play

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CAPTURES = sorted(
    {
        *ROOT.glob("captures/**/*.pcap"),
        *ROOT.glob("captures/**/*.pcapng"),
        *ROOT.glob("captures/**/*.gz"),
        *CORPUS.rglob("*.pcap"),
        *CORPUS.rglob("*.pcapng"),
        *CORPUS.rglob("*.trace"),
        *CORPUS.rglob("*.cap"),
        *CORPUS.rglob("*.dump"),
        *CORPUS.rglob("*.gz"),
    }
)
# Timers short enough that connections retire, freeze and expire while the capture is
# replayed, many of them at segments of other connections (so of other shards).
SHORT = Config(msl=0.001, late_segment_s=0.0, idle_timeout=0.5, freeze_after_s=0.0)


def _rows_by_connection(directory: Path) -> dict[str, tuple[str, dict[str, list[str]]]]:
    """Each table's header and its lines by conn_id (the first column), in file order.

    The order of connections in a file is the order the workers appended them;
    a connection's own rows stay together and in order.
    """
    tables = {}
    for path in sorted(directory.glob("*.csv")):
        header, *lines = path.read_text().splitlines()
        by_id: dict[str, list[str]] = defaultdict(list)
        for line in lines:
            by_id[line.split(",", 1)[0]].append(line)
        tables[path.name] = (header, dict(by_id))
    return tables


def _same_run(one: Streamed, many: Streamed) -> None:
    assert many.summary == one.summary
    assert (many.frames, many.segments, many.connections, many.findings) == (
        one.frames,
        one.segments,
        one.connections,
        one.findings,
    )
    assert (many.skipped, many.warnings, many.truncated) == (
        one.skipped,
        one.warnings,
        one.truncated,
    )
    assert (many.duplicates, many.out_of_order, many.expired) == (
        one.duplicates,
        one.out_of_order,
        one.expired,
    )


def _compare(
    path: Path, config: Config, jobs: int, tmp_path: Path, *, as_file: bool = False
) -> Streamed | None:
    """One process and ``jobs`` workers on ``path`` (``as_file``: on a file object of it,
    read once): the same rows per connection, summary and counts, or the same error.
    The workers' run; None when both failed alike."""

    def run(out: str, n: int) -> Streamed:
        if not as_file:
            return analyze_to_csv(path, config, tmp_path / out, jobs=n)
        with path.open("rb") as f:
            return analyze_to_csv(f, config, tmp_path / out, jobs=n)

    try:
        one = run("one", 1)
    except CaptureError as exc:
        with pytest.raises(CaptureError) as raised:
            run("many", jobs)
        assert str(raised.value) == str(exc)
        return None
    many = run("many", jobs)
    _same_run(one, many)
    assert _rows_by_connection(tmp_path / "many") == _rows_by_connection(tmp_path / "one")
    return many


@pytest.mark.parametrize("path", CAPTURES, ids=[str(p.relative_to(p.parents[1])) for p in CAPTURES])
def test_two_shards_give_the_one_process_results_with_short_timers(
    path: Path, tmp_path: Path
) -> None:
    """Every capture: same lines per connection in every table, same summary and counts."""
    _compare(path, SHORT, 2, tmp_path)


REAL = sorted(p for p in CAPTURES if p.is_relative_to(ROOT))


@pytest.mark.parametrize("path", REAL, ids=[str(p.relative_to(ROOT)) for p in REAL])
def test_three_shards_give_the_one_process_results(path: Path, tmp_path: Path) -> None:
    """Our real-kernel captures with the default settings, split three ways."""
    _compare(path, Config(), 3, tmp_path)


def test_shards_split_the_connections(tmp_path: Path) -> None:
    """The crawler capture's 300 connections fall in both shards of two (not all in one)."""
    path = ROOT / "captures" / "crawler" / "crawler.pcap"
    with CaptureReader(path) as reader:
        shards = {shard_of(seg, 2) for seg in reader}
    assert shards == {0, 1}


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "captures" / "crawler" / "crawler.pcap",
        ROOT / "captures" / "ipv6_client_close.pcap",
        ROOT / "captures" / "vlan_client_close.pcap",
        *sorted(CORPUS.rglob("*.pcap"))[:12],
    ],
    ids=lambda p: p.name,
)
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_sharded_reading_is_the_segments_of_the_shard_and_the_times_of_the_rest(
    path: Path, fast: bool
) -> None:
    """Both readers (numpy columns and frame by frame) split as ``shard_of`` says."""
    with CaptureReader(path, fast=False) as reader:
        segments = list(reader)
    with CaptureReader(path, fast=fast) as reader:
        list(reader)
        stats = reader.stats  # what reading it all counts
    assert stats.frames >= len(segments)
    for k in range(3):
        want = [s if shard_of(s, 3) == k else s.ts_ns for s in segments]
        # The other shards' times are handed to a function, each in its place.
        seen: list[Segment | int] = []
        with CaptureReader(path, fast=fast) as reader:
            for seg in reader.sharded(k, 3, seen.append):
                seen.append(seg)
            assert reader.stats == stats
        assert seen == want


def test_shard_of_is_the_same_both_ways_and_on_any_vlan() -> None:
    with CaptureReader(ROOT / "captures" / "client_close.pcap") as reader:
        seg = next(iter(reader))
    back = type(seg)(**{f: getattr(seg, f) for f in seg.__dataclass_fields__})
    back.src, back.dst, back.sport, back.dport = seg.dst, seg.src, seg.dport, seg.sport
    back.vlan = (100, 200)
    for n in (2, 3, 7):
        assert shard_of(back, n) == shard_of(seg, n)


def test_public_ids_count_the_other_shards_connections(tmp_path: Path) -> None:
    """conn_id = own number + other shards' connections with an earlier first frame."""
    ledger = Ledger(2, tmp_path)
    a, b = ShardIds(ledger, 0), ShardIds(ledger, 1)
    a.firsts.extend([1, 4, 9])
    b.firsts.extend([2, 3, 10])
    b.position = 11  # the frame being replayed (tracker.play sets it)
    b.publish()
    a.position = 12
    assert [a.public(i) for i in (1, 2, 3)] == [1, 4, 5]
    a.publish()
    assert [b.public(i) for i in (1, 2, 3)] == [2, 3, 6]
    # Once a worker has read everything it stays done, whatever it publishes later
    # (a worker that waits publishes first): others never wait for it again.
    a.finish()
    a.publish()
    assert ledger.progress(0) == DONE
    a.close()
    b.close()


def test_public_ids_need_no_news_once_a_later_first_frame_is_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """First frames are published in ascending order: a worker that holds one of another
    shard's after its connection's first frame neither waits for nor reads that shard."""
    ledger = Ledger(2, tmp_path)
    a, b = ShardIds(ledger, 0), ShardIds(ledger, 1)
    b.firsts.extend([2, 3, 10])
    b.position = 11
    b.publish()
    a.firsts.extend([1, 4, 9, 12])
    assert a.public(1) == 1  # reads b's first frames (up to 10)
    b.firsts.append(11)
    b.publish()  # published, but a need not know it for first frames before 10

    def unexpected(j: int) -> int:
        raise AssertionError(f"asked for shard {j}'s progress")

    monkeypatch.setattr(ledger, "progress", unexpected)
    assert [a.public(i) for i in (2, 3)] == [4, 5]
    monkeypatch.undo()
    b.position = 13
    b.publish()
    assert a.public(4) == 8  # 12: after b's 2, 3, 10 and 11, so it catches up
    a.close()
    b.close()


class _Progress:
    """Records the position at each publication."""

    def __init__(self) -> None:
        self.position = 0
        self.published: list[int] = []

    def publish(self) -> None:
        self.published.append(self.position)


def test_play_sets_the_position_and_publishes_every_nth_segment() -> None:
    path = ROOT / "captures" / "crawler" / "crawler.pcap"
    with CaptureReader(path) as reader:
        segments = list(reader)
    progress = _Progress()
    tracker = Tracker(Config())
    assert play(tracker, segments, progress, 7) == len(segments)
    assert progress.published == [seg.frame for seg in segments[6::7]]
    assert progress.position == segments[len(segments) // 7 * 7 - 1].frame  # the last published
    assert tracker.frame == segments[-1].frame  # between publications: the tracker's own
    assert sum(conn.packets for conn in tracker.finish()) == len(segments)  # all replayed


def test_shard_ids_publish_how_far_the_tracker_is(tmp_path: Path) -> None:
    """Between play's publications, a worker publishes (before it waits for another)
    the frame its tracker is replaying, not the last one play set."""
    path = ROOT / "captures" / "crawler" / "crawler.pcap"
    with CaptureReader(path) as reader:
        segments = list(reader)
    ledger = Ledger(2, tmp_path)
    ids = ShardIds(ledger, 0)
    try:
        tracker = Tracker(Config())
        ids.clock = tracker
        play(tracker, segments[:10], ids, 1000)  # no publication within ten segments
        assert ids.position == 0
        ids.publish()
        assert ledger.progress(0) == segments[9].frame
        ids.finish()
        assert ledger.progress(0) == DONE
    finally:
        ids.close()


def test_a_worker_that_cannot_write_fails_the_run_with_the_file_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(stream, "_append_whole", full)
    path = ROOT / "captures" / "crawler" / "crawler.pcap"
    with pytest.raises(OutputError, match=r"cannot write to .*\.csv: .*No space left"):
        analyze_to_csv(path, SHORT, tmp_path / "out", jobs=2)


def kill_worker_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker 1 dies (exit code 7) when it first publishes how far it has got."""
    original = ShardIds.publish

    def die_in_shard_1(self: ShardIds) -> None:
        if self.k == 1:
            os._exit(7)
        original(self)

    monkeypatch.setattr(ShardIds, "publish", die_in_shard_1)


def test_a_worker_that_dies_fails_the_run_and_stops_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kill_worker_1(monkeypatch)
    path = ROOT / "captures" / "crawler" / "crawler.pcap"
    with pytest.raises(WorkerError, match=r"worker 1 stopped \(exit code 7"):
        analyze_to_csv(path, Config(), tmp_path / "out", jobs=2)


def test_cli_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(ROOT / "captures" / "crawler" / "crawler.pcap")
    assert main(["analyze", path, "--jobs", "2", "--out", str(tmp_path / "two")]) == 0
    two = capsys.readouterr().out
    assert main(["analyze", path, "--jobs", "1", "--out", str(tmp_path / "one")]) == 0
    one = capsys.readouterr().out
    assert two.replace("/two/", "/one/") == one
    assert two.count("connections: 300") == 1  # printed once: the workers print nothing
    assert _rows_by_connection(tmp_path / "two") == _rows_by_connection(tmp_path / "one")
    assert main(["analyze", path, "--jobs", "0"]) == 2
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_a_series_is_sharded_and_gives_the_unsplit_captures_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotated series (given out of order) is read by the workers like one capture: the
    rows of the unsplit capture, frames numbered on across the files."""
    folder = ROOT / "captures" / "series"
    parts = sorted(folder.glob("part*.pcap"), reverse=True)
    assert len(parts) >= 3
    sharded: list[int] = []
    original = stream._analyze_sharded

    def counted(run: Any, jobs: int) -> Streamed:
        sharded.append(jobs)
        return original(run, jobs)

    monkeypatch.setattr(stream, "_analyze_sharded", counted)
    whole = analyze_to_csv(folder / "whole.pcap", Config(), tmp_path / "whole")
    one = analyze_to_csv(parts, Config(), tmp_path / "one")
    for jobs in (2, 3):
        many = analyze_to_csv(parts, Config(), tmp_path / f"many{jobs}", jobs=jobs)
        _same_run(one, many)
        assert _rows_by_connection(tmp_path / f"many{jobs}") == _rows_by_connection(
            tmp_path / "whole"
        )
    assert sharded == [2, 3]
    assert one.summary == whole.summary.replace(str(folder / "whole.pcap"), one.source)
    assert (tmp_path / "one" / "connections.csv").read_text() == (
        tmp_path / "whole" / "connections.csv"
    ).read_text()


def test_only_files_named_by_path_are_sharded(tmp_path: Path) -> None:
    path = str(ROOT / "captures" / "client_close.pcap")
    assert _shardable(path) and _shardable([path, path]) and _shardable((Path(path),))
    assert not _shardable("-") and not _shardable([path, "-"]) and not _shardable([])
    assert not _shardable(str(tmp_path))  # a directory
    with open(path, "rb") as f:
        assert not _shardable(f)


def test_default_jobs_follow_the_file_size(tmp_path: Path) -> None:
    """One process below 64 MiB or for a missing file; the cores from 64 MiB on, and for
    standard input or a FIFO alone (read once: the parent reads it for the workers)."""
    small = ROOT / "captures" / "client_close.pcap"
    big = tmp_path / "big.pcap"
    with big.open("wb") as f:
        f.truncate(AUTO_JOBS_BYTES)  # sparse: the size is all the default looks at
    cores = min(len(os.sched_getaffinity(0)), AUTO_JOBS_MAX)
    assert auto_jobs(str(small)) == 1
    assert auto_jobs(str(big)) == cores
    assert auto_jobs("-") == cores
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert auto_jobs(str(fifo)) == cores
    assert auto_jobs(str(tmp_path / "missing.pcap")) == 1
