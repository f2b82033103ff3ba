"""Issue 8: after a full seed, no child's (or carer's) name, address or postcode appears in any
database file, its write-ahead log, or a pg_dump: a stolen file or backup discloses no child."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from contactpoint.cli.embedded import embedded_defaults
from contactpoint.cli.seeding import seed
from contactpoint.cli.synthetic import synthetic_feed
from tests.conftest import DatabaseFactory

CHILDREN = 120
SEED = 8


def _secrets(today: dt.date) -> set[bytes]:
    """Every name, address line and postcode the seed's feed holds, as given and as matching
    normalises them (lower case; postcodes without the space)."""
    found: set[str] = set()
    for item in synthetic_feed(CHILDREN, SEED, today=today):
        r = item.record
        people = [r.name, *r.former_names, *(c.name for c in r.carers)]
        for name in people:
            found.update(part for part in (name.family_name, name.given_names) if part)
        for address in [r.address, *(c.address for c in r.carers if c.HasField("address"))]:
            found.update(line for line in address.lines if line)
            if address.postcode:
                found.update({address.postcode, address.postcode.replace(" ", "")})
    # Short fragments ("Li", "Ng") could turn up inside random bytes; four letters cannot, by chance.
    texts = {t.strip() for t in found if len(t.strip()) >= 5}
    return {t.encode() for t in texts} | {t.lower().encode() for t in texts}


def _leaks(blob: bytes, secrets: set[bytes]) -> list[bytes]:
    return sorted(s for s in secrets if s in blob)


def test_a_seeded_registry_holds_no_name_address_or_postcode_in_the_clear(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = embedded_defaults(data_dir)
    if databases.backend == "postgresql":
        env["CONTACTPOINT_RECORDS_DATABASE_URL"] = databases.new("records")
    report = seed(env, children=CHILDREN, seed_value=SEED)
    assert report.children >= CHILDREN // 2 and report.records > CHILDREN
    secrets = _secrets(dt.datetime.now(dt.UTC).date())
    assert len(secrets) > 4 * CHILDREN  # the check has teeth
    if databases.backend == "sqlite":
        files = [p for p in data_dir.rglob("*") if p.is_file() and p.suffix != ".keys"]
        assert any(p.name.endswith(".db") for p in files)
        for path in files:
            assert _leaks(path.read_bytes(), secrets) == [], path.name
    else:
        url = env["CONTACTPOINT_RECORDS_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        dump = subprocess.run(
            ["pg_dump", "--no-owner", url], capture_output=True, check=True, timeout=120
        ).stdout
        assert b"COPY public.source_records" in dump  # the dump has the data
        assert _leaks(dump, secrets) == []


def test_the_check_finds_text_in_the_clear(tmp_path: Path) -> None:
    """The grep above is real: it finds a name stored in the clear."""
    secrets = _secrets(dt.datetime.now(dt.UTC).date())
    some = sorted(secrets)[0]
    assert _leaks(b"...\x00" + some + b"\x00...", secrets) == [some]
    with pytest.raises(AssertionError):
        assert _leaks(some, secrets) == []
