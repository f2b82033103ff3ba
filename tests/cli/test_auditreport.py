"""`contactpoint audit report --child ID`, as a real subprocess on a log written the way the audit
service writes it, on SQLite (the embedded `--data-dir`) and PostgreSQL: every recorded access to
the child and nothing else, oldest first, as JSON or a table; running it is itself in the log."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.common.v1 import child_pb2
from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.platform.ids import damm_digit
from contactpoint.platform.keys import load_or_create_signing_key
from services.audit import domain, leafcodec, repository
from services.audit.main import MIGRATIONS
from services.audit.verify import verify_log
from tests.conftest import DatabaseFactory
from tests.suite import CONTACTPOINT

CHILD = "123456789018"
OTHER_CHILD = "503352916258"
NOBODY = "10000000000" + str(damm_digit("10000000000"))
KEYS = ("time", "actor", "organisation", "roles", "action", "purpose", "outcome")


@dataclass
class AuditData:
    """An audit log under `data_dir` (its database at `url`) and the command's environment."""

    data_dir: Path
    url: str
    env: dict[str, str]

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CONTACTPOINT, "audit", *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, **self.env, **(env or {})},
        )

    def events(self) -> list[pb.AuditEvent]:
        db = Database(self.url)
        try:
            rows = db.run_sync(
                lambda c: repository.page_of_leaves(c, contactpoint_id="", actor="", start=0, limit=10_000)
            )
        finally:
            db.dispose()
        return [leafcodec.decode(data, index) for index, data in rows]


def event(actor: str, action: str, outcome: str, **fields: object) -> pb.AuditEvent:
    values: dict[str, object] = {
        "actor": actor,
        "actor_organisation": "E08000003",
        "actor_roles": ["practitioner"],
        "action": action,
        "outcome": outcome,
        "severity": "INFO",
        **fields,
    }
    return pb.AuditEvent(**values)  # type: ignore[arg-type]


# What the gateway and records would have appended, in this order.
HISTORY = [
    event("pat.practitioner", "GetChild", "ALLOWED", contactpoint_id=CHILD,
          purpose=child_pb2.ACCESS_PURPOSE_SAFEGUARDING, detail="justification: strategy meeting"),
    event("kim.practitioner", "GetChild", "ALLOWED", contactpoint_id=OTHER_CHILD,
          purpose=child_pb2.ACCESS_PURPOSE_HEALTH),
    event("sam.worker", "GetChild", "INVALID", contactpoint_id=CHILD, status_code=3),
    # An auditor's read that asked about the child names it in its detail only: not an access.
    event("avery.auditor", "ListEvents", "ALLOWED", actor_roles=["auditor"],
          detail=f"filters: contactpoint_id={CHILD}; events returned: 2"),
    event("dee.manager", "SetShielded", "ALLOWED", contactpoint_id=CHILD, actor_organisation="E08000025",
          actor_roles=["data-manager", "practitioner"], severity="HIGH"),
]  # fmt: skip


