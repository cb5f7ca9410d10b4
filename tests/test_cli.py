"""The command line: summary, CSV output, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tcpflow_analyzer.cli import EXIT_UNREADABLE, EXIT_USAGE, main
from tcpflow_analyzer.report import CONNECTION_COLUMNS, TRANSITION_COLUMNS

from .craft import clean_close_pcap


def test_analyze_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pcap = clean_close_pcap(tmp_path / "c.pcap")
    assert main(["analyze", str(pcap)]) == 0
    out = capsys.readouterr().out
    assert "connections: 1" in out
    assert "how they ended:  fin 1" in out
    assert "who closed first: client 1" in out
    assert "client end state: TIME_WAIT 1" in out


def test_analyze_out_writes_csvs_with_documented_columns(tmp_path: Path) -> None:
    pcap = clean_close_pcap(tmp_path / "c.pcap")
    assert main(["analyze", str(pcap), "--out", str(tmp_path / "o")]) == 0
    conns = pd.read_csv(tmp_path / "o" / "connections.csv")
    trans = pd.read_csv(tmp_path / "o" / "transitions.csv")
    assert list(conns.columns) == list(CONNECTION_COLUMNS)
    assert list(trans.columns) == list(TRANSITION_COLUMNS)
    assert conns.loc[0, "close_type"] == "fin"
    assert conns.loc[0, "client_state_at_end"] == "TIME_WAIT"
    assert (trans["to_state"] == "TIME_WAIT").sum() == 1


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.pcap"
    assert main(["analyze", str(missing)]) == EXIT_UNREADABLE
    err = capsys.readouterr().err
    assert "nope.pcap" in err
    assert "Traceback" not in err


def test_text_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    assert main(["analyze", str(text)]) == EXIT_UNREADABLE
    err = capsys.readouterr().err
    assert "notes.txt" in err and "Traceback" not in err


def test_bad_msl_is_a_usage_error(tmp_path: Path) -> None:
    pcap = clean_close_pcap(tmp_path / "c.pcap")
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(pcap), "--msl", "-1"])
    assert exc.value.code == EXIT_USAGE


def test_stdin_dash_reads_standard_input(tmp_path: Path) -> None:
    pcap = clean_close_pcap(tmp_path / "c.pcap")
    proc = subprocess.run(
        [sys.executable, "-m", "tcpflow_analyzer", "analyze", "-"],
        input=pcap.read_bytes(),
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"connections: 1" in proc.stdout


def test_unreadable_input_via_subprocess_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "zero.pcap"
    bad.write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, "-m", "tcpflow_analyzer", "analyze", str(bad)],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == EXIT_UNREADABLE
    assert b"zero.pcap" in proc.stderr
    assert b"Traceback" not in proc.stderr
