"""Long fuzzing campaign: ``python tests/fuzz/campaign.py --seconds N``.

Feeds mutated captures to ``tcpflow_analyzer.analyze()`` for N seconds and
prints the number of executions and of crashes (any exception other than
``CaptureError``, or a broken count, see ``mutate.check``). Each distinct crash
(by exception type and the innermost frame in ``tcpflow_analyzer``) is saved
to ``--crashes DIR`` as ``crash-<sha1>.pcap`` and printed with its traceback;
the campaign goes on after a crash. The slowest input is kept there as
``slowest.pcap``, to look for inputs that make the analysis slow.

Engines:

* ``atheris`` (default when it is installed): coverage-guided libFuzzer on the
  package's bytecode, seeded with ``captures/*.pcap*``; each new input is either
  libFuzzer's own byte-level mutation or one of ``mutate.py``'s structure-aware
  ones (wrong record lengths, shuffled / duplicated / dropped records, gzip).
* ``random``: the same structure-aware mutations drawn from a seeded
  ``random.Random``, no coverage feedback (the fallback without atheris).

The result of the last recorded run is in docs/robustness.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# Import the heavy dependencies before atheris instruments anything, so that
# only our own package is instrumented; tcpflow_analyzer (and mutate.py, which
# imports it) are imported by main() once the engine is chosen.
import dpkt  # noqa: E402, F401
import pandas  # noqa: E402, F401

mutate: Any = None


class Campaign:
    """Counts executions, keeps one input per distinct crash, stops at the deadline."""

    def __init__(self, seconds: float, crashes: Path, engine: str) -> None:
        self.engine = engine
        self.seconds = seconds
        self.start = time.monotonic()
        self.deadline = self.start + seconds
        self.crash_dir = crashes
        self.executions = 0
        self.crashes = 0  # crashing inputs
        self.distinct: dict[str, Path] = {}  # signature -> saved input
        self.slowest = (0.0, b"")
        self.next_report = self.start + 60

    def run_one(self, data: bytes) -> None:
        self.executions += 1
        t = time.monotonic()
        try:
            mutate.check(data)
        except Exception as exc:
            self._crash(data, exc)
        took = time.monotonic() - t
        if took > self.slowest[0]:
            self.slowest = (took, data)
        if t >= self.next_report:
            self.next_report = t + 60
            self.report(final=False)

    def _crash(self, data: bytes, exc: Exception) -> None:
        self.crashes += 1
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if "tcpflow_analyzer" in f.filename
        ]
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        signature = f"{type(exc).__name__} at {where}"
        if signature in self.distinct:
            return
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        path = self.crash_dir / f"crash-{hashlib.sha1(data).hexdigest()}.pcap"
        path.write_bytes(data)
        self.distinct[signature] = path
        print(f"CRASH {signature}: {exc!r} -> {path}", flush=True)
        traceback.print_exception(exc, file=sys.stdout)

    def done(self) -> bool:
        return time.monotonic() >= self.deadline

    def report(self, final: bool = True) -> None:
        elapsed = time.monotonic() - self.start
        label = "result" if final else "progress"
        print(
            f"{label}: engine={self.engine} seconds={elapsed:.0f} executions={self.executions} "
            f"({self.executions / max(elapsed, 1e-9):.0f}/s) crashes={self.crashes} "
            f"distinct={len(self.distinct)} slowest={self.slowest[0] * 1000:.0f}ms",
            flush=True,
        )
        if final:
            for signature, path in self.distinct.items():
                print(f"  {signature}: {path}")
            if self.slowest[1]:
                self.crash_dir.mkdir(parents=True, exist_ok=True)
                (self.crash_dir / "slowest.pcap").write_bytes(self.slowest[1])


def run_random(campaign: Campaign, seed: int) -> None:
    rng = random.Random(seed)
    seeds = list(mutate.seeds().values())
    while not campaign.done():
        campaign.run_one(mutate.apply(rng.choice(seeds), mutate.random_ops(rng)))


def run_atheris(campaign: Campaign, seed: int) -> None:
    import atheris

    def test_one_input(data: bytes) -> None:
        campaign.run_one(data)
        if campaign.done():
            campaign.report()
            sys.stdout.flush()
            os._exit(1 if campaign.crashes else 0)  # libFuzzer's exit would skip the report

    def custom_mutator(data: bytes, max_size: int, mutation_seed: int) -> Any:
        rng = random.Random(mutation_seed)
        if rng.random() < 0.5:
            return atheris.Mutate(data, max_size)
        return mutate.apply(data, mutate.random_ops(rng, most=2))[:max_size]

    corpus = Path(tempfile.mkdtemp(prefix="tcpflow-fuzz-corpus-"))
    for name, data in mutate.seeds().items():
        (corpus / name).write_bytes(data)
    args = [
        sys.argv[0],
        str(corpus),
        f"-seed={seed}",
        "-max_len=65536",
        "-timeout=20",  # one input taking this long is a hang: libFuzzer reports it
        "-rss_limit_mb=3072",
        "-print_final_stats=1",
    ]
    try:
        atheris.Setup(args, test_one_input, custom_mutator=custom_mutator)
        atheris.Fuzz()
    finally:
        shutil.rmtree(corpus, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to run")
    parser.add_argument("--engine", choices=("atheris", "random"), default=None)
    parser.add_argument("--seed", type=int, default=1, help="random seed (both engines)")
    parser.add_argument(
        "--crashes", type=Path, default=Path("fuzz-crashes"), help="where crashing inputs go"
    )
    args = parser.parse_args()
    engine = args.engine
    if engine is None:
        try:
            import atheris

            engine = "atheris"
        except ImportError:
            engine = "random"
    global mutate
    if engine == "atheris":
        import atheris

        with atheris.instrument_imports(include=["tcpflow_analyzer"]):
            import tcpflow_analyzer  # noqa: F401
    from tests.fuzz import mutate as mutate_module

    mutate = mutate_module
    campaign = Campaign(args.seconds, args.crashes, engine)
    print(f"campaign: engine={engine} seconds={args.seconds:.0f} seed={args.seed}", flush=True)
    if engine == "atheris":
        run_atheris(campaign, args.seed)
    else:
        run_random(campaign, args.seed)
    campaign.report()
    return 1 if campaign.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
