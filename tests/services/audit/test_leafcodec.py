"""The leaf encoding: deterministic, readable JSON that rebuilds exactly the event that was hashed."""

from __future__ import annotations

import json

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from contactpoint.audit.v1 import audit_service_pb2 as pb
from services.audit import leafcodec

text = st.text(max_size=40)
events = st.builds(
    pb.AuditEvent,
    leaf_index=st.integers(0, 2**64 - 1),
    time=st.builds(Timestamp, seconds=st.integers(0, 253_402_300_799), nanos=st.integers(0, 999_999_999)),
    actor=text,
    actor_organisation=text,
    actor_roles=st.lists(text, max_size=4),
    action=text,
    contactpoint_id=text,
    purpose=st.integers(0, 7),
    outcome=text,
    status_code=st.integers(0, 20),
    request_id=text,
    severity=st.sampled_from(["INFO", "WARNING", "HIGH"]),
    detail=text,
    appended_by=st.one_of(st.just(""), text),
    other_contactpoint_ids=st.lists(text, max_size=3),
)


@settings(max_examples=100, deadline=None)
@given(events, st.integers(0, 2**63 - 1))
def test_encoding_round_trips_and_is_deterministic(event: pb.AuditEvent, index: int) -> None:
    data = leafcodec.encode(event)
    again = pb.AuditEvent()
    again.CopyFrom(event)
    again.leaf_index = 0
    # The position is the tree's own, not part of what is hashed.
    assert leafcodec.encode(again) == data
    # Re-encoding a message parsed from the bytes gives the very same bytes.
    decoded = leafcodec.decode(data, index)
    assert decoded.leaf_index == index
    assert leafcodec.encode(decoded) == data
    expected = pb.AuditEvent()
    expected.CopyFrom(event)
    expected.leaf_index = index
    assert decoded == expected
    # Compact, sorted-key UTF-8 JSON an auditor can read without our code.
    body = json.loads(data.decode("utf-8"))
    assert "leafIndex" not in body
    assert data == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_a_known_event_encodes_as_documented() -> None:
    event = pb.AuditEvent(
        leaf_index=7,
        time=Timestamp(seconds=1_764_000_000, nanos=500_000_000),
        actor="pat.practitioner",
        actor_organisation="E08000003",
        actor_roles=["practitioner"],
        action="GetChild",
        contactpoint_id="123456789018",
        purpose=1,
        outcome="ALLOWED",
        severity="INFO",
    )
    assert leafcodec.encode(event) == (
        b'{"action":"GetChild","actor":"pat.practitioner","actorOrganisation":"E08000003",'
        b'"actorRoles":["practitioner"],"contactpointId":"123456789018","detail":"",'
        b'"outcome":"ALLOWED","purpose":"ACCESS_PURPOSE_SAFEGUARDING","requestId":"",'
        b'"severity":"INFO","statusCode":"OK","time":"2025-11-24T16:00:00.500Z"}'
    )


def test_fields_added_later_appear_only_when_set() -> None:
    """An event without `appended_by` encodes exactly as before the field existed, so leaves
    written then re-encode to the bytes that were hashed; with it, it is part of the leaf."""
    old = (
        b'{"action":"GetChild","actor":"pat.practitioner","actorOrganisation":"E08000003",'
        b'"actorRoles":["practitioner"],"contactpointId":"123456789018","detail":"",'
        b'"outcome":"ALLOWED","purpose":"ACCESS_PURPOSE_SAFEGUARDING","requestId":"",'
        b'"severity":"INFO","statusCode":"OK","time":"2025-11-24T16:00:00.500Z"}'
    )
    event = leafcodec.decode(old, 3)
    assert event.appended_by == "" and leafcodec.encode(event) == old
    event.appended_by = "gateway"
    data = leafcodec.encode(event)
    assert data == old.replace(
        b'"actorRoles":["practitioner"],', b'"actorRoles":["practitioner"],"appendedBy":"gateway",'
    )
    assert leafcodec.decode(data, 3) == event


@settings(max_examples=200, deadline=None)
@given(events)
def test_the_fast_column_reader_agrees_with_the_full_decoder(event: pb.AuditEvent) -> None:
    data = leafcodec.encode(event)
    decoded = leafcodec.decode(data, 0)
    child, actor, when, others = leafcodec.filter_columns(data)
    assert (child, actor) == (decoded.contactpoint_id, decoded.actor)
    assert others == tuple(sorted(decoded.other_contactpoint_ids))
    # To the microsecond, as the time column holds it (ToDatetime drops the nanoseconds too).
    assert when == decoded.time.ToDatetime(tzinfo=when.tzinfo)


def test_the_fast_column_reader_refuses_what_is_not_an_event() -> None:
    event = pb.AuditEvent(actor="a", action="GetChild", time=Timestamp(seconds=1))
    good = json.loads(leafcodec.encode(event))
    for bad in (
        b"\x00not json",
        b"[1, 2]",
        json.dumps({**good, "surprise": 1}).encode(),
        json.dumps({**good, "actor": 5}).encode(),
        json.dumps({**good, "purpose": "NOT_A_PURPOSE"}).encode(),
        json.dumps({**good, "actorRoles": "practitioner"}).encode(),
        json.dumps({**good, "otherContactpointIds": [5]}).encode(),
        json.dumps({k: v for k, v in good.items() if k != "time"}).encode(),
        json.dumps({**good, "time": "2026-01-01T00:00:00"}).encode(),  # no zone
    ):
        try:
            leafcodec.filter_columns(bad)
        except (ValueError, KeyError):
            continue
        raise AssertionError(bad)


def test_other_children_appear_only_when_there_are_some() -> None:
    """An event naming no other child encodes as before `other_contactpoint_ids` existed; one
    that names some carries them, in the order sent."""
    event = pb.AuditEvent(
        time=Timestamp(seconds=1_764_000_000),
        actor="dm",
        action="NextReviewTask",
        contactpoint_id="123456789018",
        outcome="ALLOWED",
        severity="INFO",
    )
    plain = leafcodec.encode(event)
    assert b"otherContactpointIds" not in plain
    event.other_contactpoint_ids.extend(["503352916258", "100000000001"])
    data = leafcodec.encode(event)
    assert b'"otherContactpointIds":["503352916258","100000000001"]' in data
    assert leafcodec.decode(data, 0) == event
    assert leafcodec.filter_columns(data).others == ("100000000001", "503352916258")
