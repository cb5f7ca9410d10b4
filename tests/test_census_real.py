"""The census and the batch on real kernel captures (captures/make_issue4_captures.py).

crawler/: 300 client-closed connections and what `ss -tan state time-wait` said in
the client namespace right after the capture stopped. batch/: 100 real captures
and one corrupt file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tcpflow_analyzer
from tcpflow_analyzer.batch import analyze_many, find_captures
from tcpflow_analyzer.census import census

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
CRAWLER = CAPTURES / "crawler"
BATCH = CAPTURES / "batch"
NOTE = json.loads((CRAWLER / "NOTE.json").read_text())
BATCH_NOTE = json.loads((BATCH / "NOTE.json").read_text())
BATCH_FILES = sorted(p.name for p in BATCH.glob("*.pcap") if p.name != "corrupt.pcap")

Tuple4 = tuple[str, int, str, int]


def _endpoint(text: str) -> tuple[str, int]:
    addr, _, port = text.rpartition(":")
    return addr.strip("[]"), int(port)


def _ss_time_wait() -> tuple[list[str], set[Tuple4]]:
    """Socket lines of `ss -tan state time-wait` and their (local, peer) 4-tuples."""
    lines = (CRAWLER / "ss_time_wait.txt").read_text().splitlines()
    assert lines[0].split()[:2] == ["Recv-Q", "Send-Q"]
    sockets = [ln for ln in lines[1:] if ln.strip()]
    tuples = set()
    for ln in sockets:
        # Recv-Q Send-Q Local:Port Peer:Port (the state column is left out with `state`)
        local, peer = ln.split()[2:4]
        tuples.add((*_endpoint(local), *_endpoint(peer)))
    return sockets, tuples


@pytest.fixture(scope="module")
def crawler() -> tcpflow_analyzer.Analysis:
    return tcpflow_analyzer.analyze(CRAWLER / "crawler.pcap")


def test_crawler_capture_is_what_its_note_says(crawler: tcpflow_analyzer.Analysis) -> None:
    conns = crawler.connections
    assert crawler.warnings == []
    assert len(conns) == NOTE["connections"]
    assert set(conns["client_ip"]) == {NOTE["client_ip"]}
    assert (conns["active_closer"] == "client").all()


def test_census_time_wait_at_end_matches_ss(crawler: tcpflow_analyzer.Analysis) -> None:
    sockets, ss_tuples = _ss_time_wait()
    assert len(sockets) == NOTE["ss_time_wait_count"]
    # ss_all.txt (all states, taken right after) agrees.
    all_lines = (CRAWLER / "ss_all.txt").read_text().splitlines()[1:]
    assert sum(ln.split()[0] == "TIME-WAIT" for ln in all_lines if ln.strip()) == len(sockets)

    cen = census(
        crawler.connections, crawler.transitions, interval=1.0, msl=30.0, end_ts=NOTE["ss_time"]
    )
    client = cen.states[cen.states["host"] == NOTE["client_ip"]]
    last = client.iloc[-1]
    assert last["ts"] == pytest.approx(NOTE["ss_time"])
    assert int(last["TIME_WAIT"]) == len(sockets)
    hosts = cen.hosts.set_index("host")
    assert int(hosts.loc[NOTE["client_ip"], "time_wait_at_end"]) == len(sockets)
    assert int(hosts.loc[NOTE["server_ip"], "time_wait_at_end"]) == 0

    conns = crawler.connections
    tw = conns[
        (conns["client_ip"] == NOTE["client_ip"]) & (conns["client_state_at_end"] == "TIME_WAIT")
    ]
    ours = {
        (str(r.client_ip), int(r.client_port), str(r.server_ip), int(r.server_port))
        for r in tw.itertuples()
    }
    assert ours == ss_tuples


def test_census_time_wait_grows_with_each_client_close(
    crawler: tcpflow_analyzer.Analysis,
) -> None:
    """Nothing expires within the capture (Linux holds TIME_WAIT 60 s): the client's count
    at each sample is the number of connections whose TIME_WAIT began by then."""
    cen = census(crawler.connections, crawler.transitions, interval=1.0, end_ts=NOTE["ss_time"])
    client = cen.states[cen.states["host"] == NOTE["client_ip"]]
    trans = crawler.transitions
    entered = trans[(trans["endpoint"] == "client") & (trans["to_state"] == "TIME_WAIT")]["ts"]
    for ts, count in zip(client["ts"], client["TIME_WAIT"], strict=True):
        assert int(count) == int((entered <= ts).sum())


@pytest.mark.parametrize("name", BATCH_FILES)
def test_batch_capture_analyzes_cleanly(name: str) -> None:
    result = tcpflow_analyzer.analyze(BATCH / name)
    assert result.warnings == []
    assert not result.truncated
    note = next(f for f in BATCH_NOTE["files"] if f["file"] == name)
    assert len(result.connections) == len(note["connections"])


def test_batch_has_100_captures_and_one_corrupt_file() -> None:
    assert len(BATCH_FILES) == 100
    assert (BATCH / "corrupt.pcap").exists()


def test_analyze_many_reports_the_corrupt_file_and_keeps_the_rest() -> None:
    paths = find_captures([BATCH])
    assert len(paths) == 101
    result = analyze_many(paths, jobs=2)
    caps = result.captures.set_index("capture")
    corrupt = str(BATCH / "corrupt.pcap")
    assert caps.loc[corrupt, "status"] == "error"
    assert "corrupt.pcap" in caps.loc[corrupt, "error"]
    others = caps.drop(index=corrupt)
    assert (others["status"] == "ok").all(), others[others["status"] != "ok"]
    assert result.failed == 1
    assert not (result.connections["capture"] == corrupt).any()
    expected = sum(len(f["connections"]) for f in BATCH_NOTE["files"])
    assert len(result.connections) == expected
