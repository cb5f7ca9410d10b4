"""``findings.seconds_from_parts`` folds the longest total in a loop: it gives
``seconds(max(totals))`` as first written, negative totals (timestamps that went
backwards) included, and None for no part.
"""

from __future__ import annotations

import random

from tcpflow_analyzer.findings import seconds, seconds_from_parts


def test_seconds_from_parts_is_the_longest_total() -> None:
    rng = random.Random(8)
    assert seconds_from_parts([], 5) is None
    for _ in range(5000):
        end = rng.randrange(-(10**12), 10**12)
        parts = [
            (rng.randrange(-(10**9), 10**12), rng.choice([None, rng.randrange(-(10**12), 10**12)]))
            for _ in range(rng.randrange(1, 3))
        ]
        totals = [e if s is None else e + max(end, s) - s for e, s in parts]
        assert seconds_from_parts(parts, end) == seconds(max(totals))
