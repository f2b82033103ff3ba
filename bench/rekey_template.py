"""The upgrade across a change of blocking keys, at scale: how long records takes to file every
record of a registry again (`services.records.key_scheme.rebuild_blocking_keys`).

    .venv/bin/python bench/rekey_template.py OLD_TEMPLATE NEW_TEMPLATE

OLD_TEMPLATE is a records database loaded by an older release (`ingest_stream.py --template`,
run from a checkout of that release); NEW_TEMPLATE is made as a file copy of it, migrated to this
release, its keys rebuilt (timed), then `VACUUM FULL blocking_keys`, `VACUUM source_records`
and `ANALYZE` (timed apart), so that benchmarks on it start from nearly the state of a registry
loaded by this release. The copy's data key file and cached stream are its template's. Prints
records filed, seconds and records/s, as JSON."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest_stream as stream_bench

from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.logging import configure_logging
from services.records import key_scheme
from services.records.data_keys import open_file_vault
from services.records.main import MIGRATIONS

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def main(argv: list[str]) -> int:
    old, new = argv
    configure_logging(level="info", fmt="console")
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{new}" TEMPLATE "{old}" STRATEGY = FILE_COPY')
    shutil.copy2(stream_bench.key_file_for(old), stream_bench.key_file_for(new))  # private, as it was
    for cached in Path(tempfile.gettempdir()).glob(f"cp_bench_stream_{old}_*.bin"):  # its stream
        shutil.copyfile(cached, cached.with_name(cached.name.replace(f"_{old}_", f"_{new}_", 1)))
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{new}"
    result: dict[str, float] = {}
    started = time.perf_counter()
    migrate.upgrade("records", MIGRATIONS, url)
    result["migrate_seconds"] = round(time.perf_counter() - started, 1)
    db = Database(url)
    try:
        vault = open_file_vault(db, stream_bench.key_file_for(new))
        started = time.perf_counter()
        filed = key_scheme.rebuild_blocking_keys(db, vault)
        seconds = time.perf_counter() - started
        result.update(records=filed, seconds=round(seconds, 1), records_per_second=round(filed / seconds, 1))
    finally:
        db.dispose()
    started = time.perf_counter()
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{new}", autocommit=True) as conn:
        conn.execute("VACUUM FULL blocking_keys")
        conn.execute("VACUUM source_records")  # the old row versions the re-filing left
        conn.execute("ANALYZE")
    result["vacuum_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
