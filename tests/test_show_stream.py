"""`show` streamed (ladder.pick): connections retired as they finish, the replay stopped
once the one asked for is known; and over several worker processes (show.draw).

What it draws must be the connection the kept replay holds (every connection
replayed and kept whole, then chosen: the command line before) with the
findings the analysis's tables hold for it (``analyze_rows``): the same ladder
text and findings, by ``conn_id`` and by 4-tuple with ``#N``, on every capture;
the same error for a connection a capture does not hold or a 4-tuple with
several incarnations. (The kept ``show`` made its findings as of the capture's
end, where the tables make them as of the connection's retirement: for one
retired by the idle timeout long before the end, its ``open_at_end`` said a
longer time than the tables did. Now they agree.)
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from tcpflow_analyzer import ladder
from tcpflow_analyzer.api import analyze_rows
from tcpflow_analyzer.cli import EXIT_OK, EXIT_USAGE, main
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.findings import Finding
from tcpflow_analyzer.reader import CaptureError
from tcpflow_analyzer.replay import Replay, replay
from tcpflow_analyzer.segment import addr_text
from tcpflow_analyzer.shard import DONE, Ledger, ShardIds
from tcpflow_analyzer.show import draw
from tcpflow_analyzer.stream import WorkerError
from tcpflow_analyzer.tracker import Connection, Stop

from .test_frame_csv import CAPTURES

ROOT = Path(__file__).resolve().parents[1]
SERIES = [str(p) for p in sorted((ROOT / "captures" / "series").glob("*.pcap"))]
PICKED = 6  # connections of a capture shown (the first, the last, some between)


def _endpoint(addr: bytes, port: int) -> str:
    text = addr_text(addr)
    return f"[{text}]:{port}" if ":" in text else f"{text}:{port}"


def _tuple_spec(conn: Connection, nth: int | None) -> str:
    """The 4-tuple of ``conn`` as ``show --conn`` takes it, server first (either order works)."""
    spec = f"{_endpoint(conn.server.addr, conn.server.port)}-"
    spec += _endpoint(conn.client.addr, conn.client.port)
    return spec if nth is None else f"{spec}#{nth}"


def _kept(
    result: Replay, by_conn: dict[int, list[Finding]], spec: str
) -> tuple[str, list[Finding]]:
    """What ``show`` draws, made the way it was before it streamed: the connection
    chosen among those the kept replay holds; its findings are the analysis's
    (the rows of the tables: ``analyze_rows``)."""
    conn = ladder.select(result.connections, spec)
    found = by_conn.get(conn.conn_id, [])
    return ladder.render(conn, _notes(found)), found


def _notes(found: list[Finding]) -> dict[int, list[str]]:
    notes: dict[int, list[str]] = {}
    for f in found:
        if f.frame is not None:
            notes.setdefault(f.frame, []).append(f.code.value)
    return notes


def _streamed(source: str | list[str], config: Config, spec: str) -> tuple[str, list[Finding]]:
    shown = ladder.pick(source, config, ladder.parse_spec(spec))
    return ladder.render(shown.conn, _notes(shown.findings)), shown.findings


def _specs(conns: list[Connection]) -> list[str]:
    """Some connections by conn_id and by 4-tuple (with #N, and without when it is the
    only incarnation, or to get the several-incarnations error)."""
    if not conns:
        return []
    step = max(1, len(conns) // (PICKED - 1))
    chosen = [*conns[::step][: PICKED - 1], conns[-1]]
    specs = [str(c.conn_id) for c in chosen]
    specs += [_tuple_spec(c, c.incarnation) for c in chosen[:3]]
    specs += [_tuple_spec(c, None) for c in chosen[:2]]
    last = max(conns, key=lambda c: c.incarnation)
    specs.append(_tuple_spec(last, last.incarnation + 1))  # an incarnation it does not have
    return specs


def _compare(source: str | list[str], config: Config) -> int:
    result = replay(source, config)
    by_conn: dict[int, list[Finding]] = {}
    for f in analyze_rows(source, config).finding_records:
        by_conn.setdefault(f.conn_id, []).append(f)
    conns = result.connections
    specs = [*_specs(conns), str(len(conns) + 1)]  # and one the capture does not hold
    for spec in specs:
        try:
            kept = _kept(result, by_conn, spec)
        except ladder.ConnSpecError as exc:
            with pytest.raises(ladder.ConnSpecError) as streamed:
                _streamed(source, config, spec)
            assert str(streamed.value) == str(exc), spec
            continue
        assert _streamed(source, config, spec) == kept, spec
    return len(specs)


@pytest.mark.parametrize("freeze_after_s", [1.0, 0.0])
@pytest.mark.parametrize("path", CAPTURES, ids=[str(p.relative_to(p.parents[1])) for p in CAPTURES])
def test_the_streamed_show_draws_what_the_kept_one_drew(path: Path, freeze_after_s: float) -> None:
    """With the default freezing, and with every closed connection frozen at once."""
    config = Config(msl=30.0, freeze_after_s=freeze_after_s)
    try:
        replay(str(path), config)
    except CaptureError:
        with pytest.raises(CaptureError):
            ladder.pick(str(path), config, ladder.parse_spec("1"))
        return
    assert _compare(str(path), config) >= 1


def test_a_series_shown_streamed() -> None:
    assert _compare(SERIES, Config()) > 5
    assert _compare(SERIES, Config(freeze_after_s=0.0)) > 5


def test_the_replay_stops_once_the_connection_is_known() -> None:
    """An early connection of a long capture: the replay ends when it retires.

    The crawler's 300 connections with closed ones held 0.5 s: most retire
    long before the capture's end, the first among the first.
    """
    source = str(ROOT / "captures" / "crawler" / "crawler.pcap")
    config = Config(msl=0.1, late_segment_s=0.5)
    whole = replay(source, config)
    first = whole.connections[0]
    assert first.retired_ns is not None and first.retired_ns < whole.capture_end_ns
    seen: list[int] = []

    def retired(conn: Connection) -> None:
        seen.append(conn.conn_id)
        if conn.conn_id == first.conn_id:
            raise Stop

    stopped = replay(source, config, on_retire=retired)
    assert stopped.stopped and not whole.stopped
    assert seen[-1] == first.conn_id
    assert len(seen) < len(whole.connections) / 2
    assert stopped.segments < whole.segments / 2
    assert stopped.connections == []
    # What was read is counted, and no more (the reader runs ahead by a chunk at most).
    assert stopped.stats.frames < whole.stats.frames
    shown = ladder.pick(source, config, ladder.parse_spec(str(first.conn_id)))
    assert shown.conn.conn_id == first.conn_id and shown.stopped
    assert ladder.render(shown.conn) == ladder.render(first)


def test_a_malformed_spec_is_refused_before_the_capture_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such.pcap"
    assert main(["show", str(missing), "--conn", "banana"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--conn banana: expected ID or IP:PORT-IP:PORT[#N]" in err
    assert "no-such.pcap" not in err


def test_show_warns_of_a_truncated_capture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = ROOT / "captures" / "client_close.pcap"
    cut = tmp_path / "cut.pcap"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) - 10])  # inside the last record
    assert main(["show", str(cut), "--conn", "1"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert out.startswith("connection 1: ")
    assert "tcpflow-analyzer: warning: " in err and "cut.pcap" in err
    assert main(["show", str(whole), "--conn", "1"]) == EXIT_OK
    assert "warning" not in capsys.readouterr().err


# --- several worker processes (show.draw) -----------------------------------

TOP = sorted((ROOT / "captures").glob("*.pcap*"))
CRAWLER = str(ROOT / "captures" / "crawler" / "crawler.pcap")
EARLY = Config(msl=0.1, late_segment_s=0.5)  # the crawler's connections retire early


def _drawn(source: str | list[str], config: Config, spec: str, jobs: int) -> tuple[str, object]:
    """The drawing and warnings, or the error's type and text."""
    try:
        d = draw(source, config, ladder.parse_spec(spec), jobs)
    except (ladder.ConnSpecError, CaptureError) as exc:
        return type(exc).__name__, str(exc)
    return d.text, d.warnings


