"""Audit proofs and `audit verify` as the log grows: logs of each size loaded through a fast path,
then inclusion and consistency proofs timed (and, with `--verify`, the whole log verified).

    .venv/bin/python bench/audit_proofs.py [--sizes 10000,100000,1000000] [--proofs 300]
        [--batch 32] [--verify] [--sqlite] [--json]

**How a log is loaded** (documented fast path, not AppendEvent): for each size a fresh audit
database (PostgreSQL on 127.0.0.1:5432, created and dropped here; SQLite with `--sqlite`) is
migrated, and `size` realistic gateway events are written straight into its tables. Each leaf is
the exact canonical encoding `leafcodec.encode` gives (checked on a sample), built from a template
to spare the JSON encoder. The nodes come from `merkle.append_with_nodes` and a signed head from
`domain.Signer` every `--batch` leaves, as group commit under load writes them. On PostgreSQL rows
go in by COPY. The tree state is set last, then `VACUUM ANALYZE` (what autovacuum would do after
such a load). `audit verify` then accepts the log as intact, so it
is a log the service itself could have written.

**What is timed**, in-process on one connection, each proof in its own read transaction:

- `domain.inclusion_proof` for a random leaf in the whole tree;
- `domain.consistency_proof` from a random earlier size to the whole tree;
- p50 and p99 over `--proofs` of each.

The reference, at the smallest size and in the same run, is the method these replaced: read every
leaf hash, then compute the proof from them (`merkle.inclusion_proof`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from gateway_getchild import DEFAULT_POSTGRES_URL, Postgres, sqlalchemy_url
from gateway_limits import uptime
from sqlalchemy import text

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.common.v1 import child_pb2
from contactpoint.platform import merkle, migrate
from contactpoint.platform.db import Database
from contactpoint.platform.ids import contactpoint_id_problem
from services.audit import domain, leafcodec
from services.audit.main import MIGRATIONS
from services.audit.verify import verify_log

ORIGIN = "bench/audit"
START = datetime(2026, 1, 1, tzinfo=UTC)


def _child_ids(count: int) -> list[str]:
    """`count` valid ContactPoint IDs (11 digits and a Damm check digit)."""
    from contactpoint.platform.ids import damm_digit

    ids = []
    for n in range(count):
        body = f"{100_000_000_00 + n * 7919:011d}"
        ids.append(body + str(damm_digit(body)))
    assert not contactpoint_id_problem(ids[0])
    return ids


def _event(actor: str, child: str, request: str, when: datetime) -> pb.AuditEvent:
    """A practitioner's read as the gateway records it, and the service stamps it."""
    event = pb.AuditEvent(
        actor=actor,
        actor_organisation="E08000003",
        actor_roles=["practitioner"],
        action="GetChild",
        contactpoint_id=child,
        purpose=child_pb2.ACCESS_PURPOSE_SAFEGUARDING,
        outcome="ALLOWED",
        severity="INFO",
        request_id=request,
        appended_by="gateway",
    )
    event.time.FromDatetime(when)
    return event


def _template() -> str:
    """The canonical encoding of `_event`, with {actor}, {child}, {request} and {time} left to
    fill in (checked against `leafcodec.encode` by `_check_template`)."""
    probe = _event("ACTOR", "CHILD", "REQUEST", START)
    body = leafcodec.encode(probe).decode()
    stamp = json.loads(body)["time"]
    return (
        body.replace("{", "{{")
        .replace("}", "}}")
        .replace('"ACTOR"', '"{actor}"')
        .replace('"CHILD"', '"{child}"')
        .replace('"REQUEST"', '"{request}"')
        .replace(f'"{stamp}"', '"{time}"')
    )


def _rfc3339(when: datetime) -> str:
    """A time as protobuf's JSON mapping writes it: no fraction, or 3 or 6 digits of one."""
    fraction = "" if not when.microsecond else f".{when.microsecond:06d}"
    if fraction.endswith("000"):
        fraction = fraction[:-3]
    return when.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def _leaves(size: int) -> Iterator[tuple[int, bytes, str, str, datetime]]:
    template, children = _template(), _child_ids(5000)
    for i in range(size):
        when = START + timedelta(milliseconds=37 * i)
        data = template.format(
            actor=f"practitioner{i % 997}",
            child=children[i % len(children)],
            request=f"r{i}",
            time=_rfc3339(when),
        ).encode()
        yield i, data, f"practitioner{i % 997}", children[i % len(children)], when


def _check_template() -> None:
    """The fast path's leaves are exactly what the service would store."""
    for i, data, actor, child, when in _leaves(1001):
        event = _event(actor, child, f"r{i}", when)
        assert leafcodec.encode(event) == data, (leafcodec.encode(event), data)


