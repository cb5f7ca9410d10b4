"""The batch module is imported when first asked for, not by every command-line run."""

from __future__ import annotations

import subprocess
import sys

import tcpflow_analyzer
from tcpflow_analyzer import batch


def test_the_command_line_does_not_import_the_batch_module() -> None:
    code = "import sys, tcpflow_analyzer.cli; print('tcpflow_analyzer.batch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_package_still_gives_the_batch_names() -> None:
    assert tcpflow_analyzer.analyze_many is batch.analyze_many
    assert tcpflow_analyzer.BatchResult is batch.BatchResult
    names: dict[str, object] = {}
    exec("from tcpflow_analyzer import *", names)
    assert names["analyze_many"] is batch.analyze_many


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        tcpflow_analyzer.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("no AttributeError")
