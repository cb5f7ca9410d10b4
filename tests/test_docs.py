"""The public vocabulary is documented: every column, state, event and code is in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tcpflow_analyzer.batch import CAPTURE_COLUMNS
from tcpflow_analyzer.census import HOST_COLUMNS, PORT_COLUMNS
from tcpflow_analyzer.findings import Code
from tcpflow_analyzer.report import (
    ANOMALY_COLUMNS,
    CONNECTION_COLUMNS,
    FINDING_COLUMNS,
    TRANSITION_COLUMNS,
    ZEEK_COLUMNS,
)
from tcpflow_analyzer.segment import SkipReason
from tcpflow_analyzer.states import Anomaly, Event, State

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
DOCUMENTED = set(re.findall(r"`([A-Za-z0-9_]+)`", README))

VOCABULARY = sorted(
    {*CONNECTION_COLUMNS, *TRANSITION_COLUMNS, *ANOMALY_COLUMNS, *FINDING_COLUMNS}
    | {*ZEEK_COLUMNS, *CAPTURE_COLUMNS, *HOST_COLUMNS, *PORT_COLUMNS}
    | {c.value for c in Code}
    | {s.value for s in State}
    | {e.value for e in Event}
    | {a.value for a in Anomaly}
    | {r.value for r in SkipReason}
)


@pytest.mark.parametrize("name", VOCABULARY)
def test_name_is_documented_in_readme(name: str) -> None:
    assert name in DOCUMENTED


def test_readme_opens_with_quick_start_of_two_commands() -> None:
    body = README.split("## Quick start", 1)[1]
    block = body.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2
    assert "tcpflow-analyzer analyze captures/" in commands[0]
    assert "pytest" in commands[1]
    assert README.index("## Quick start") < README.index("## What it does")


def test_every_command_has_help() -> None:
    from tcpflow_analyzer.cli import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, sub_parser in sub.choices.items():  # type: ignore[union-attr]
        assert sub_parser.format_help().strip(), name
        assert f"tcpflow-analyzer {name}" in README