@pytest.fixture
def audit_data(databases: DatabaseFactory, tmp_path: Path) -> AuditData:
    """A data dir whose audit log holds HISTORY, appended as the audit service appends."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env: dict[str, str] = {}
    url = f"sqlite:///{data_dir / 'audit.db'}"
    if databases.backend == "postgresql":
        url = databases.new("audit")
        env["CONTACTPOINT_AUDIT_DATABASE_URL"] = url
    migrate.upgrade("audit", MIGRATIONS, url)
    key = load_or_create_signing_key(data_dir / "keys" / "audit-signing.pem")
    signer = domain.Signer(key, "contactpoint.audit.v1")
    db = Database(url)
    try:
        for e in HISTORY:
            db.run_sync(lambda c, e=e: domain.append(c, event=e, signer=signer, appended_by="gateway"))
    finally:
        db.dispose()
    return AuditData(data_dir, url, env)


def test_the_report_lists_every_access_to_the_child_oldest_first(audit_data: AuditData) -> None:
    stored = audit_data.events()
    result = audit_data.run("report", "--child", CHILD, "--json", "--actor", "ig.officer")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert isinstance(report, list) and all(list(row) == list(KEYS) for row in report)
    assert [(r["actor"], r["action"], r["outcome"], r["purpose"]) for r in report] == [
        ("pat.practitioner", "GetChild", "ALLOWED", "ACCESS_PURPOSE_SAFEGUARDING"),
        ("sam.worker", "GetChild", "INVALID", "ACCESS_PURPOSE_UNSPECIFIED"),
        ("dee.manager", "SetShielded", "ALLOWED", "ACCESS_PURPOSE_UNSPECIFIED"),
    ]
    assert report[2]["organisation"] == "E08000025"
    assert report[2]["roles"] == ["data-manager", "practitioner"]
    # Time as RFC 3339 in UTC, exactly as stored.
    for row, e in zip(report, (stored[0], stored[2], stored[4]), strict=True):
        assert row["time"].endswith("Z")
        assert datetime.fromisoformat(row["time"]) == e.time.ToDatetime(tzinfo=UTC)

    # Running the report was recorded in the log before it was printed: by the operating system's
    # user, with the person it was asked for named in the detail as the operator's word (found by
    # probing: `--actor` made the record anyone's the operator liked).
    after = audit_data.events()
    assert len(after) == len(stored) + 1
    ran = after[-1]
    assert (ran.actor, ran.action, ran.outcome, ran.severity, ran.contactpoint_id) == (
        pwd.getpwuid(os.getuid()).pw_name,
        "AuditReport",
        "ALLOWED",
        "INFO",
        "",  # named in the detail only: a report is not an access to the child's record
    )
    assert ran.appended_by == "(audit command line)"
    assert ran.detail == (
        f"subject-access report: contactpoint_id={CHILD}; accesses: 3; "
        "asked for by ig.officer (their name as the operator gave it)"
    )
    # The log is still intact: the report appended as the service appends (signed head and all).
    assert verify_log(audit_data.url).ok
    # A second report does not list the first: reports are not accesses to the child.
    again = json.loads(audit_data.run("report", "--child", CHILD, "--json").stdout)
    assert again == report


def test_the_table_and_a_child_nobody_accessed(audit_data: AuditData) -> None:
    # $USER and $LOGNAME are anyone's to set: the process's real user is recorded (found by
    # re-probing: `USER=alice` made the record alice's).
    table = audit_data.run("report", "--child", CHILD, env={"USER": "alice", "LOGNAME": "alice"})
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [k.upper() for k in KEYS]
    assert len(lines) == 4
    assert lines[1].split()[1:] == [
        "pat.practitioner",
        "E08000003",
        "practitioner",
        "GetChild",
        "safeguarding",
        "ALLOWED",
    ]
    assert lines[3].split()[1:] == [
        "dee.manager",
        "E08000025",
        "data-manager,practitioner",
        "SetShielded",
        "-",
        "ALLOWED",
    ]
    # Without --actor, the operating system's user is the one recorded.
    assert audit_data.events()[-1].actor == pwd.getpwuid(os.getuid()).pw_name != "alice"

    none = audit_data.run("report", "--child", NOBODY)
    assert none.returncode == 0 and none.stdout.strip() == f"no recorded accesses to child {NOBODY}"
    empty = audit_data.run("report", "--child", NOBODY, "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []
    # Even a report that found nothing was recorded.
    assert [e.action for e in audit_data.events()[-2:]] == ["AuditReport", "AuditReport"]


def test_bad_requests_are_one_line_errors_and_record_nothing(audit_data: AuditData) -> None:
    before = len(audit_data.events())
    cases = [
        (("report", "--child", CHILD[:-1] + "9", "--json"), "check digit"),
        (("report", "--child", "12345", "--json"), "12 decimal digits"),
        (("report", "--child", CHILD, "--actor", "evil\x1b[2J"), "control characters"),
        (("report", "--child", CHILD, "--actor", ""), "required"),
        (("report", "--child", CHILD, "--actor", "\u3164 \u2800"), "required"),
        (("report", "--child", CHILD, "--actor", "x" * 129), "at most 128"),
    ]
    for args, words in cases:
        result = audit_data.run(*args)
        assert result.returncode != 0 and result.stdout == "", (args, result.stdout)
        assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr, (args, result.stderr)
    assert len(audit_data.events()) == before


def test_without_the_audit_signing_key_nothing_is_reported(audit_data: AuditData) -> None:
    # A new key would sign the report's tree head with a key the log was never signed with.
    (audit_data.data_dir / "keys" / "audit-signing.pem").unlink()
    result = audit_data.run("report", "--child", CHILD, "--json")
    assert result.returncode == 1 and result.stdout == ""
    assert "no audit signing key" in result.stderr
    assert not (audit_data.data_dir / "keys" / "audit-signing.pem").exists()