def _compare_jobs(source: str | list[str], config: Config) -> int:
    try:
        conns = replay(source, config).connections
    except CaptureError:
        conns = []
    specs = [*_specs(conns), str(len(conns) + 1), "1"]
    for spec in specs:
        assert _drawn(source, config, spec, 2) == _drawn(source, config, spec, 1), spec
    return len(specs)


@pytest.mark.parametrize("path", TOP, ids=[p.name for p in TOP])
def test_two_workers_draw_what_one_process_draws(path: Path) -> None:
    assert _compare_jobs(str(path), Config()) >= 2


def test_two_workers_on_the_crawler_and_a_series() -> None:
    assert _compare_jobs(CRAWLER, Config()) > 5
    assert _compare_jobs(CRAWLER, EARLY) > 5
    assert _compare_jobs(SERIES, Config(freeze_after_s=0.0)) > 5
    for jobs in (3, 4):  # more workers than the flows spread evenly over
        assert _drawn(CRAWLER, EARLY, "150", jobs) == _drawn(CRAWLER, EARLY, "150", 1)


def test_the_worker_that_meets_it_stops_and_so_does_the_run() -> None:
    drawn = draw(CRAWLER, EARLY, ladder.parse_spec("1"), 2)
    assert drawn.stopped and drawn.text.startswith("connection 1: ")
    # A 4-tuple without #N needs every incarnation: read to the end.
    whole = replay(CRAWLER, EARLY).connections[0]
    assert not draw(CRAWLER, EARLY, ladder.parse_spec(_tuple_spec(whole, None)), 2).stopped


