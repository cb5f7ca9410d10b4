"""``analyze FILE --out DIR`` (the streamed analysis), ``batch`` to CSV and ``show`` never import
pandas.

Importing pandas costs a quarter to half a second before the analysis starts.
The command line is run in a subprocess (tests/no_pandas_driver.py) whose
every import of a pandas module is written down, by the parent and by the
worker processes it forks: with ``--jobs 1`` on every capture, and the default
worker count and ``--jobs 2`` on a few, none may be. The controls show that the watch
sees pandas imported by the parent (``analyze --html`` makes frames) and by a
worker alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .test_summary_reads import CAPTURES

ROOT = Path(__file__).resolve().parents[1]
DRIVER = Path(__file__).with_name("no_pandas_driver.py")
SMALL = ROOT / "captures" / "crawler" / "crawler.pcap"
# Sharded too: pcap (the fast reader), pcapng (the other reader), a series' file.
SHARDED = [
    SMALL,
    ROOT / "captures" / "pcapng_two_ifaces.pcapng",
    *sorted((ROOT / "captures" / "series").glob("*.pcap*"))[:1],
]


def _run(
    argvs: list[list[str]], tmp_path: Path, *, worker_imports: bool = False
) -> tuple[dict[str, Any], list[tuple[int, str]]]:
    """Run ``argvs`` through the driver: its result, and the (pid, module) imports seen."""
    log, result, args = tmp_path / "imports.log", tmp_path / "result.json", tmp_path / "argv.json"
    log.write_text("")
    args.write_text(json.dumps(argvs))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("WORKER_IMPORTS_PANDAS", None)
    if worker_imports:
        env["WORKER_IMPORTS_PANDAS"] = "1"
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(log), str(result), str(args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    seen = []
    for line in log.read_text().splitlines():
        pid, name = line.split()
        seen.append((int(pid), name))
    return json.loads(result.read_text()), seen


def test_analyze_out_imports_no_pandas_on_any_capture(tmp_path: Path) -> None:
    """``--jobs 1`` on every capture (any row could reach the frame-making fallback of
    ``csvtext.LineFormat``); the default and two workers on a few."""
    argvs = []
    for k, path in enumerate(CAPTURES):
        runs: list[list[str]] = [["--jobs", "1"]]
        if path in SHARDED:
            runs += [[], ["--jobs", "2"]]
        for jobs in runs:
            out = tmp_path / f"{k}-{''.join(jobs)}"
            argvs.append(["analyze", str(path), "--out", str(out), *jobs])
    result, seen = _run(argvs, tmp_path)
    assert len(CAPTURES) > 30
    assert set(SHARDED) <= set(CAPTURES)
    assert result["codes"] == [0] * len(argvs)
    assert seen == []
    assert result["modules"] == []
    # The runs wrote their tables.
    assert all((Path(argv[3]) / "connections.csv").is_file() for argv in argvs)


def test_the_watch_sees_pandas_imported_by_the_parent(tmp_path: Path) -> None:
    argvs = [["analyze", str(SMALL), "--html", str(tmp_path / "r.html")]]
    result, seen = _run(argvs, tmp_path)
    assert result["codes"] == [0]
    assert (result["pid"], "pandas") in seen
    assert "pandas" in result["modules"]


def test_the_watch_sees_pandas_imported_by_a_worker_alone(tmp_path: Path) -> None:
    argvs = [["analyze", str(SMALL), "--out", str(tmp_path / "out"), "--jobs", "2"]]
    result, seen = _run(argvs, tmp_path, worker_imports=True)
    assert result["codes"] == [0]
    assert result["modules"] == []  # the parent did not
    workers = {pid for pid, name in seen if name == "pandas"}
    assert len(workers) == 2
    assert result["pid"] not in workers


def test_batch_imports_no_pandas(tmp_path: Path) -> None:
    """``batch`` to CSV streams each capture as ``analyze --out`` does and writes its
    captures table as text: neither the parent nor a worker (of the pool over the
    captures, or a series' shards) imports pandas, and no worker starts with it. The
    control: the same batches after an ``analyze --html`` in the same process (which
    imports pandas) have workers that start with it."""
    series = [str(p) for p in sorted((ROOT / "captures" / "series").glob("*.pcap"))]
    few = [str(p) for p in CAPTURES[:4]]
    argvs = [
        ["batch", *few, "--out", str(tmp_path / "many"), "--jobs", "2"],
        ["batch", *series, "--series", "--out", str(tmp_path / "series"), "--jobs", "2"],
    ]
    result, seen = _run(argvs, tmp_path)
    assert result["codes"] == [0, 0]
    assert seen == []
    assert result["modules"] == []
    for argv in argvs:
        assert (Path(argv[argv.index("--out") + 1]) / "connections.csv").stat().st_size > 100

    control = [["analyze", str(SMALL), "--html", str(tmp_path / "r.html")], *argvs]
    result, seen = _run(control, tmp_path)
    assert result["codes"] == [0, 0, 0]
    workers = {pid for pid, name in seen if name == "worker-has-pandas"}
    assert len(workers) == 4  # two in the pool, two shards of the series
    assert result["pid"] not in workers


def test_show_imports_no_pandas(tmp_path: Path) -> None:
    """``show`` in one process and over two workers (the drawing is text)."""
    argvs = [
        ["show", str(path), "--conn", "1", *jobs]
        for path in SHARDED
        for jobs in (["--jobs", "1"], ["--jobs", "2"])
    ]
    result, seen = _run(argvs, tmp_path)
    assert result["codes"] == [0] * len(argvs)
    assert seen == []
    assert result["modules"] == []
