"""batch on the command line: every capture streamed to CSV (batch.stream_many).

The tables must hold what the kept batch (``analyze_many``, DataFrames) holds,
each capture's lines must be the lines ``analyze --out`` writes for it, in its
order, and nothing of the per-capture directories may stay behind.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
import pytest

from tcpflow_analyzer import batch
from tcpflow_analyzer.api import TABLES, load_tables
from tcpflow_analyzer.batch import (
    _append_lines,
    analyze_many,
    analyze_series,
    find_captures,
    stream_many,
)
from tcpflow_analyzer.cli import EXIT_SOME_FAILED, EXIT_UNREADABLE, main
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.stream import analyze_to_csv

from .craft import clean_close_pcap

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "captures"
CORPUS = ROOT.parent / "shared" / "corpus"
SERIES = sorted((CAPTURES / "series").glob("*.pcap"))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows in an order that does not depend on the order they were written in."""
    cols = list(frame.columns)
    return frame.sort_values(cols, kind="stable", na_position="first").reset_index(drop=True)


def _same_tables(kept: dict[str, pd.DataFrame], directory: Path) -> None:
    """The tables written in ``directory`` hold the kept tables' rows (as CSV holds them)."""
    buffered = {}
    for name, frame in kept.items():
        # Through CSV, as the kept batch's write() gives them, so that both sides are read
        # by the same code.
        text = io.StringIO()
        frame.to_csv(text, index=False)
        text.seek(0)
        dtypes = {"capture": "string", **TABLES[name]}
        buffered[name] = pd.read_csv(text, dtype=dtypes, keep_default_na=False, na_values=[""])
    written = load_tables(directory)
    assert set(written) == set(kept)
    for name in kept:
        assert list(written[name].columns) == list(buffered[name].columns), name
        pd.testing.assert_frame_equal(
            _sorted(written[name]), _sorted(buffered[name]), obj=name, check_exact=True
        )


def _captures_text(frame: pd.DataFrame) -> str:
    return frame.drop(columns="seconds").to_csv(index=False)


def _no_leftovers(directory: Path) -> None:
    assert sorted(p.name for p in directory.iterdir() if p.name.startswith(".")) == []


def _all_captures() -> list[Path]:
    paths = find_captures([CAPTURES])  # captures/batch holds a corrupt file too
    if CORPUS.is_dir():
        paths += find_captures([CORPUS])
    return paths


@pytest.mark.parametrize("jobs", [1, 2])
def test_streamed_batch_holds_the_kept_batch_tables(tmp_path: Path, jobs: int) -> None:
    paths = _all_captures()
    assert len(paths) > 150 or not CORPUS.is_dir()
    kept = analyze_many(paths, jobs=2)
    done = stream_many(paths, tmp_path, jobs=jobs)
    assert done.failed == kept.failed >= 1
    assert done.connections == len(kept.connections)
    assert _captures_text(done.captures()) == _captures_text(kept.captures)
    written = pd.read_csv(tmp_path / "captures.csv", dtype=str, keep_default_na=False)
    assert written.drop(columns="seconds").to_csv(index=False) == _captures_text(kept.captures)
    _same_tables(kept.tables, tmp_path)
    _no_leftovers(tmp_path)


def test_each_capture_has_its_analyze_lines_in_their_order(tmp_path: Path) -> None:
    paths = sorted(CAPTURES.glob("*.pcap"))
    stream_many(paths, tmp_path / "batch", jobs=2)
    for name in TABLES:
        lines = (tmp_path / "batch" / f"{name}.csv").read_text().splitlines()
        assert lines[0].startswith("capture,")
        rest = lines[1:]
        for path in paths:
            one = tmp_path / "one" / path.name
            analyze_to_csv(str(path), Config(), one, jobs=1)
            expected = (one / f"{name}.csv").read_text().splitlines()[1:]
            mine = rest[: len(expected)]
            # the capture's lines are together, in the order analyze wrote them
            assert mine == [f"{path},{line}" for line in expected], (name, path.name)
            rest = rest[len(expected) :]
        assert rest == []


