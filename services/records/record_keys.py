"""What a source record is known by, besides its blocking keys: the keyed hashes of a request and
of a record's content (retries and unchanged records told apart), and the name rows FindChild
finds it by."""

from __future__ import annotations

import hashlib

from contactpoint.records.v1 import records_service_pb2 as pb
from services.records.names import name_key, name_tokens, postcode_key
from services.records.repository.source_keys import MatchKeyRow
from services.records.values import date_value


def request_hash(record: pb.SourceRecord, index_key: bytes) -> str:
    """A keyed hash (BLAKE2b under the data keys' index key) of a record's deterministic
    serialisation: equal for equal records, and no use to whoever holds a copy of the database
    without the key (an unkeyed hash let a guess of a child's date of birth be checked)."""
    data = record.SerializeToString(deterministic=True)
    return hashlib.blake2b(data, key=index_key[:64], digest_size=32, person=b"cp-request").hexdigest()


def unkeyed_request_hash(record: pb.SourceRecord) -> str:
    """The request hash as it was stored before it was keyed (SHA-256): a retry of a request
    answered then is still recognised."""
    return hashlib.sha256(record.SerializeToString(deterministic=True)).hexdigest()


def content_hash(record: pb.SourceRecord, index_key: bytes) -> str:
    """The keyed hash of what a record says about the child (everything but `as_of`). A record
    held since before the hash was keyed compares unequal once, and is stored again."""
    copy = pb.SourceRecord()
    copy.CopyFrom(record)
    copy.ClearField("as_of")
    data = copy.SerializeToString(deterministic=True)
    return hashlib.blake2b(data, key=index_key[:64], digest_size=32, person=b"cp-content").hexdigest()


def name_rows(record: pb.SourceRecord) -> list[MatchKeyRow]:
    """What makes a (valid) record findable by FindChild: one row per distinct name, the current
    name first, then former names (a former name lacking a part borrows the current one)."""
    current_family = name_key(record.name.family_name)
    current_given = name_tokens(record.name.given_names)
    dob = date_value(record.date_of_birth)
    assert dob is not None  # validated
    rows: list[MatchKeyRow] = []
    seen: set[tuple[str, str]] = set()
    for name in [record.name, *record.former_names]:
        family = (name_key(name.family_name) or current_family)[:128]
        given = " ".join(name_tokens(name.given_names) or current_given)[:512]
        if (family, given) in seen:
            continue
        seen.add((family, given))
        rows.append(
            MatchKeyRow(
                len(rows), family, given, dob, postcode_key(record.address.postcode), int(record.gender)
            )
        )
    return rows
