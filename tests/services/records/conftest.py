"""Records over real gRPC: identity and records in-process on port 0, on SQLite and PostgreSQL,
with machine accounts for two councils and the gateway, and a person.

Starting the services and issuing tokens (Argon2 on purpose) costs seconds, so one pair of
services serves a whole module per backend; each test works in its own corner of it (its own
source record ids, request ids and date of birth), so tests cannot see each other's children."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import grpc
import pyotp
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2, status_pb2
from google.type import date_pb2
from grpc_status import rpc_status
from sqlalchemy import Connection, text

from contactpoint.common.v1 import child_pb2
from contactpoint.identity.v1 import identity_service_pb2 as identity_pb
from contactpoint.identity.v1 import identity_service_pb2_grpc as identity_grpc
from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from contactpoint.records.v1 import records_service_pb2 as pb
from contactpoint.records.v1 import records_service_pb2_grpc as pb_grpc
from services.audit.main import MIGRATIONS as AUDIT_MIGRATIONS
from services.audit.main import build as build_audit
from services.audit.settings import AuditSettings
from services.records.main import MIGRATIONS, build
from services.records.settings import RecordsSettings
from tests.conftest import _PG_PROBLEM, DatabaseFactory
from tests.harness import (
    bearer,
    bind_records_keys,
    create_service_account,
    create_user,
    identity_settings,
    platform_account,
    records_keys,
    running_identity,
    running_service,
)

ORG_A = "E08000003"
ORG_B = "E08000025"
BIRTH_YEAR = dt.date.today().year - 8
# Each test gets its own date of birth and NHS number, so that tests never meet: no two tests'
# dates share two of year, month and day (matching would take one part off for a typo), and the
# day is past 12 (so it cannot be a swapped month). Holds for up to 48 tests per module (each
# module has services and databases of its own, and its own count).


def valid_nhs_number(n: int) -> str:
    """The `n`th valid NHS number of a test range (mod-11 check digit)."""
    while True:
        body = f"{400000000 + n:09d}"
        check = 11 - sum(int(d) * (10 - i) for i, d in enumerate(body)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return body + str(check)
        n += 1_000_000


TABLES = (
    "children",
    "source_records",
    "match_keys",
    "blocking_keys",
    "submissions",
    "review_tasks",
    "kept_apart",
    "merges",
)


def offline_settings(database_url: str, key_file: Path, **overrides: object) -> RecordsSettings:
    """Settings for a records service a test builds in its own process, with no identity to reach
    (its machine credentials are never used)."""
    return RecordsSettings.model_validate(
        {
            "database_url": database_url,
            "identity_target": "127.0.0.1:1",
            "data_key_file": str(key_file),
            "client_id": "records-test",
            "client_secret": "not-used",
            **overrides,
        }
    )


def date(year: int, month: int, day: int) -> date_pb2.Date:
    """A google.type.Date."""
    return date_pb2.Date(year=year, month=month, day=day)


def make_record(rid: str, **overrides: object) -> pb.SourceRecord:
    """A valid source record for an eight-year-old born on 14 March, with one sensitive involvement."""
    fields: dict[str, object] = {
        "source_system": "social-care",
        "source_record_id": rid,
        "name": child_pb2.PersonName(given_names="Amelia", family_name="Okafor"),
        "gender": child_pb2.GENDER_FEMALE,
        "address": child_pb2.Address(lines=["1 High Street"], town="Manchester", postcode="M1 1AE"),
        "carers": [
            child_pb2.Carer(
                name=child_pb2.PersonName(given_names="Grace", family_name="Okafor"),
                relationship="mother",
                phone="0161 496 0000",
                parental_responsibility=True,
            )
        ],
        "education_setting": child_pb2.Setting(name="Oak Primary School", urn="105432"),
        "gp_practice": child_pb2.GpPractice(name="Ardwick Medical Centre", ods_code="P84001"),
        "involvements": [
            pb.SourceInvolvement(
                service_name="School Nursing", organisation="NHS Trust", phone="0161 000 0000"
            ),
            pb.SourceInvolvement(
                service_name="Sexual Health Clinic",
                practitioner_name="Dr X",
                sensitive=True,
                consent_recorded=True,
            ),
        ],
        "nhs_number": "943 476 5919",
    }
    record = pb.SourceRecord(**{**fields, **overrides})  # type: ignore[arg-type]
    if not record.HasField("date_of_birth"):
        record.date_of_birth.year, record.date_of_birth.month, record.date_of_birth.day = BIRTH_YEAR, 3, 14
    return record


def violations(exc: grpc.aio.AioRpcError) -> dict[str, str]:
    """The BadRequest field violations of a failed call, by field."""
    status = rpc_status.from_call(exc)
    assert status is not None
    return status_violations(status)


def status_violations(status: status_pb2.Status) -> dict[str, str]:
    """The BadRequest field violations of a google.rpc.Status, by field."""
    out: dict[str, str] = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.update({v.field: v.description for v in bad.field_violations})
    return out


def error_reason(exc: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason of a failed call ("" when it has none)."""
    status = rpc_status.from_call(exc)
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


