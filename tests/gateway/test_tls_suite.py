"""The whole suite over TLS (CONTRACT §1, v1.1), on SQLite and PostgreSQL: identity, records and
audit require client certificates signed by the suite's CA (mutual TLS), the gateway serves TLS to
partners; a council system submits, a practitioner logs in and reads a child through the gateway,
and the read is audited, every hop encrypted. Plaintext and wrong-CA clients are refused at every
port, and a client without a certificate reaches none of records, identity and audit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from contactpoint.audit.v1 import audit_service_pb2 as audit_pb
from contactpoint.gateway.v1 import gateway_service_pb2 as pb
from tests.conftest import DatabaseFactory
from tests.gateway.test_servicer import SAFEGUARDING, World, _world
from tests.harness import bearer, create_user
from tests.tls_pki import Pki, answers, make_pki


@pytest.fixture
async def tls_world(databases: DatabaseFactory, tmp_path: Path) -> AsyncIterator[tuple[World, Pki]]:
    pki = make_pki(tmp_path / "pki")
    async with AsyncExitStack() as stack:
        yield await _world(stack, databases, tmp_path, tls=pki), pki


async def test_a_read_through_the_gateway_over_tls_end_to_end(tls_world: tuple[World, Pki]) -> None:
    world, pki = tls_world
    cp = await world.submit("tls-1")  # a council system, with its client certificate
    user = create_user(world.identity_url, "pat.tls", "practitioner")
    auditor = create_user(world.identity_url, "avery.tls", "auditor")
    token = await world.login("pat.tls", user.totp_secret)  # gateway → identity over mutual TLS
    child = (
        await world.gateway.GetChild(
            pb.GetChildRequest(contactpoint_id=cp, purpose=SAFEGUARDING), metadata=bearer(token)
        )
    ).child  # gateway → records and gateway → audit over mutual TLS
    assert child.contactpoint_id == cp
    events = (
        await world.audit.ListEvents(
            audit_pb.ListEventsRequest(contactpoint_id=cp),
            metadata=bearer(await world.login("avery.tls", auditor.totp_secret)),
        )
    ).events
    assert [(e.action, e.outcome) for e in events if e.action == "GetChild"] == [("GetChild", "ALLOWED")]

    gateway = f"127.0.0.1:{world.gateway_server.port}"
    records = world.gateway_settings.records_target
    audit = world.gateway_settings.audit_target
    inside = {"identity": world.identity_target, "records": records, "audit": audit}
    # Partners reach the gateway with TLS alone.
    assert await answers(gateway, pki.credentials(client=None))
    for name, target in inside.items():
        assert await answers(target, pki.credentials()), name
        # No certificate, or one from another CA: ContactPoint's own services only.
        assert not await answers(target, pki.credentials(client=None)), name
        assert not await answers(target, pki.credentials(client="other")), name
    for name, target in {"gateway": gateway, **inside}.items():
        assert not await answers(target, None), name  # plaintext
        assert not await answers(target, pki.credentials(ca=pki.other_ca)), name  # wrong CA
