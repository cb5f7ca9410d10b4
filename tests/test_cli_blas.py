"""The command line runs numpy's OpenBLAS with one thread (cli.main), unless the user chose.

numpy, imported by the pcap fast path, starts OpenBLAS's thread pool at import,
and its threads spin on the other cores for a while; the analysis uses no BLAS.
OpenBLAS reads ``OPENBLAS_NUM_THREADS`` when numpy is imported, so the test
records its value at that moment, in a fresh interpreter running ``main``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Records OPENBLAS_NUM_THREADS as numpy's import starts, then runs the command line.
_DRIVER = """
import importlib.abc, os, sys
seen = []
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "numpy" and not seen:
            seen.append(os.environ.get("OPENBLAS_NUM_THREADS", "unset"))
        return None
sys.meta_path.insert(0, Watch())
from tcpflow_analyzer.cli import main
code = main(sys.argv[1:])
print("numpy imported with", seen[0] if seen else "numpy never imported")
sys.exit(code)
"""


@pytest.mark.parametrize(("given", "want"), [(None, "1"), ("3", "3")], ids=["unset", "user-set"])
def test_numpy_is_imported_with_one_openblas_thread(
    tmp_path: Path, given: str | None, want: str
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("OPENBLAS_NUM_THREADS", None)
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    capture = ROOT / "captures" / "client_close.pcap"
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, "analyze", str(capture), "--out", str(tmp_path / "o")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"numpy imported with {want}"
