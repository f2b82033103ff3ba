"""Issue 8: a whole flow through `contactpoint up` (every service at debug level) — a seed, records
submitted and streamed, a possible match, a shielded child, a sensitive service, reads, finds
exact, fuzzy and by postcode, refusals and bad input — and not one name, address, postcode, date
of birth or phone number of any child or carer appears in any service's output."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.type import date_pb2

from contactpoint.cli.synthetic import synthetic_feed
from contactpoint.common.v1 import child_pb2
from contactpoint.gateway.v1 import gateway_service_pb2 as gateway_pb
from contactpoint.gateway.v1 import gateway_service_pb2_grpc as gateway_grpc
from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
from contactpoint.records.v1 import records_service_pb2 as records_pb
from contactpoint.records.v1 import records_service_pb2_grpc as records_grpc
from services.records.values import today_in_england
from tests.conftest import DatabaseFactory
from tests.harness import bearer
from tests.suite import Suite, running_suite

pytestmark = pytest.mark.e2e
SAFEGUARDING = child_pb2.ACCESS_PURPOSE_SAFEGUARDING
SEED_CHILDREN, SEED = 40, 3
DOB = (2016, 7, 23)


def _child(rid: str, given: str, family: str, **overrides: object) -> records_pb.SourceRecord:
    overrides.setdefault("source_system", "social-care")
    record = records_pb.SourceRecord(
        source_record_id=rid,
        name=child_pb2.PersonName(given_names=given, family_name=family),
        gender=child_pb2.GENDER_FEMALE,
        address=child_pb2.Address(lines=["17 Marigold Crescent"], town="Wetherby", postcode="LS22 6QT"),
        carers=[
            child_pb2.Carer(
                name=child_pb2.PersonName(given_names="Philippa", family_name=family),
                relationship="mother",
                phone="07700 900461",
                parental_responsibility=True,
            )
        ],
        involvements=[
            # Sensitive by its name alone (the council forgot the flag).
            records_pb.SourceInvolvement(
                service_name="Talking Therapies", organisation="NHS Leeds", consent_recorded=True
            ),
        ],
        nhs_number="943 476 5919" if rid.endswith("-1") else "",
        **overrides,  # type: ignore[arg-type]
    )
    record.date_of_birth.CopyFrom(date_pb2.Date(year=DOB[0], month=DOB[1], day=DOB[2]))
    return record


# The flow's own children: distinctive words, so that finding one in a log can only be a leak.
OWN = [
    ("own-1", "Zephyrine", "Quillfeather"),
    ("own-2", "Zephyrine", "Quillfeather"),  # the same child from another system: reviewed
    ("own-3", "Ottoline", "Quillfeather"),  # her twin: kept apart
    ("own-4", "Zephyrina", "Quilfeather"),  # a near duplicate: a possible match, reviewed
]


def _secrets(today: dt.date) -> set[str]:
    found = {"Zephyrine", "Zephyrina", "Ottoline", "Quillfeather", "Quilfeather", "Philippa"}
    found |= {"Marigold Crescent", "Wetherby", "LS22 6QT", "LS226QT", "07700 900461", "07700900461"}
    found |= {"2016-07-23", "23/07/2016", "20160723"}
    for item in synthetic_feed(SEED_CHILDREN, SEED, today=today):
        r = item.record
        for name in [r.name, *r.former_names, *(c.name for c in r.carers)]:
            full = f"{name.given_names} {name.family_name}".strip()
            if len(full) >= 8:
                found.add(full)
        for address in [r.address, *(c.address for c in r.carers if c.HasField("address"))]:
            found.update(line for line in address.lines if len(line) >= 8)
            if address.postcode:
                found.update({address.postcode, address.postcode.replace(" ", "")})
        found.update(c.phone for c in r.carers if len(c.phone) >= 8)
        d = r.date_of_birth
        if d.year and dt.date(d.year, d.month, d.day) != today:  # today's date is in every timestamp
            found.add(f"{d.year:04d}-{d.month:02d}-{d.day:02d}")
    return found


@pytest.fixture
def suite(databases: DatabaseFactory, tmp_path: Path) -> Iterator[Suite]:
    env = {f"CONTACTPOINT_{svc}_LOG_LEVEL": "debug" for svc in ("IDENTITY", "RECORDS", "AUDIT", "GATEWAY")}
    env["CONTACTPOINT_GATEWAY_RATE_PER_MINUTE"] = "12"
    # Onboarding mode: every would-be link becomes a possible match, so the flow has reviews.
    env["CONTACTPOINT_RECORDS_AUTO_LINK"] = "false"
    with running_suite(databases, tmp_path, env) as s:
        yield s


_seed_output = [""]


def _calls(suite: Suite, today: dt.date) -> None:
    seeded = suite.cli(
        "seed", "--children", str(SEED_CHILDREN), "--seed", str(SEED), "--today", today.isoformat()
    )
    assert seeded.returncode == 0, seeded.stderr
    _seed_output[0] = seeded.stdout + seeded.stderr  # the command's own output is checked too
    client_id, secret = suite.create_service_account("council-logs")
    practitioner = suite.create_user("pat.logs", "practitioner")
    manager = suite.create_user("dee.logs", "data-manager")
    with grpc.insecure_channel(suite.target(1)) as ch:
        council = (
            identity_grpc.IdentityServiceStub(ch)
            .IssueServiceToken(
                identity_pb.IssueServiceTokenRequest(client_id=client_id, client_secret=secret)
            )
            .access_token
        )
    with grpc.insecure_channel(suite.target(2)) as ch:
        records = records_grpc.RecordsServiceStub(ch)
        ids = []
        first, *rest = OWN
        ids.append(
            records.SubmitSourceRecord(
                records_pb.SubmitSourceRecordRequest(record=_child(*first), request_id=first[0]),
                metadata=bearer(council),
            ).contactpoint_id
        )
        stream = [
            records_pb.SubmitSourceRecordRequest(
                record=_child(rid, given, family, source_system="education" if rid == "own-2" else "health"),
                request_id=rid,
            )
            for rid, given, family in rest
        ]
        ids += [
            r.contactpoint_id for r in records.StreamSourceRecords(iter(stream), metadata=bearer(council))
        ]
        # Hostile input: refused, and what it said is not echoed into a log.
        bad = _child("own-bad", "Zephyrine", "Quillfeather\x00<script>")
        bad.date_of_birth.month = 13
        with pytest.raises(grpc.RpcError):
            records.SubmitSourceRecord(
                records_pb.SubmitSourceRecordRequest(record=bad, request_id="own-bad"),
                metadata=bearer(council),
            )
        manager_token = suite.login(manager)
        records.SetShielded(
            records_pb.SetShieldedRequest(contactpoint_id=ids[2], shielded=True, reason="court order"),
            metadata=bearer(manager_token),
        )
        task = records.NextReviewTask(records_pb.NextReviewTaskRequest(), metadata=bearer(manager_token))
        assert task.HasField("task")
    token = suite.login(practitioner)
    dob = date_pb2.Date(year=DOB[0], month=DOB[1], day=DOB[2])
    with grpc.insecure_channel(suite.target(0)) as ch:
        gateway = gateway_grpc.GatewayServiceStub(ch)
        for cid in ids:
            gateway.GetChild(
                gateway_pb.GetChildRequest(contactpoint_id=cid, purpose=SAFEGUARDING, justification="visit"),
                metadata=bearer(token),
            )
        finds = [
            {"family_name": "Quillfeather", "given_name": "Zephyrine"},
            {"family_name": "Quilfether", "given_name": "Zefirine", "fuzzy": True},
            {"family_name": "Quillfeather", "postcode": "LS22 6QT"},
            {"family_name": "Nobody", "given_name": "Zephyrine"},
        ]
        for criteria in finds:
            try:
                gateway.FindChild(
                    gateway_pb.FindChildRequest(date_of_birth=dob, purpose=SAFEGUARDING, **criteria),  # type: ignore[arg-type]
                    metadata=bearer(token),
                )
            except grpc.RpcError as exc:
                assert exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION)
        with pytest.raises(grpc.RpcError):  # bad input through the gateway
            gateway.FindChild(
                gateway_pb.FindChildRequest(family_name="Quillfeather", purpose=SAFEGUARDING),
                metadata=bearer(token),
            )
        refused = 0
        for _ in range(12):  # on to the rate limit
            try:
                gateway.GetChild(
                    gateway_pb.GetChildRequest(
                        contactpoint_id=ids[0], purpose=SAFEGUARDING, justification="x"
                    ),
                    metadata=bearer(token),
                )
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                refused += 1
        assert refused


def test_no_personal_data_in_any_service_output(suite: Suite) -> None:
    today = today_in_england()  # the seed's feeds and the secrets looked for, made as of one day
    _calls(suite, today)
    time.sleep(0.5)  # the last lines reach the log
    assert suite.stop() == 0
    output = suite.log.read_text(errors="replace") + _seed_output[0]
    assert "rpc.ok" in output and "records.read" in output and "SetShielded" in output  # it was logged
    leaks = sorted(s for s in _secrets(today) if s in output)
    assert leaks == [], leaks
