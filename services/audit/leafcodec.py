"""The bytes of a leaf: what is hashed, stored and handed to auditors with inclusion proofs.

An event is encoded as compact UTF-8 JSON with sorted keys and no insignificant whitespace
(protobuf's JSON names, enums by name, every field present, `leafIndex` omitted since the
position is the tree's own). It is deterministic, so the same event always hashes the same, and
readable by an auditor without our code.
"""

from __future__ import annotations

import json

from google.protobuf import json_format

from contactpoint.audit.v1 import audit_service_pb2 as pb


def encode(event: pb.AuditEvent) -> bytes:
    """The canonical leaf data of `event` (its leaf_index is not part of it)."""
    body = json_format.MessageToDict(event, always_print_fields_with_no_presence=True)
    body.pop("leafIndex", None)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode(data: bytes, leaf_index: int) -> pb.AuditEvent:
    """The event stored in leaf `leaf_index`."""
    event = json_format.ParseDict(json.loads(data), pb.AuditEvent())
    event.leaf_index = leaf_index
    return event
