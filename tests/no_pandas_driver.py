"""Run command lines with a watch on imports of pandas (for tests/test_no_pandas.py).

``python no_pandas_driver.py LOG RESULT ARGVS``: before anything of the
package is imported, a finder is put first on ``sys.meta_path`` that appends a
line "PID NAME" to ``LOG`` whenever a process asks for pandas or one of its
modules for the first time (imports nothing itself and finds nothing: the
import goes on as usual). The worker processes of ``analyze --jobs N`` are
forked from this one, so they keep the watch. Then ``cli.main`` runs each
command line of the JSON file ``ARGVS`` (a list of lists) in turn, and ``RESULT`` gets
``{"pid": ..., "codes": [...], "modules": [pandas modules in sys.modules]}``.

With ``WORKER_IMPORTS_PANDAS=1`` in the environment every worker of a sharded
run imports pandas before it starts (to show that the watch sees a worker's
import). Every worker (of a sharded run, or of ``batch``'s pool) that starts
with pandas already loaded (imported by the parent before it forked them)
writes "PID worker-has-pandas" to ``LOG``.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any


class _Watch:
    """A meta path finder that only notes the pandas modules asked for."""

    def __init__(self, log: str) -> None:
        self.log = log

    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name.split(".")[0] == "pandas":
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(f"{os.getpid()} {name}\n")
        return None


def main(log: str, result: str, argvs: list[list[str]]) -> None:
    sys.meta_path.insert(0, _Watch(log))
    from tcpflow_analyzer import batch, cli, stream

    shard_worker = stream._shard_worker

    def watched_worker(*args: Any) -> None:
        _note_inherited(log)
        if os.environ.get("WORKER_IMPORTS_PANDAS"):
            import pandas  # noqa: F401
        shard_worker(*args)

    stream._shard_worker = watched_worker
    global _STREAM_ONE, _LOG
    _STREAM_ONE, _LOG = batch._stream_one, log
    batch._stream_one = _watched_one
    codes = [cli.main(argv) for argv in argvs]
    modules = sorted(m for m in sys.modules if m.split(".")[0] == "pandas")
    with open(result, "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), "codes": codes, "modules": modules}, f)


def _note_inherited(log: str) -> None:
    """Note a worker that starts with pandas loaded (it cannot have imported it yet)."""
    if "pandas" in sys.modules:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()} worker-has-pandas\n")


_STREAM_ONE: Any = None
_LOG = ""


def _watched_one(*args: Any, **kwargs: Any) -> Any:
    """``batch._stream_one`` in a pool worker (forked: this module's globals are set)."""
    if os.getpid() != _PARENT:
        _note_inherited(_LOG)
    return _STREAM_ONE(*args, **kwargs)


_PARENT = os.getpid()


if __name__ == "__main__":
    with open(sys.argv[3], encoding="utf-8") as f:
        main(sys.argv[1], sys.argv[2], json.load(f))