def load(url: str, size: int, batch: int, key: Ed25519PrivateKey, pg_dsn: str | None) -> float:
    """Load a log of `size` leaves into the migrated database at `url`; seconds taken."""
    began = time.perf_counter()
    signer = domain.Signer(key, ORIGIN)
    peaks: merkle.Peaks = []
    leaf_rows: list[tuple[Any, ...]] = []
    node_rows: list[tuple[Any, ...]] = []
    head_rows: list[tuple[Any, ...]] = []

    def flush() -> None:
        if pg_dsn is not None:
            with psycopg.connect(pg_dsn) as conn, conn.cursor() as cur:
                for table, columns, rows in (
                    ("leaves", "leaf_index, leaf_data, leaf_hash, contactpoint_id, actor, time", leaf_rows),
                    ("tree_nodes", "level, node_index, hash", node_rows),
                    ("tree_heads", "tree_size, root_hash, checkpoint, signature, time", head_rows),
                ):
                    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
        else:
            db = Database(url)
            try:
                db.run_sync(
                    lambda c: [
                        c.exec_driver_sql("INSERT INTO leaves VALUES (?, ?, ?, ?, ?, ?)", leaf_rows),
                        c.exec_driver_sql("INSERT INTO tree_nodes VALUES (?, ?, ?)", node_rows)
                        if node_rows
                        else None,
                        c.exec_driver_sql("INSERT INTO tree_heads VALUES (?, ?, ?, ?, ?)", head_rows),
                    ]
                )
            finally:
                db.dispose()
        leaf_rows.clear()
        node_rows.clear()
        head_rows.clear()

    for i, data, actor, child, when in _leaves(size):
        digest = hashlib.sha256(b"\x00" + data).digest()
        stamp: Any = when if pg_dsn is not None else when.isoformat(sep=" ")
        leaf_rows.append((i, data, digest, child, actor, stamp))
        peaks, completed = merkle.append_with_nodes(peaks, digest)
        node_rows.extend(completed)
        if (i + 1) % batch == 0 or i + 1 == size:
            head = signer.head(i + 1, merkle.root_from_peaks(peaks))
            head_rows.append((head.tree_size, head.root_hash, head.checkpoint, head.signature, stamp))
        if len(leaf_rows) >= 50_000:
            flush()
    flush()
    state = json.dumps([[s, h.hex()] for s, h in peaks])
    db = Database(url)
    try:
        db.run_sync(
            lambda c: c.execute(text("UPDATE tree_state SET size = :n, peaks = :p"), {"n": size, "p": state})
        )
    finally:
        db.dispose()
    if pg_dsn is not None:
        # What autovacuum does after a bulk load (it is off on the bench machine): statistics for
        # the planner, and the visibility map.
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - began


def _percentiles(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_ms": 1000 * statistics.median(samples),
        "p99_ms": 1000 * samples[min(len(samples) - 1, int(0.99 * len(samples)))],
    }


def time_proofs(url: str, size: int, count: int, *, reference: bool) -> dict[str, Any]:
    db = Database(url)
    rng = random.Random(size)
    out: dict[str, Any] = {}
    try:
        inclusion, consistency, old = [], [], []
        for _ in range(5):  # warm-up: the connection, the statements' compilation, the caches
            db.run_sync(lambda c: domain.inclusion_proof(c, leaf_index=0, tree_size=size), write=False)
        for _ in range(count):
            m = rng.randrange(size)
            began = time.perf_counter()
            db.run_sync(lambda c, m=m: domain.inclusion_proof(c, leaf_index=m, tree_size=size), write=False)
            inclusion.append(time.perf_counter() - began)
            first = rng.randrange(1, size + 1)
            began = time.perf_counter()
            db.run_sync(
                lambda c, f=first: domain.consistency_proof(c, first_size=f, second_size=size), write=False
            )
            consistency.append(time.perf_counter() - began)
        out["inclusion"] = _percentiles(inclusion)
        out["consistency"] = _percentiles(consistency)
        if reference:
            query = text("SELECT leaf_hash FROM leaves WHERE leaf_index < :n ORDER BY leaf_index")
            for _ in range(max(5, count // 20)):
                m = rng.randrange(size)
                began = time.perf_counter()
                hashes = db.run_sync(
                    lambda c: [bytes(h) for h in c.execute(query, {"n": size}).scalars()], write=False
                )
                merkle.inclusion_proof(m, hashes)
                old.append(time.perf_counter() - began)
            out["inclusion_every_leaf_reference"] = _percentiles(old)
    finally:
        db.dispose()
    return out


def main(argv: Sequence[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--proofs", type=int, default=300)
    p.add_argument("--batch", type=int, default=32, help="leaves per signed head")
    p.add_argument("--verify", action="store_true", help="also time `audit verify` over each log")
    p.add_argument("--no-reference", action="store_true", help="skip the every-leaf reference")
    p.add_argument("--sqlite", action="store_true")
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    _check_template()
    sizes = [int(s) for s in args.sizes.split(",")]
    report: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", "bench/audit_proofs.py", *argv]),
        "machine": {"python": platform.python_version(), "uptime_before": uptime()},
        "database": "sqlite" if args.sqlite else "postgresql",
        "sizes": {},
    }
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    pg = None if args.sqlite else Postgres(args.postgres_url)
    with tempfile.TemporaryDirectory(prefix="cp-bench-proofs-") as tmp:
        try:
            for size in sizes:
                dsn = pg.new(f"proofs{size}") if pg is not None else None
                url = sqlalchemy_url(dsn) if dsn is not None else f"sqlite:///{tmp}/audit-{size}.db"
                migrate.upgrade("audit", MIGRATIONS, url)
                row: dict[str, Any] = {"load_s": load(url, size, args.batch, key, dsn)}
                reference = size == sizes[0] and not args.no_reference
                row.update(time_proofs(url, size, args.proofs, reference=reference))
                if args.verify:
                    began = time.perf_counter()
                    verified = verify_log(url, public, origin=ORIGIN)
                    row["verify"] = {
                        "seconds": time.perf_counter() - began,
                        "ok": verified.ok,
                        "entries": verified.tree_size,
                        "heads": verified.heads_checked,
                    }
                report["sizes"][size] = row
                print(json.dumps({size: row}), file=sys.stderr)
        finally:
            if pg is not None:
                pg.drop_all()
    report["machine"]["uptime_after"] = uptime()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