@pytest.mark.parametrize("jobs", [1, 2])
def test_streamed_series_holds_the_kept_series_tables(tmp_path: Path, jobs: int) -> None:
    kept = analyze_series(SERIES)
    done = stream_many(SERIES, tmp_path, jobs=jobs, series=True)
    assert len(done.rows) == 1
    assert done.captures()["capture"].iloc[0] == " + ".join(map(str, SERIES))
    assert _captures_text(done.captures()) == _captures_text(kept.captures)
    _same_tables(kept.tables, tmp_path)
    _no_leftovers(tmp_path)


def test_a_failing_capture_adds_no_lines_and_the_rest_go_on(tmp_path: Path) -> None:
    caps = tmp_path / "caps"
    caps.mkdir()
    clean_close_pcap(caps / "a.pcap")
    (caps / "b.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 7)  # a header cut short
    clean_close_pcap(caps / "c.pcap")
    out = tmp_path / "out"
    done = stream_many(find_captures([caps]), out, jobs=2)
    assert done.captures()["status"].tolist() == ["ok", "error", "ok"]
    assert "b.pcap" in done.captures()["error"].iloc[1]
    conns = load_tables(out)["connections"]
    assert conns["capture"].tolist() == [str(caps / "a.pcap"), str(caps / "c.pcap")]
    _no_leftovers(out)


def test_a_capture_name_with_comma_quote_and_line_break_is_one_field(tmp_path: Path) -> None:
    odd = tmp_path / 'a, "b"\nc.pcap'
    clean_close_pcap(odd)
    plain = tmp_path / "plain.pcap"
    clean_close_pcap(plain)
    out = tmp_path / "out"
    stream_many([odd, plain], out, jobs=1)
    for name, frame in load_tables(out).items():
        if name in ("connections", "transitions", "zeek_conn"):
            assert set(frame["capture"]) == {str(odd), str(plain)}, name
            assert (frame["capture"] == str(odd)).sum() == (frame["capture"] == str(plain)).sum()


@pytest.mark.parametrize("many", [False, True])
def test_a_capture_name_not_in_utf8_is_written_as_its_bytes(tmp_path: Path, many: bool) -> None:
    """A file name that is not UTF-8 (Python holds its bytes as lone surrogates) goes in the
    capture column as the bytes it is, one capture alone (written by the analysis) or
    among others (appended)."""
    raw = os.fsencode(tmp_path) + b"/caf\xe9.pcap"
    clean_close_pcap(Path(os.fsdecode(raw)))
    paths = [Path(os.fsdecode(raw))]
    if many:
        clean_close_pcap(tmp_path / "plain.pcap")
        paths.append(tmp_path / "plain.pcap")
    done = stream_many(paths, tmp_path / "out", jobs=2)
    assert [row["status"] for row in done.rows] == ["ok"] * len(paths)
    lines = (tmp_path / "out" / "connections.csv").read_bytes().splitlines()
    assert lines[1].startswith(raw + b",")
    assert sum(line.startswith(raw + b",") for line in lines) == 1


@pytest.mark.parametrize("block", [1 << 20, 5, 16, 29])
def test_lines_holding_a_quoted_line_break_are_continued_not_prefixed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """Whatever the blocks it is read in (a field's line break at a block's end, in a
    block alone), and with a last line that lacks its end."""
    monkeypatch.setattr(batch, "_APPEND_BLOCK", block)
    source = tmp_path / "t.csv"
    body = b'1,"two\nlines"\n2,plain\n3,"say ""hi""\n""there"""\n4,"a,b"\n5,"x\r\ny"\n'
    source.write_bytes(b"conn_id,detail\n" + body * 3 + b"6,end")
    out = io.BytesIO()
    assert _append_lines(source, out, b"cap,") == 16
    assert _append_lines(source, out, b"again,") == 16
    out.seek(0)
    frame = pd.read_csv(out, header=None, names=["capture", "conn_id", "detail"])
    assert frame["capture"].tolist() == ["cap"] * 16 + ["again"] * 16
    assert frame["conn_id"].tolist() == ([1, 2, 3, 4, 5] * 3 + [6]) * 2
    details = ["two\nlines", "plain", 'say "hi"\n"there"', "a,b", "x\r\ny"] * 3 + ["end"]
    assert frame["detail"].tolist() == details * 2
    assert _append_lines(tmp_path / "missing.csv", out, b"cap,") == 0


def test_plain_lines_get_their_prefix_in_one_piece(tmp_path: Path) -> None:
    """The common case (no field holds a line break) gives what prefixing each line does."""
    lines = [f'{i},"RFC 9293, {i}",x' for i in range(50_000)]
    source = tmp_path / "t.csv"
    source.write_text("a,b,c\n" + "\n".join(lines) + "\n")
    out = io.BytesIO()
    assert _append_lines(source, out, b'"p,q",') == len(lines)
    assert out.getvalue().decode() == "".join(f'"p,q",{line}\n' for line in lines)


def test_cli_batch_streams_and_reports_like_before(tmp_path: Path) -> None:
    caps = tmp_path / "caps"
    caps.mkdir()
    clean_close_pcap(caps / "a.pcap")
    (caps / "broken.pcap").write_text("not a capture\n")
    out = tmp_path / "out"
    html = tmp_path / "r.html"
    code = main(["batch", str(caps), "--out", str(out), "--jobs", "2", "--html", str(html)])
    assert code == EXIT_SOME_FAILED
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{n}.csv" for n in TABLES] + ["captures.csv"]
    )
    assert "a.pcap" in html.read_text() and "broken.pcap" in html.read_text()


