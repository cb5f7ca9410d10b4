"""batch: many captures in worker processes; a bad file gets its row and the batch goes on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tcpflow_analyzer.batch import CAPTURE_COLUMNS, analyze_many, find_captures
from tcpflow_analyzer.cli import EXIT_SOME_FAILED, main
from tcpflow_analyzer.report import CONNECTION_COLUMNS

from .craft import clean_close_pcap

CAPTURES = Path(__file__).resolve().parents[1] / "captures"


def _dir_with_bad_file(tmp_path: Path) -> Path:
    d = tmp_path / "caps"
    (d / "sub").mkdir(parents=True)
    clean_close_pcap(d / "a.pcap")
    clean_close_pcap(d / "sub" / "b.pcap")
    (d / "sub" / "broken.pcap").write_text("not a capture at all\n")
    (d / "notes.txt").write_text("ignored: not a capture name\n")
    return d


def test_find_captures_walks_directories_and_globs(tmp_path: Path) -> None:
    d = _dir_with_bad_file(tmp_path)
    names = [p.name for p in find_captures([d])]
    assert names == ["a.pcap", "b.pcap", "broken.pcap"]
    assert [p.name for p in find_captures([str(d / "sub" / "b*.pcap")])] == [
        "b.pcap",
        "broken.pcap",
    ]
    assert [p.name for p in find_captures([str(d / "**" / "a.pcap")])] == ["a.pcap"]
    # The same file named twice is analyzed once.
    assert len(find_captures([d / "a.pcap", d / "a.pcap"])) == 1


@pytest.mark.parametrize("jobs", [1, 2])
def test_bad_capture_gets_its_row_and_nothing_else_is_lost(tmp_path: Path, jobs: int) -> None:
    d = _dir_with_bad_file(tmp_path)
    result = analyze_many(find_captures([d]), jobs=jobs)
    caps = result.captures
    assert {str(k): str(v) for k, v in caps.dtypes.items()} == CAPTURE_COLUMNS
    assert caps["status"].tolist() == ["ok", "ok", "error"]
    assert "broken.pcap" in caps["error"].iloc[2] and "offset 0" in caps["error"].iloc[2]
    assert result.failed == 1
    conns = result.connections
    assert list(conns.columns) == ["capture", *CONNECTION_COLUMNS]
    assert len(conns) == 2 and conns["capture"].str.endswith(("a.pcap", "b.pcap")).all()


def test_batch_over_real_captures_matches_single_analyses() -> None:
    from tcpflow_analyzer import analyze

    paths = sorted(CAPTURES.glob("*.pcap*"))  # the top level: no deliberately corrupt file
    result = analyze_many(paths, jobs=2)
    assert (result.captures["status"] == "ok").all()
    for path in paths:
        single = analyze(path).connections
        mine = result.connections[result.connections["capture"] == str(path)]
        assert mine.drop(columns="capture").reset_index(drop=True).equals(single)


def test_cli_batch_writes_tables_and_reports_failures(tmp_path: Path) -> None:
    d = _dir_with_bad_file(tmp_path)
    out = tmp_path / "out"
    assert main(["batch", str(d), "--out", str(out), "--jobs", "2"]) == EXIT_SOME_FAILED
    caps = pd.read_csv(out / "captures.csv")
    assert caps["status"].tolist() == ["ok", "ok", "error"]
    conns = pd.read_csv(out / "connections.csv")
    assert len(conns) == 2 and "capture" in conns.columns


def test_all_captures_failing_still_gives_tables_with_columns(tmp_path: Path) -> None:
    bad = tmp_path / "x.pcap"
    bad.write_bytes(b"")
    result = analyze_many([bad])
    assert result.failed == 1
    assert result.connections.empty
    assert list(result.connections.columns) == ["capture", *CONNECTION_COLUMNS]


def test_batch_csvs_load_with_documented_dtypes(tmp_path: Path) -> None:
    from tcpflow_analyzer.api import load_tables

    paths = sorted(CAPTURES.glob("*.pcap*"))
    result = analyze_many(paths, jobs=2)
    result.write(tmp_path)
    loaded = load_tables(tmp_path)
    assert set(loaded) == set(result.tables)
    for name, table in result.tables.items():
        pd.testing.assert_frame_equal(loaded[name], table, obj=name)
