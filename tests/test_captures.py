"""Real-kernel captures in captures/: whole sequences checked against each capture's note.

``captures/MANIFEST.json`` records, for every capture made by
``captures/make_captures.py``, what the script did (ground truth from the
scenario, not read back from this analyzer): the connections, who closed, how,
and the state each endpoint was left in at the capture's last packet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import tcpflow_analyzer

CAPTURES = Path(__file__).resolve().parents[1] / "captures"
MANIFEST: list[dict[str, Any]] = json.loads((CAPTURES / "MANIFEST.json").read_text())

# Facts compared per connection when the note states them.
FACTS = (
    "incarnation",
    "handshake",
    "active_closer",
    "close_type",
    "client_state_at_end",
    "server_state_at_end",
)


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def test_every_capture_file_has_a_note() -> None:
    files = {p.name for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng")}
    assert files == {entry["file"] for entry in MANIFEST}


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_capture_matches_its_note(entry: dict[str, Any]) -> None:
    result = tcpflow_analyzer.analyze(CAPTURES / entry["file"])
    conns = result.connections.sort_values(["first_frame", "conn_id"])
    assert len(conns) == entry["connections"]
    assert result.warnings == []
    got = [
        {
            "client": _endpoint(r.client_ip, r.client_port),
            "server": _endpoint(r.server_ip, r.server_port),
            **{fact: getattr(r, fact) for fact in FACTS},
        }
        for r in conns.itertuples()
    ]
    want = [
        {k: v for k, v in note.items() if k in ("client", "server", *FACTS)}
        for note in entry["per_connection"]
    ]
    assert [{k: g[k] for k in w} for g, w in zip(got, want, strict=True)] == want
