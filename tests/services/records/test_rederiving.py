"""After an upgrade that normalises names differently, every stored record's features, blocking
keys and FindChild's name keys are derived again from the record as stored (`key_scheme`), on
SQLite and PostgreSQL: a child filed by an older release is found by FindChild, and matched, as a
child filed today would be. Found by probing: a name with a modifier-letter apostrophe filed
before 7 December kept it in its search keys, and no search spelt without it found the child."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, delete, select, update

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.db import Database
from contactpoint.records.v1 import records_service_pb2 as pb
from services.records import key_scheme, withdrawal
from services.records.linkage import features_of
from services.records.linkage.blocking import SCHEME
from services.records.model import Outcome
from services.records.names import name_key
from services.records.record_keys import name_rows
from services.records.repository import search
from services.records.repository.sealing import source_context, vault_for, vault_of
from services.records.repository.source_keys import delete_blocking, insert_names
from services.records.repository.writes import insert_rows, pack_hashes
from services.records.tables import blocking_keys, match_keys, source_records
from tests.services.records.conftest import ORG_A, ORG_B, make_record
from tests.services.records.test_ingestion import NOW, submit
from tests.services.records.test_key_scheme import _filed, _kept, _source_ids

MODIFIER_APOSTROPHE = "\u02bc"  # as a Ukrainian keyboard types it
DOB = dt.date(2018, 3, 14)  # make_record's


def _derived_as_before(
    conn: Connection, source_id: str, older: pb.SourceRecord, *, keys: bool = True
) -> None:
    """Make a stored record look as an older release derived it: its features, and unless `keys`
    is false (a withdrawn record has none) its blocking keys and name rows, those of `older` (the
    same record as the older release normalised it), noting the scheme before this one."""
    vault = vault_of(conn)
    row = conn.execute(
        select(
            source_records.c.blocking, source_records.c.sealed_with, source_records.c.contactpoint_id
        ).where(source_records.c.id == source_id)
    ).one()
    delete_blocking(conn, [(source_id, bytes(row.blocking))])
    conn.execute(delete(match_keys).where(match_keys.c.source_id == source_id))
    features = features_of(older)
    hashes = key_scheme.hashes_of(features, vault.ring.index) if keys else []
    insert_rows(conn, blocking_keys, ("key", "source_id"), [(h, source_id) for h in hashes])
    if keys:
        insert_names(conn, [(source_id, row.contactpoint_id, n) for n in name_rows(older)])
    conn.execute(
        update(source_records)
        .where(source_records.c.id == source_id)
        .values(
            blocking=pack_hashes(hashes),
            features=vault.seal(
                features.to_json().encode(), source_context(source_id, "features"), key_id=row.sealed_with
            ),
            key_scheme=SCHEME - 1,
        )
    )


def _found(db: Database, family_name: str) -> set[str]:
    """The children FindChild's lookup reaches by a family name spelt `family_name`."""
    rows = db.run_sync(
        lambda c: search.names_born_on(
            c, date_of_birth=DOB, family_keys=[name_key(family_name)], postcode_key=None
        ),
        write=False,
    )
    return {r.contactpoint_id for r in rows}


def _features(db: Database) -> dict[str, str]:
    def read(conn: Connection) -> dict[str, str]:
        vault = vault_of(conn)
        rows = conn.execute(select(source_records.c.id, source_records.c.features))
        return {r.id: vault.open_text(r.features, source_context(r.id, "features")) for r in rows}

    return db.run_sync(read, write=False)


def test_an_older_releases_names_are_derived_again_for_findchild_and_matching(db: Database) -> None:
    today = make_record(
        "ua-1", name=child_pb2.PersonName(given_names="Oksana", family_name=f"Ivanova{MODIFIER_APOSTROPHE}")
    )
    # (the modifier letter is dropped from keys today; an older release kept it as a letter of
    # its own, which a family name in a third spelling stands for here)
    child = submit(db, today).contactpoint_id
    fresh_keys, fresh_kept, fresh_features = _filed(db), _kept(db), _features(db)
    (sid,) = _source_ids(db)
    older = make_record("ua-1", name=child_pb2.PersonName(given_names="Oksana", family_name="Ivanovna Stale"))
    db.run_sync(lambda c: _derived_as_before(c, sid, older))
    assert _found(db, "Ivanova") == set() and _found(db, "Ivanovna Stale") == {child}
    assert _features(db) != fresh_features and _filed(db) != fresh_keys

    assert key_scheme.rebuild_blocking_keys(db, vault_for(db)) == 1

    # Found by today's spelling and no longer by the old one; filed and compared as a record sent
    # today is.
    assert _found(db, "Ivanova") == {child} and _found(db, "Ivanovna Stale") == set()
    assert _features(db) == fresh_features
    assert _filed(db) == fresh_keys and _kept(db) == fresh_kept
    # Matched as it would be today: the same child from another council links to it.
    again = submit(db, make_record("ua-2", source_system="education", name=today.name), org=ORG_B)
    assert (again.outcome, again.contactpoint_id) == (Outcome.LINKED, child)


def test_a_withdrawn_record_is_derived_again_and_filed_under_no_key(db: Database) -> None:
    submit(db, make_record("wd-1"))
    (sid,) = _source_ids(db)
    db.run_sync(
        lambda c: withdrawal.withdraw(
            c, organisation=ORG_A, source_system="social-care", source_record_id="wd-1", now=NOW
        )
    )
    fresh_features = _features(db)
    older = make_record("wd-1", name=child_pb2.PersonName(given_names="Amelia", family_name="Stale"))
    db.run_sync(lambda c: _derived_as_before(c, sid, older, keys=False))  # withdrawn under an older release

    assert key_scheme.rebuild_blocking_keys(db, vault_for(db)) == 1
    assert _features(db) == fresh_features
    assert _filed(db) == {} and _found(db, "Okafor") == set() and _found(db, "Stale") == set()
    assert _kept(db)[sid] == (set(), SCHEME)