@pytest.mark.parametrize("rows", [200_000, 3])
def test_cli_batch_parquet_is_the_csv_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    """Written a few rows at a time too (many row groups): the same tables."""
    monkeypatch.setattr(batch, "_PARQUET_ROWS", rows)
    paths = [str(p) for p in sorted(CAPTURES.glob("*.pcap"))[:6]]
    assert main(["batch", *paths, "--out", str(tmp_path / "csv")]) == 0
    assert main(["batch", *paths, "--out", str(tmp_path / "pq"), "--format", "parquet"]) == 0
    names = sorted(p.name for p in (tmp_path / "pq").iterdir())
    assert names == sorted([f"{n}.parquet" for n in TABLES] + ["captures.parquet"])
    tables = load_tables(tmp_path / "csv")
    assert len(tables["transitions"]) > 10 * rows or rows > 1000
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "pq" / f"{name}.parquet"), frame)
    captures = pd.read_parquet(tmp_path / "pq" / "captures.parquet")
    assert {str(k): str(v) for k, v in captures.dtypes.items()} == batch.CAPTURE_COLUMNS
    assert captures["capture"].tolist() == paths


def test_cli_batch_output_that_cannot_be_written_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_close_pcap(tmp_path / "a.pcap")
    blocked = tmp_path / "file"
    blocked.write_text("a file where the output directory should be\n")
    assert main(["batch", str(tmp_path / "a.pcap"), "--out", str(blocked)]) == EXIT_UNREADABLE
    err = capsys.readouterr().err
    assert "cannot write to" in err and str(blocked) in err and "Traceback" not in err


def test_streamed_batch_keeps_no_rows_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line's batch never builds the kept rows (what made its memory grow)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("analyze_rows called")

    monkeypatch.setattr(batch, "analyze_rows", refuse)
    done = stream_many([CAPTURES / "client_close.pcap"], tmp_path, jobs=1)
    assert done.captures()["status"].tolist() == ["ok"] and done.connections >= 1
    assert os.path.getsize(tmp_path / "transitions.csv") > 100
