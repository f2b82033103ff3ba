"""What a reader may see: shielding and sensitive services (CONTRACT.md §3)."""

from __future__ import annotations

from google.type import date_pb2

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.disclosure import disclose


def full_child(shielded: bool) -> child_pb2.Child:
    return child_pb2.Child(
        contactpoint_id="123456789018",
        name=child_pb2.PersonName(given_names="Amelia", family_name="Okafor"),
        former_names=[child_pb2.PersonName(given_names="Amelia", family_name="Smith")],
        date_of_birth=date_pb2.Date(year=2015, month=3, day=14),
        gender=child_pb2.GENDER_FEMALE,
        address=child_pb2.Address(lines=["1 High St"], town="Manchester", postcode="M1 1AE"),
        carers=[
            child_pb2.Carer(
                name=child_pb2.PersonName(given_names="Ada", family_name="Okafor"),
                relationship="mother",
                phone="07700 900000",
                email="a@example.org",
                address=child_pb2.Address(postcode="M2 2AA"),
                parental_responsibility=True,
            )
        ],
        education_setting=child_pb2.Setting(name="St Mary's Primary", urn="100000"),
        gp_practice=child_pb2.GpPractice(name="High St Surgery", ods_code="P84001"),
        involvements=[
            child_pb2.Involvement(
                service_name="Early Help", practitioner_name="Sam", phone="0161 1", lead_professional=True
            ),
            child_pb2.Involvement(
                service_name="CAMHS",
                practitioner_name="Dr Y",
                organisation="NHS",
                phone="0161 2",
                email="y@nhs.net",
                sensitive=True,
                assessment_held=True,
                start_date=date_pb2.Date(year=2024, month=1, day=2),
            ),
        ],
        shielded=shielded,
    )


def test_sensitive_involvement_keeps_only_dates() -> None:
    out = disclose(full_child(False), may_override_shield=False)
    assert out.involvements[0].service_name == "Early Help"
    sensitive = out.involvements[1]
    assert sensitive == child_pb2.Involvement(
        sensitive=True, start_date=date_pb2.Date(year=2024, month=1, day=2)
    )
    assert out.address.postcode == "M1 1AE"


def test_shielded_child_shows_identity_and_carer_names_only() -> None:
    source = full_child(True)
    out = disclose(source, may_override_shield=False)
    assert out.shielded and out.contactpoint_id == source.contactpoint_id
    assert out.name == source.name and list(out.former_names) == list(source.former_names)
    assert out.date_of_birth == source.date_of_birth and out.gender == source.gender
    assert [c.name for c in out.carers] == [c.name for c in source.carers]
    assert (
        not out.carers[0].phone and not out.carers[0].HasField("address") and not out.carers[0].relationship
    )
    for name in ("address", "education_setting", "gp_practice", "update_time"):
        assert not out.HasField(name), name
    assert not out.involvements


def test_shield_override_sees_location_but_never_sensitive_details() -> None:
    out = disclose(full_child(True), may_override_shield=True)
    assert out.address.postcode == "M1 1AE" and out.gp_practice.ods_code == "P84001"
    assert not out.involvements[1].service_name


def test_source_message_is_not_modified() -> None:
    source = full_child(False)
    disclose(source, may_override_shield=False)
    assert source.involvements[1].service_name == "CAMHS"