@dataclass
class Services:
    """Identity and records running, and tokens for every kind of caller."""

    records: pb_grpc.RecordsServiceStub
    records_url: str
    # host:port of records, for a client of a test's own.
    records_target: str
    council_a: tuple[tuple[str, str], ...]
    council_b: tuple[tuple[str, str], ...]
    gateway: tuple[tuple[str, str], ...]
    person: tuple[tuple[str, str], ...]
    # The gateway acting for the practitioner `person`, as it reads children.
    reader: tuple[tuple[str, str], ...]
    # Data managers of council A and council B (people, logged in as the gateway would).
    manager_a: tuple[tuple[str, str], ...]
    manager_b: tuple[tuple[str, str], ...]
    audit_url: str
    identity_target: str
    # Identity's database, to create accounts of a test's own (to revoke or suspend them).
    identity_url: str
    # What the module's records service was started with (to start another on the same data).
    records_settings: RecordsSettings
    # The gateway's machine account (client id, secret), to issue a token of a test's own.
    gateway_account: tuple[str, str]
    tests: Iterator[int] = dataclasses.field(default_factory=itertools.count)


@dataclass
class World:
    """One test's view of the running services: its own ids and its own date of birth."""

    services: Services
    prefix: str
    dob: date_pb2.Date
    nhs_number: str

    @property
    def records(self) -> pb_grpc.RecordsServiceStub:
        return self.services.records

    @property
    def council_a(self) -> tuple[tuple[str, str], ...]:
        return self.services.council_a

    @property
    def council_b(self) -> tuple[tuple[str, str], ...]:
        return self.services.council_b

    @property
    def gateway(self) -> tuple[tuple[str, str], ...]:
        return self.services.gateway

    @property
    def person(self) -> tuple[tuple[str, str], ...]:
        return self.services.person

    @property
    def reader(self) -> tuple[tuple[str, str], ...]:
        return self.services.reader

    def id(self, name: str) -> str:
        """A source record id or request id of this test's own."""
        return f"{self.prefix}-{name}"

    def next_day(self) -> date_pb2.Date:
        """The day after this test's date of birth."""
        after = dt.date(self.dob.year, self.dob.month, self.dob.day) + dt.timedelta(days=1)
        return date(after.year, after.month, after.day)

    def record(self, rid: str, **overrides: object) -> pb.SourceRecord:
        """`make_record` with this test's ids and date of birth."""
        record = make_record(self.id(rid), **overrides)
        if "date_of_birth" not in overrides:
            record.date_of_birth.CopyFrom(self.dob)
        if "nhs_number" not in overrides:
            record.nhs_number = self.nhs_number
        return record

    async def submit(
        self, record: pb.SourceRecord, request_id: str, metadata: tuple[tuple[str, str], ...] | None = None
    ) -> pb.SubmitSourceRecordResponse:
        return await self.records.SubmitSourceRecord(
            pb.SubmitSourceRecordRequest(record=record, request_id=self.id(request_id) if request_id else ""),
            metadata=metadata or self.council_a,
        )

    async def get(self, contactpoint_id: str) -> child_pb2.Child:
        resp = await self.records.GetChildRecord(
            pb.GetChildRecordRequest(contactpoint_id=contactpoint_id), metadata=self.reader
        )
        return resp.child

    async def find(self, **criteria: object) -> child_pb2.Child:
        criteria.setdefault("date_of_birth", self.dob)
        resp = await self.records.FindChildRecord(
            pb.FindChildRecordRequest(**criteria),  # type: ignore[arg-type]
            metadata=self.reader,
        )
        return resp.child

    def sql(self, statement: str, **params: object) -> list[tuple[object, ...]]:
        """Run SQL straight against records' database (to check or arrange what is stored)."""
        db = Database(self.services.records_url)

        def run(conn: Connection) -> list[tuple[object, ...]]:
            result = conn.execute(text(statement), params)
            return [tuple(r) for r in result] if result.returns_rows else []

        try:
            return db.run_sync(run)
        finally:
            db.dispose()

    def counts(self) -> dict[str, int]:
        """Rows in each of records' tables (all tests')."""
        return {t: int(self.sql(f"SELECT count(*) FROM {t}")[0][0]) for t in TABLES}  # noqa: S608

    def added(self, before: dict[str, int]) -> dict[str, int]:
        """Rows added to each table since `before` (tests of a module run one at a time)."""
        return {t: n - before[t] for t, n in self.counts().items()}


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated records database of its own, on each backend."""
    migrate.upgrade("records", MIGRATIONS, database_url)
    database = Database(database_url)
    bind_records_keys(database)
    yield database
    database.dispose()


async def _token(stub: identity_grpc.IdentityServiceStub, client_id: str, secret: str) -> str:
    resp = await stub.IssueServiceToken(
        identity_pb.IssueServiceTokenRequest(client_id=client_id, client_secret=secret)
    )
    return resp.access_token


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_databases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseFactory]:
    """Databases for one module's services, on each backend (as tests/conftest.py's `databases`)."""
    if request.param == "postgresql" and _PG_PROBLEM is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true but unreachable: {_PG_PROBLEM}")
        pytest.skip(f"PostgreSQL unreachable: {_PG_PROBLEM}")
    factory = DatabaseFactory(request.param, tmp_path_factory.mktemp(f"records-{request.param}"))
    yield factory
    factory.drop_all()


async def _login(
    identity: identity_grpc.IdentityServiceStub,
    gateway: tuple[tuple[str, str], ...],
    username: str,
    totp: str,
) -> tuple[tuple[str, str], ...]:
    login = await identity.AuthenticateUser(
        identity_pb.AuthenticateUserRequest(
            username=username, password="correct horse battery staple 9", totp_code=pyotp.TOTP(totp).now()
        ),
        metadata=gateway,
    )
    return bearer(login.access_token)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services(
    module_databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Services]:
    """Identity, audit and records serving, once per module and backend."""
    identity_url, records_url = module_databases.new("identity"), module_databases.new("records")
    audit_url = module_databases.new("audit")
    keys = tmp_path_factory.mktemp("keys")
    async with AsyncExitStack() as stack:
        _, identity_target = await stack.enter_async_context(
            running_identity(identity_settings(identity_url, keys))
        )
        common = {"listen": "127.0.0.1:0", "identity_target": identity_target}
        _, audit_target = await stack.enter_async_context(
            running_service(
                "audit",
                AUDIT_MIGRATIONS,
                build_audit,
                AuditSettings.model_validate(
                    {
                        **common,
                        **platform_account(identity_url, "audit"),
                        "database_url": audit_url,
                        "signing_key_file": keys / "audit.pem",
                    }
                ),
            )
        )
        settings = RecordsSettings.model_validate(
            {
                **common,
                "database_url": records_url,
                "audit_target": audit_target,
                **records_keys(records_url),
                **platform_account(identity_url, "records"),
            }
        )
        _, records_target = await stack.enter_async_context(
            running_service("records", MIGRATIONS, build, settings)
        )
        accounts = [
            create_service_account(identity_url, "council-a", "council-system", org=ORG_A),
            create_service_account(identity_url, "council-b", "council-system", org=ORG_B),
            create_service_account(identity_url, "gateway", "gateway", org="contactpoint"),
        ]
        identity_ch = await stack.enter_async_context(grpc.aio.insecure_channel(identity_target))
        identity = identity_grpc.IdentityServiceStub(identity_ch)
        tokens = [await _token(identity, a.client_id, a.client_secret) for a in accounts]
        gateway = bearer(tokens[2])
        # People's tokens: only the gateway may log people in, so use its token to do it here.
        people = [
            ("pat.practitioner", "practitioner", ORG_A),
            ("dee.manager", "data-manager", ORG_A),
            ("bea.manager", "data-manager", ORG_B),
        ]
        logins = [
            await _login(identity, gateway, name, create_user(identity_url, name, role, org=org).totp_secret)
            for name, role, org in people
        ]
        records_ch = await stack.enter_async_context(grpc.aio.insecure_channel(records_target))
        yield Services(
            records=pb_grpc.RecordsServiceStub(records_ch),
            records_url=records_url,
            records_target=records_target,
            council_a=bearer(tokens[0]),
            council_b=bearer(tokens[1]),
            gateway=gateway,
            person=logins[0],
            reader=(*gateway, ("x-on-behalf-of", logins[0][0][1])),
            manager_a=logins[1],
            manager_b=logins[2],
            audit_url=audit_url,
            identity_target=identity_target,
            identity_url=identity_url,
            records_settings=settings,
            gateway_account=(accounts[2].client_id, accounts[2].client_secret),
        )


@pytest.fixture
def world(services: Services) -> World:
    """This test's corner of the module's services."""
    n = next(services.tests)
    born = date(BIRTH_YEAR - n % 10, 1 + n % 12, 13 + n % 16)
    return World(services, uuid.uuid4().hex[:8], born, valid_nhs_number(n))
