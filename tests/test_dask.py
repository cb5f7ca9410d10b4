"""batch on a Dask cluster gives the same tables as a local run (dask.distributed.LocalCluster)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from distributed import LocalCluster

from tcpflow_analyzer.batch import analyze_many, find_captures
from tcpflow_analyzer.cli import EXIT_SOME_FAILED, main

BATCH = Path(__file__).resolve().parents[1] / "captures" / "batch"


def test_dask_cluster_matches_local_run(tmp_path: Path) -> None:
    paths = [*find_captures([BATCH])[:12], BATCH / "corrupt.pcap"]
    local = analyze_many(paths, jobs=1)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster:
        remote = analyze_many(paths, scheduler=cluster.scheduler_address)
        out = tmp_path / "out"
        argv = ["batch", *map(str, paths), "--out", str(out)]
        assert main([*argv, "--scheduler", cluster.scheduler_address]) == EXIT_SOME_FAILED
    for name, table in local.tables.items():
        pd.testing.assert_frame_equal(remote.tables[name], table, obj=name)
    pd.testing.assert_frame_equal(
        remote.captures.drop(columns="seconds"), local.captures.drop(columns="seconds")
    )
    assert remote.failed == 1
    assert len(pd.read_csv(out / "connections.csv")) == len(local.connections)
