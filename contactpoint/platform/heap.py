"""The garbage collector, tuned for a long-running service.

CPython's cyclic collector runs a young collection every 700 net allocations of container objects,
and from time to time a full one that walks every object the process holds. A service holds tens
of thousands of objects from start-up (modules, classes, protobuf descriptors, SQLAlchemy's
metadata, the match model) that live as long as it does, and serving allocates fast: ingesting a
record allocates thousands of small objects. Measured on records' ingestion in-process (10,000
children, 22,987 records, `docs/benchmarks.md`): 2.46 s of collection, against 1.08 s with
start-up's objects frozen out of the collector's walks, and 0.28 s with young collections every
10,000 allocations as well.

`settle` does both, once a service is built and before it serves; the memory a young generation of
10,000 objects can hold between collections is a few megabytes at most."""

from __future__ import annotations

import gc

# Net container allocations between two young collections (CPython's default: 700).
YOUNG_THRESHOLD = 10_000


def tune() -> None:
    """Collect young objects every YOUNG_THRESHOLD allocations, not every 700 (the older
    generations' thresholds are kept)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def settle() -> None:
    """Once start-up is done: collect what it left, move every object still alive out of the
    collector's walks for good (`gc.freeze`), and `tune`."""
    gc.collect()
    gc.freeze()
    tune()
