"""Personal data typed into a justification or a reason is kept out of the audit log, which can
never forget it (found by probing: a justification with a child's name, date of birth, address,
postcode and her mother's phone number was stored as typed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from contactpoint.platform import migrate
from contactpoint.platform.audited import AuditedRequest
from contactpoint.platform.db import Database
from contactpoint.platform.redaction import redacted
from services.identity import operator_log
from services.identity.main import MIGRATIONS as IDENTITY_MIGRATIONS


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        (
            "visit Zebedee Quarrington born 14/03/2015 at 7 Larkspur Avenue M1 1AE, mum 07700 900123",
            "visit Zebedee Quarrington born [date] at 7 Larkspur Avenue [postcode], mum [phone]",
        ),
        ("NHS no. 943 476 5919", "NHS no. [number]"),
        ("NHS no. 9434765919", "NHS no. [number]"),
        ("write to a.parent+cp@example.org.uk", "write to [email]"),
        ("+44 (0)7700 900123 or +447700900123", "[phone] or [phone]"),
        ("call 0161 496 0000 or 020-7946-0000", "call [phone] or [phone]"),
        ("sw1a2aa or SW1A 2AA or b33 8TH", "[postcode] or [postcode] or [postcode]"),
        ("born 14th March 2015; seen 2026-12-01; dob 1.2.15", "born [date]; seen [date]; dob [date]"),
        # Found by re-probing, stored as typed before:
        (
            "M1  1AE, M1-1AE, M1\u00a01AE, M1\u20091AE, M1 1AE_",
            "[postcode], [postcode], [postcode], [postcode], [postcode]_",
        ),
        ("(0161) 496 0000, 0161.496.0000, 0044 7700 900123", "[phone], [phone], [phone]"),
        ("j\u00f6hn@ex\u00e4mple.com, pat\uff20example.com", "[email], [email]"),
        ("March 14, 2015; 14th of March 2015; 14-Mar-2015; 14 Mar 15; 14032015", "; ".join(["[date]"] * 5)),
        ("943 4765 919, 943.476.5919, 94 34 76 59 19", "[number], [number], [number]"),
    ],
)
def test_what_can_be_recognised_is_replaced_by_its_kind(typed: str, stored: str) -> None:
    assert redacted(typed) == stored


@pytest.mark.parametrize(
    "reason",
    [
        "Section 47 enquiry; strategy meeting at 3pm",
        "same child as 123456789012 (school's record)",  # a ContactPoint ID says which child: kept
        "CAF 2 of 3, EHCP annual review, Year 10",
        "duplicate from the 2024 transfer",
        "S17 1st review, room B2 3rd floor",  # ordinals, though "B2 3RD" is a postcode's shape
        "ContactPoint ID 0514 7790 4862; Children Act 1989 s47; ref 2024/25; case 12345",
        "strategy meeting 10 May at 3pm",
    ],
)
def test_a_reason_without_personal_data_is_kept_as_typed(reason: str) -> None:
    assert redacted(reason) == reason


def test_the_event_holds_the_justification_without_them() -> None:
    call = AuditedRequest(auditor=None, action="GetChild", request_id="r1")  # type: ignore[arg-type]
    call.details.append("shielded record viewed with shield-override")
    call.quoted.append(("justification", "home visit, M1 1AE, mum on 07700 900123"))
    detail = call.event(None).detail
    assert detail == (
        "shielded record viewed with shield-override; justification: home visit, [postcode], mum on [phone]"
    )


def test_an_operators_reason_at_the_command_line_is_kept_without_them(tmp_path: Path) -> None:
    """Found by re-probing: `admin suspend --reason "..."` stored the reason as typed, where the
    same reason through the services was redacted."""
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    migrate.upgrade("identity", IDENTITY_MIGRATIONS, url)
    db = Database(url)
    try:
        db.run_sync(
            lambda c: operator_log.record(
                c, action="SuspendAccount", actor="root", detail="account: pat; reason: mum on 07700 900123"
            )
        )
        [noted] = db.run_sync(lambda c: operator_log.waiting(c))
    finally:
        db.dispose()
    assert noted.detail == "account: pat; reason: mum on [phone]"
