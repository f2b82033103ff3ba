"""How long recognising a sensitive service takes, a name never seen before (no cache hit).

Called for every involvement of every ingested record. Measured here rather than asserted in a
test (a timed assertion fails on a loaded machine). Usage:

    .venv/bin/python bench/sensitive_names.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.records.sensitive import sensitive_category
from tests.services.records.test_sensitive import REAL_NAMES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    per_name = []
    for run in range(args.repeat):
        names = [f"{name} {run}-{i}" for i, name in enumerate(REAL_NAMES)]  # unseen each run
        started = time.perf_counter()
        for name in names:
            sensitive_category(name)
        per_name.append((time.perf_counter() - started) / len(names) * 1e6)
    median = statistics.median(per_name)
    print(f"{len(REAL_NAMES)} names a run; µs a name, median of {args.repeat}: {median:.1f}")
    print("runs:", ", ".join(f"{v:.1f}" for v in per_name))


if __name__ == "__main__":
    main()
