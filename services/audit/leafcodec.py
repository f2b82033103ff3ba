"""The bytes of a leaf: what is hashed, stored and handed to auditors with inclusion proofs.

An event is encoded as compact UTF-8 JSON with sorted keys and no insignificant whitespace, in
protobuf's canonical JSON mapping of `contactpoint.audit.v1.AuditEvent`: camelCase field names,
every field present (empty strings and lists included), enums by name (`"purpose":
"ACCESS_PURPOSE_SAFEGUARDING"`, `"statusCode": "OK"`), `time` as RFC 3339 in UTC. `leafIndex` is
left out: the position is the tree's own. For example:

    {"action":"GetChild","actor":"pat.practitioner","actorOrganisation":"E08000003",
     "actorRoles":["practitioner"],"contactpointId":"123456789018","detail":"","outcome":"ALLOWED",
     "purpose":"ACCESS_PURPOSE_SAFEGUARDING","requestId":"","severity":"INFO","statusCode":"OK",
     "time":"2025-11-24T16:00:00.500Z"}

(on one line). The encoding is deterministic, so the same event always hashes the same; an
auditor reads it with any JSON parser, and `decode` rebuilds the exact AuditEvent.

Fields added to AuditEvent after the log's first entries were written (`appendedBy`,
`otherContactpointIds`) are left out when empty. An event that lacks them therefore encodes
exactly as it did before they existed, so old leaves decode, re-encode to the very bytes that were
hashed, and verify; newer leaves carry them (`"appendedBy":"gateway"`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import NamedTuple

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor

from contactpoint.audit.v1 import audit_service_pb2 as pb

# JSON names of the fields added after the first leaves were written: present only when set.
ADDED_FIELDS = ("appendedBy", "otherContactpointIds")


def encode(event: pb.AuditEvent) -> bytes:
    """The canonical leaf data of `event` (its leaf_index is not part of it)."""
    body = json_format.MessageToDict(event, always_print_fields_with_no_presence=True)
    body.pop("leafIndex", None)
    for name in ADDED_FIELDS:
        if not body.get(name):
            body.pop(name, None)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode(data: bytes, leaf_index: int) -> pb.AuditEvent:
    """The event stored in leaf `leaf_index`."""
    event = json_format.ParseDict(json.loads(data), pb.AuditEvent())
    event.leaf_index = leaf_index
    return event


# What each field of an encoded event may hold (its JSON name → a check of the value).
_ENUM_NAMES = {
    f.json_name: frozenset(f.enum_type.values_by_name)
    for f in pb.AuditEvent.DESCRIPTOR.fields
    if f.type == FieldDescriptor.TYPE_ENUM and f.enum_type is not None
}
_STRINGS = frozenset(
    f.json_name
    for f in pb.AuditEvent.DESCRIPTOR.fields
    if f.type == FieldDescriptor.TYPE_STRING and not f.is_repeated
)
_STRING_LISTS = frozenset(
    f.json_name
    for f in pb.AuditEvent.DESCRIPTOR.fields
    if f.type == FieldDescriptor.TYPE_STRING and f.is_repeated
)


class Columns(NamedTuple):
    """What the log keeps beside each leaf for filtering: copies of parts of its event."""

    contactpoint_id: str
    actor: str
    time: datetime
    others: tuple[str, ...]  # other_contactpoint_ids, as the index of other children holds them


def columns_of(event: pb.AuditEvent, time: datetime) -> Columns:
    """The filter columns of `event`, stored at `time`."""
    return Columns(event.contactpoint_id, event.actor, time, tuple(sorted(event.other_contactpoint_ids)))


def filter_columns(data: bytes) -> Columns:
    """The child, the actor, the time and the other children an encoded event holds, read without
    building the event:
    `audit verify` reads every leaf, and protobuf's JSON parser was two thirds of its time. Raises
    ValueError unless `data` is a JSON object of AuditEvent's fields only, each of its type (enums
    by a name they have), with a time; the caller then decodes it in full to say what is wrong."""
    body = json.loads(data)
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    for name, value in body.items():
        if name in _STRINGS:
            ok = isinstance(value, str)
        elif name in _ENUM_NAMES:  # by name, or a number the enum does not name (as encoded)
            ok = value in _ENUM_NAMES[name] or (type(value) is int and -(2**31) <= value < 2**31)
        elif name in _STRING_LISTS:
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        else:
            ok = name == "time" and isinstance(value, str)
        if not ok:
            raise ValueError(f"field {name[:40]!r} is not an AuditEvent field of its type")
    when = datetime.fromisoformat(body["time"])
    if when.tzinfo is None:
        raise ValueError("a time without its zone")
    others = tuple(sorted(body.get("otherContactpointIds", ())))
    return Columns(body.get("contactpointId", ""), body.get("actor", ""), when, others)
