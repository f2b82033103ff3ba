"""The committed generated code matches the protos, and the protos carry every contract name."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from contactpoint.audit.v1 import audit_service_pb2
from contactpoint.common.v1 import child_pb2
from contactpoint.gateway.v1 import gateway_service_pb2
from contactpoint.identity.v1 import identity_service_pb2
from contactpoint.records.v1 import records_service_pb2

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_is_fresh() -> None:
    spec = importlib.util.spec_from_file_location("protos_script", ROOT / "scripts" / "protos.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.stale_files() == [], "run `python scripts/protos.py generate`"


def _fields(message: object) -> set[str]:
    return {f.name for f in message.DESCRIPTOR.fields}  # type: ignore[attr-defined]


def test_contract_names() -> None:
    gateway = gateway_service_pb2.DESCRIPTOR.services_by_name["GatewayService"]
    # The contract's four, and one more of the gateway's own (a person's change of their own
    # password); none lists, pages or streams (§3: "never will").
    assert {m.name for m in gateway.methods} == {"Login", "Logout", "GetChild", "FindChild", "ChangePassword"}
    assert not any(m.client_streaming or m.server_streaming for m in gateway.methods)
    assert gateway_service_pb2.DESCRIPTOR.package == "contactpoint.gateway.v1"
    assert _fields(gateway_service_pb2.FindChildRequest) == {
        "family_name",
        "given_name",
        "date_of_birth",
        "postcode",
        "gender",
        "fuzzy",
        "purpose",
        "justification",
    }
    assert _fields(child_pb2.Child) == {
        "contactpoint_id",
        "name",
        "former_names",
        "date_of_birth",
        "gender",
        "address",
        "carers",
        "education_setting",
        "gp_practice",
        "involvements",
        "shielded",
        "update_time",
    }
    assert _fields(child_pb2.Involvement) | {"consent_recorded"} == _fields(
        records_service_pb2.SourceInvolvement
    )
    assert [v.name for v in child_pb2.AccessPurpose.DESCRIPTOR.values] == [
        "ACCESS_PURPOSE_UNSPECIFIED",
        "ACCESS_PURPOSE_SAFEGUARDING",
        "ACCESS_PURPOSE_CARE_COORDINATION",
        "ACCESS_PURPOSE_REFERRAL",
        "ACCESS_PURPOSE_EDUCATION",
        "ACCESS_PURPOSE_HEALTH",
    ]
    assert [v.name for v in child_pb2.Gender.DESCRIPTOR.values] == [
        "GENDER_UNSPECIFIED",
        "GENDER_MALE",
        "GENDER_FEMALE",
        "GENDER_INDETERMINATE",
        "GENDER_NOT_KNOWN",
    ]
    records = records_service_pb2.DESCRIPTOR.services_by_name["RecordsService"]
    stream = records.methods_by_name["StreamSourceRecords"]
    assert stream.client_streaming and stream.server_streaming
    assert stream.input_type.name == "SubmitSourceRecordRequest"
    assert stream.output_type.name == "SubmitSourceRecordResponse"
    assert "error" in _fields(records_service_pb2.SubmitSourceRecordResponse)
    assert (
        "IssueServiceToken"
        in identity_service_pb2.DESCRIPTOR.services_by_name["IdentityService"].methods_by_name
    )
    audit = audit_service_pb2.DESCRIPTOR.services_by_name["AuditService"]
    assert {"ListEvents", "GetTreeHead", "GetInclusionProof", "GetConsistencyProof", "GetPublicKey"} <= {
        m.name for m in audit.methods
    }
    assert _fields(audit_service_pb2.AuditEvent) == {
        "leaf_index",
        "time",
        "actor",
        "actor_organisation",
        "actor_roles",
        "action",
        "contactpoint_id",
        "purpose",
        "outcome",
        "status_code",
        "request_id",
        "severity",
        "detail",
        "appended_by",
        "other_contactpoint_ids",
    }