def test_a_worker_that_dies_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ladder.Picker.replay

    def dying(self: ladder.Picker[str], source: str, shard: ShardIds | None = None) -> Replay:
        if shard is not None and shard.k == 1:
            os._exit(7)
        return real(self, source, shard)

    monkeypatch.setattr(ladder.Picker, "replay", dying)
    with pytest.raises(WorkerError, match="exit code 7"):
        draw(CRAWLER, Config(), ladder.parse_spec("299"), 2)


def test_a_shard_stopped_early_does_not_say_it_is_done(tmp_path: Path) -> None:
    """Others would number their connections as if it had none past its stop."""
    first = replay(CRAWLER, EARLY).connections[0]

    def run(stop_at: int | None) -> tuple[bool, int]:
        ledger = Ledger(1, tmp_path)
        ids = ShardIds(ledger, 0)

        def retired(conn: Connection) -> None:
            if conn.conn_id == stop_at:
                raise Stop

        try:
            played = replay(CRAWLER, EARLY, on_retire=retired, shard=ids)
        finally:
            ids.close()
        return played.stopped, ledger.progress(0)

    stopped, progress = run(first.conn_id)
    assert stopped and progress != DONE
    assert run(None) == (False, DONE)


def test_two_workers_on_a_gzip_file_and_a_stream(tmp_path: Path) -> None:
    """The parent inflates a gzip file, or reads a capture read once (here a file
    object), for the workers (fanout.py): the same drawings, errors and warnings; a
    worker that stops early ends the run (the parent's reading stops with it)."""
    gz = tmp_path / "crawler.pcap.gz"
    gz.write_bytes(gzip.compress(Path(CRAWLER).read_bytes(), compresslevel=1))
    whole = replay(CRAWLER, EARLY).connections
    specs = ["1", "150", str(len(whole)), str(len(whole) + 1), _tuple_spec(whole[7], None)]
    for config in (EARLY, Config()):
        for spec in specs:
            one = _drawn(CRAWLER, config, spec, 1)
            assert _drawn(str(gz), config, spec, 2) == one, spec
            with open(CRAWLER, "rb") as f:
                assert _drawn(f, config, spec, 2) == one, spec  # type: ignore[arg-type]
    drawn = draw(str(gz), EARLY, ladder.parse_spec("1"), 2)
    assert drawn.stopped
