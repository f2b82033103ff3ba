"""Which blocking keys bring a stream's candidates, by kind, in a loaded registry.

    .venv/bin/python bench/candidate_kinds.py TEMPLATE CHILDREN [RECORDS]

Reads the template `ingest_stream.py --preload CHILDREN --template TEMPLATE` loaded (it must
exist), without changing it: for the first RECORDS records of that command's stream (default
all), looks up each record's blocking keys as filed and counts, per key kind, the stored source
records it finds and how many of them no other kind of the record's keys finds; and, over all
kinds, the records found, those found by the strong kinds (`blocking.STRONG_KINDS`, read first)
and those found by weak kinds only. Prints a table, a record of the stream at a time. Nothing
personal is printed: counts only."""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter, defaultdict
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest_stream as stream_bench

from services.records.data_keys import read_key_ring
from services.records.linkage import blocking_keys, features_of
from services.records.linkage.blocking import STRONG_KINDS, key_kind
from services.records.repository.writes import key_hash
from services.records.validation import checked_record

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
NOW = dt.datetime.combine(stream_bench.TODAY, dt.time(12), tzinfo=dt.UTC)
CHUNK = 500


def main(argv: list[str]) -> int:
    template, children = argv[0], int(argv[1])
    _, items = stream_bench.feed(children, 10_000, 1, template=template, postgres_url=ADMIN_URL)
    if len(argv) > 2:
        items = items[: int(argv[2])]
    index_key = read_key_ring(stream_bench.key_file_for(template)).index
    found: Counter[str] = Counter()  # kind → source records found (summed over records)
    only: Counter[str] = Counter()  # kind → found by no other kind of the record
    keys_of_kind: Counter[str] = Counter()
    records = 0
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{template}") as conn:
        for start in range(0, len(items), CHUNK):
            chunk = []
            for item in items[start : start + CHUNK]:
                normal, _ = checked_record(item.record, now=NOW)
                if normal is None:
                    continue
                keys = sorted(set(blocking_keys(features_of(normal))))
                chunk.append({key_hash(k, index_key): key_kind(k) for k in keys})
            wanted = sorted({h for kinds in chunk for h in kinds})
            hits: dict[int, list[str]] = defaultdict(list)
            for key, source_id in conn.execute(
                "SELECT key, source_id FROM blocking_keys WHERE key = ANY(%s)", (wanted,)
            ):
                hits[key].append(source_id)
            for kinds in chunk:
                records += 1
                by_kind: dict[str, set[str]] = defaultdict(set)
                for h, kind in kinds.items():
                    keys_of_kind[kind] += 1
                    by_kind[kind].update(hits.get(h, ()))
                for kind, ids in by_kind.items():
                    others = set().union(*(v for k, v in by_kind.items() if k != kind))
                    found[kind] += len(ids)
                    only[kind] += len(ids - others)
                every = set().union(*by_kind.values())
                strong = set().union(*(v for k, v in by_kind.items() if k in STRONG_KINDS))
                found["(any)"] += len(every)
                found["(strong)"] += len(strong)
                only["(weak only)"] += len(every - strong)
    print(f"{records:,} records of the stream, registry {template}")
    print("| kind | keys a record | records found a record | found by no other kind |")
    print("| --- | ---: | ---: | ---: |")
    for kind in sorted(set(found) | set(only), key=lambda k: -found[k]):
        per = [keys_of_kind[kind] / records, found[kind] / records, only[kind] / records]
        print(f"| {kind} | " + " | ".join(f"{x:.2f}" for x in per) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
