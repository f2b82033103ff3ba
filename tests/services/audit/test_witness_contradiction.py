"""The audit service against a witness that contradicts its log, on SQLite and PostgreSQL (issue 7,
found by probing: a log cut back or restored from an older copy went on appending with only a
warning, and a wrongly pinned witness key was accepted at start; only `audit verify` noticed).

Now audit refuses to start on a log shorter than, or inconsistent with, what its witness cosigned,
or beside a witness whose cosignature the pinned key does not verify; and a log cut while audit runs
stops taking appends (FAILED_PRECONDITION, LOG_CONTRADICTS_WITNESS) until it is restored."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import Connection, Table, text

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.audit.v1 import audit_service_pb2_grpc as pb_grpc
from contactpoint.platform.db import Database
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from contactpoint.platform.settings import ConfigurationError
from services.audit import tables
from services.audit.main import MIGRATIONS, build
from services.witness.main import MIGRATIONS as WITNESS_MIGRATIONS
from services.witness.main import build as build_witness
from tests.conftest import DatabaseFactory
from tests.harness import running_service
from tests.services.audit.conftest import Callers
from tests.services.audit.test_trusted_checkpoint import cut_tail, rewrite_and_resign
from tests.services.audit.witness_suite import (
    Suite,
    append_events,
    head_size_at_most,
    suite_settings,
    until_witnessed,
    witness_and_audit,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

_LOG_TABLES: tuple[Table, ...] = (tables.leaves, tables.tree_nodes, tables.tree_heads, tables.tree_state)


def _witness_key(suite: Suite) -> str:
    return base64.b64encode(
        raw_public_key(load_or_create_signing_key(suite.witness.signing_key_file))
    ).decode()


async def _start_audit_with_witness_running(suite: Suite) -> None:
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            running_service("witness", WITNESS_MIGRATIONS, build_witness, suite.witness)
        )
        await stack.enter_async_context(running_service("audit", MIGRATIONS, build, suite.audit))


async def test_audit_refuses_to_start_on_a_log_cut_back(witnessed: Suite) -> None:
    cut_tail(witnessed.audit.database_url, keep=head_size_at_most(witnessed.audit.database_url, 14))
    with pytest.raises(ConfigurationError, match="holds 14 entries but its witness cosigned 64"):
        await _start_audit_with_witness_running(witnessed)


async def test_audit_refuses_to_start_on_a_log_rewritten(witnessed: Suite) -> None:
    rewrite_and_resign(witnessed.audit)  # 5 entries: shorter, so rewrite a longer log than that
    with pytest.raises(ConfigurationError, match="witness cosigned 64"):
        await _start_audit_with_witness_running(witnessed)


async def test_audit_refuses_to_start_on_a_log_rewritten_to_the_same_length(
    callers: Callers, databases: DatabaseFactory, tmp_path: Path
) -> None:
    suite = suite_settings(callers, databases, tmp_path)
    async with AsyncExitStack() as stack:
        stub = await witness_and_audit(stack, suite)
        await append_events(stub, callers.gateway, 3)
        await until_witnessed(suite.witness_target, 3)
    rewrite_and_resign(suite.audit)  # five entries, the second changed, every head re-signed
    with pytest.raises(ConfigurationError, match="first 3 entries are not those its witness cosigned"):
        await _start_audit_with_witness_running(suite)


async def test_a_wrongly_pinned_witness_key_is_refused_at_start(witnessed: Suite, tmp_path: Path) -> None:
    other = base64.b64encode(raw_public_key(load_or_create_signing_key(tmp_path / "other.pem"))).decode()
    wrong = witnessed.audit.model_copy(update={"witness_public_key": other})
    with pytest.raises(ConfigurationError, match="CONTACTPOINT_AUDIT_WITNESS_PUBLIC_KEY"):
        await _start_audit_with_witness_running(Suite(wrong, witnessed.witness, witnessed.witness_target))
    renamed = witnessed.audit.model_copy(
        update={"witness_public_key": _witness_key(witnessed), "witness_name": "another.witness"}
    )
    with pytest.raises(ConfigurationError, match=r"does not cosign as 'another\.witness'"):
        await _start_audit_with_witness_running(Suite(renamed, witnessed.witness, witnessed.witness_target))
    # The right key starts, and the log (untouched) is consistent with the witness.
    right = witnessed.audit.model_copy(update={"witness_public_key": _witness_key(witnessed)})
    await _start_audit_with_witness_running(Suite(right, witnessed.witness, witnessed.witness_target))


async def test_audit_starts_when_the_witness_cannot_be_reached(witnessed: Suite) -> None:
    # An absent witness delays only the witnessing: the start does not wait for it.
    cut_tail(witnessed.audit.database_url, keep=head_size_at_most(witnessed.audit.database_url, 14))
    async with running_service("audit", MIGRATIONS, build, witnessed.audit):
        pass


def _restored_from_an_older_copy(database_url: str, keep: int) -> None:
    """The log as a copy of it taken at `keep` entries would be: `cut_tail`, and the interior nodes
    that cover entries from `keep` on deleted too."""
    cut_tail(database_url, keep)
    db = Database(database_url)
    try:
        db.run_sync(
            lambda c: c.execute(
                text("DELETE FROM tree_nodes WHERE ((node_index + 1) << level) > :k"), {"k": keep}
            )
        )
    finally:
        db.dispose()


def _snapshot(database_url: str) -> dict[str, list[dict[str, Any]]]:
    db = Database(database_url)
    try:
        return db.run_sync(
            lambda c: {t.name: [dict(r._mapping) for r in c.execute(t.select())] for t in _LOG_TABLES},
            write=False,
        )
    finally:
        db.dispose()


def _restore(database_url: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    def put_back(c: Connection) -> None:
        for t in _LOG_TABLES:
            c.execute(t.delete())
            if rows[t.name]:
                c.execute(t.insert(), rows[t.name])

    db = Database(database_url)
    try:
        db.run_sync(put_back)
    finally:
        db.dispose()


def _reason(exc: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return ""


async def _one(stub: pb_grpc.AuditServiceStub, gateway: tuple[tuple[str, str], ...]) -> int:
    event = pb.AuditEvent(actor="user", action="GetChild", outcome="ALLOWED", severity="INFO")
    return int((await stub.AppendEvent(pb.AppendEventRequest(event=event), metadata=gateway)).leaf_index)


async def _until_refused(stub: pb_grpc.AuditServiceStub, gateway: tuple[tuple[str, str], ...]) -> list[int]:
    """Append one event at a time until audit refuses: the indexes it gave before."""
    given: list[int] = []
    for _ in range(200):  # the witness hears of the new head within a second or so
        try:
            given.append(await _one(stub, gateway))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc
            assert _reason(exc) == "LOG_CONTRADICTS_WITNESS"
            assert "witness cosigned 20" in (exc.details() or "")
            return given
        await asyncio.sleep(0.05)
    raise AssertionError(f"audit never refused: appended at {given}")


@pytest_asyncio.fixture(loop_scope="module")
async def running(
    callers: Callers, databases: DatabaseFactory, tmp_path: Path
) -> AsyncIterator[tuple[Suite, Any]]:
    suite = suite_settings(callers, databases, tmp_path)
    async with AsyncExitStack() as stack:
        stub = await witness_and_audit(stack, suite)
        yield suite, stub


async def test_a_log_cut_while_audit_runs_stops_appends_until_it_is_restored(
    running: tuple[Suite, pb_grpc.AuditServiceStub], callers: Callers
) -> None:
    suite, stub = running
    for _ in range(20):
        await _one(stub, callers.gateway)
    await until_witnessed(suite.witness_target, 20)
    kept = _snapshot(suite.audit.database_url)
    _restored_from_an_older_copy(
        suite.audit.database_url, keep=head_size_at_most(suite.audit.database_url, 10)
    )
    forked = await _until_refused(stub, callers.gateway)
    assert forked and forked[0] < 20  # written over the cut before the witness said so
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # and refused from then on
        await _one(stub, callers.gateway)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    _restore(suite.audit.database_url, kept)  # the witnessed entries are back
    for _ in range(200):
        try:
            index = await _one(stub, callers.gateway)
            break
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("audit did not take appends again once the log was restored")
    assert index == 20
    await until_witnessed(suite.witness_target, 21)
    report = await asyncio.to_thread(suite.verify)
    assert report.ok, report.message
