"""`show`: one connection as a ladder diagram, chosen by id or 4-tuple (#N)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tcpflow_analyzer import ladder
from tcpflow_analyzer.cli import EXIT_OK, EXIT_USAGE, main
from tcpflow_analyzer.config import Config
from tcpflow_analyzer.replay import replay

from .craft import Conversation


def _two_incarnations(path: Path) -> Path:
    """Client-first close, then the same 4-tuple reopened with a new ISN 1 s later."""
    conv = Conversation().handshake().client_close()
    conv.cseq += 100_000  # a new ISN
    conv.sseq += 200_000
    conv.step = 1.0
    conv.c("S")
    conv.step = 0.001
    conv.s("SA")
    conv.c("A")
    return conv.write(path)


def test_select_by_id_and_by_four_tuple(tmp_path: Path) -> None:
    conns = replay(_two_incarnations(tmp_path / "r.pcap"), Config()).connections
    assert ladder.select(conns, "2") is conns[1]
    assert ladder.select(conns, "10.1.0.1:40000-10.1.0.2:80#1") is conns[0]
    assert ladder.select(conns, "10.1.0.2:80-10.1.0.1:40000#2") is conns[1]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("10.1.0.1:40000-10.1.0.2:80", "2 connections on that 4-tuple"),
        ("7", "no connection 7"),
        ("10.1.0.1:40000-10.1.0.2:81", "no connection between"),
        ("10.1.0.1:40000-10.1.0.2:80#3", "no incarnation #3"),
        ("10.1.0.1-10.1.0.2", "not IP:PORT"),
        ("banana", "expected ID or IP:PORT-IP:PORT"),
    ],
)
def test_select_errors_say_what_is_wrong(tmp_path: Path, spec: str, message: str) -> None:
    conns = replay(_two_incarnations(tmp_path / "r.pcap"), Config()).connections
    with pytest.raises(ladder.ConnSpecError, match=message):
        ladder.select(conns, spec)


def test_ladder_draws_every_segment_with_direction_and_states(tmp_path: Path) -> None:
    conn = replay(_two_incarnations(tmp_path / "r.pcap"), Config()).connections[0]
    text = ladder.render(conn, {8: ["a note"]})
    rows = [line for line in text.splitlines() if line[:7].strip().isdigit()]
    assert [int(r[:7]) for r in rows] == list(range(1, 8))
    syn, synack = rows[0], rows[1]
    assert "-S seq=0 len=0-" in syn and syn.rstrip().endswith("->")
    assert "SYN_SENT" in syn
    assert "<-" in synack and "S. seq=0 ack=1 len=0" in synack and "SYN_RECEIVED" in synack
    fin = rows[3]
    assert "F. seq=1 ack=1" in fin and "FIN_WAIT_1" in fin
    assert "a note" not in text  # frame 8 belongs to the second incarnation
    # The new SYN replaces the client's TIME_WAIT: drawn as a line without a frame.
    assert "client new_incarnation (frame 8, another connection)" in text
    assert text.rstrip().endswith("client CLOSED, server CLOSED")


def test_ladder_notes_stand_beside_their_frame(tmp_path: Path) -> None:
    conn = replay(_two_incarnations(tmp_path / "r.pcap"), Config()).connections[1]
    text = ladder.render(conn, {9: ["lost_final_ack (server)"]})
    (row,) = [line for line in text.splitlines() if line[:7].strip() == "9"]
    assert row.endswith("lost_final_ack (server)")


def test_flags_text_uses_tcpdump_letters() -> None:
    assert ladder.flags_text(0x02) == "S"
    assert ladder.flags_text(0x12) == "S."
    assert ladder.flags_text(0x11) == "F."
    assert ladder.flags_text(0x04) == "R"
    assert ladder.flags_text(0x18) == "P."
    assert ladder.flags_text(0x00) == "none"


def test_cli_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pcap = _two_incarnations(tmp_path / "r.pcap")
    assert main(["show", str(pcap), "--conn", "10.1.0.1:40000-10.1.0.2:80#2"]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("connection 2: 10.1.0.1:40000 (client) <-> 10.1.0.2:80 (server)")
    assert "incarnation 2" in out
    assert main(["show", str(pcap), "--conn", "10.1.0.1:40000-10.1.0.2:80"]) == EXIT_USAGE
    assert "add one of #1 (id 1), #2 (id 2)" in capsys.readouterr().err
