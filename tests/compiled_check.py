#!/usr/bin/env python3
"""The compiled build (``pip install .``, see setup.py) gives what pure Python gives.

    # in the compiled install, from a directory where the source tree is not importable:
    python .../tests/compiled_check.py --root CHECKOUT --save compiled.pickle --expect-compiled
    # in the pure (editable) install:
    python tests/compiled_check.py --root CHECKOUT --compare compiled.pickle

Every capture in ``captures/`` and ``../shared/corpus`` is analyzed three ways: the
library's ``analyze()`` (every table, the summary and the counts), and the streamed
command-line analysis with one process and with two worker processes, with timers so
short that connections freeze, thaw and retire during the replay (every CSV file's
bytes, lines grouped by connection for the two-worker run). The rows' times are also
made (``findings.seconds``) from nanosecond counts in every binade up to 2116, next to the
halfway points between two doubles where a division rounded twice would show.
``--compare`` fails, naming the capture and what differs, unless the two runs agree
everywhere. ``.ci/run`` runs both halves.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import pickle
import random
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any


def setup_compiles(root: Path) -> list[str]:
    """The modules ``setup.py`` compiles (its COMPILED list), read without running it."""
    tree = ast.parse((root / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "COMPILED" for t in node.targets
        ):
            return [Path(p).stem for p in ast.literal_eval(node.value)]
    raise SystemExit("compiled_check: setup.py has no COMPILED list")


def captures(root: Path) -> list[Path]:
    corpus = root.parent / "shared" / "corpus"
    found = {
        *root.glob("captures/**/*.pcap"),
        *root.glob("captures/**/*.pcapng"),
        *root.glob("captures/**/*.gz"),
    }
    for pattern in ("*.pcap", "*.pcapng", "*.trace", "*.cap", "*.dump", "*.gz"):
        found.update(corpus.rglob(pattern))
    return sorted(found)


def _csv_files(directory: Path, by_connection: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in sorted(directory.glob("*.csv")):
        text = path.read_text()
        if by_connection:
            header, *lines = text.splitlines()
            groups: dict[str, list[str]] = defaultdict(list)
            for line in lines:
                groups[line.split(",", 1)[0]].append(line)
            out[path.name] = (header, dict(groups))
        else:
            out[path.name] = text
    return out


def results(root: Path) -> dict[str, Any]:
    from tcpflow_analyzer import analyze
    from tcpflow_analyzer.config import Config
    from tcpflow_analyzer.reader import CaptureError
    from tcpflow_analyzer.stream import analyze_to_csv

    short = Config(msl=0.001, late_segment_s=0.0, idle_timeout=0.5, freeze_after_s=0.0)
    out: dict[str, Any] = {}
    for path in captures(root):
        name = str(path.relative_to(root.parent))
        try:
            a = analyze(path)
        except CaptureError as exc:
            out[name] = {"error": str(exc)}
            continue
        entry: dict[str, Any] = {
            "tables": {
                "connections": a.connections,
                "transitions": a.transitions,
                "anomalies": a.anomalies,
                "zeek": a.zeek,
                "findings": a.findings,
            },
            "summary": a.summary(),
            "counts": (a.frames, a.segments, dict(a.skipped), a.warnings),
        }
        for jobs in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                streamed = analyze_to_csv(path, short, tmp, jobs=jobs)
                entry[f"streamed-{jobs}"] = (
                    streamed.summary,
                    _csv_files(Path(tmp), by_connection=jobs > 1),
                )
        out[name] = entry
    return out


# The key of the times' entry among the captures' (not a capture's name).
TIMES = "(findings.seconds)"


def times() -> list[str]:
    """``findings.seconds`` of nanosecond counts where a second rounding would show, as hex."""
    from tcpflow_analyzer.findings import seconds

    rng = random.Random(1)
    counts = [0, 1, -1, (1 << 53) - 1, 1 << 53, (1 << 53) + 1, -(1 << 53), (1 << 62) - 1, 1 << 62]
    for _ in range(20_000):
        e = rng.randrange(1, 33)  # whole seconds in [2**(e-1), 2**e): up to 2116
        t = 54 - e  # halfway points between doubles there are multiples of 2**-t
        b = (rng.randrange(1 << (e - 1), 1 << e) << t) + rng.randrange(1 << t)
        near = b * 1_000_000_000 >> t
        counts += [near, near + 1, -near]
    return [seconds(ns).hex() for ns in counts]


def compiled_modules(listed: list[str]) -> list[str]:
    names = []
    for module in listed:
        file = importlib.import_module(f"tcpflow_analyzer.{module}").__file__ or ""
        if not file.endswith(".py"):
            names.append(module)
    return names


def _differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    import pandas as pd

    problems = []
    for name in sorted(set(got) | set(want)):
        a, b = got.get(name), want.get(name)
        if a is None or b is None:
            problems.append(f"{name}: analyzed by one run only")
            continue
        for key in sorted(set(a) | set(b)):
            if key == "tables":
                for table in b[key]:
                    try:
                        pd.testing.assert_frame_equal(a[key][table], b[key][table])
                    except AssertionError as exc:
                        problems.append(f"{name}: {table}: {str(exc).splitlines()[0]}")
            elif a.get(key) != b.get(key):
                problems.append(f"{name}: {key} differs")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--root", type=Path, required=True, help="the checkout (captures/ in it)")
    ap.add_argument("--save", type=Path, help="write this run's results here")
    ap.add_argument("--compare", type=Path, help="compare this run with saved results")
    ap.add_argument("--expect-compiled", action="store_true", help="fail unless compiled")
    args = ap.parse_args()
    root = args.root.resolve()
    listed = setup_compiles(root)
    compiled = compiled_modules(listed)
    print(f"compiled modules: {', '.join(compiled) or 'none (pure Python)'}")
    if args.expect_compiled and len(compiled) != len(listed):
        missing = sorted(set(listed) - set(compiled))
        print(f"compiled_check: not compiled: {', '.join(missing)}", file=sys.stderr)
        return 1
    mine = results(root)
    print(f"analyzed {len(mine)} captures")
    mine[TIMES] = {"times": times()}
    if args.save:
        args.save.write_bytes(pickle.dumps(mine))
    if args.compare:
        problems = _differences(pickle.loads(args.compare.read_bytes()), mine)
        for line in problems[:50]:
            print(f"compiled_check: {line}", file=sys.stderr)
        if problems:
            print(f"compiled_check: {len(problems)} differences", file=sys.stderr)
            return 1
        print(f"compiled and pure Python agree on all {len(mine) - 1} captures and the times")
    return 0


if __name__ == "__main__":
    sys.exit(main())
