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
from contactpoint.platform import merkle
from contactpoint.platform.audit_writer import AuditWriter
from contactpoint.platform.db import Database
from contactpoint.platform.errors import FailedPrecondition, Unavailable
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from contactpoint.platform.settings import ConfigurationError
from services.audit import domain as audit_domain
from services.audit import state_repository, tables
from services.audit.admin import subject_access_report
from services.audit.domain import Signer
from services.audit.events import Reader
from services.audit.main import MIGRATIONS, build
from services.audit.rotation import rotate_signing_key
from services.audit.witness_view import witness_view
from services.witness.main import MIGRATIONS as WITNESS_MIGRATIONS
from services.witness.main import build as build_witness
from tests.conftest import DatabaseFactory
from tests.harness import running_service
from tests.services.audit.conftest import Callers
from tests.services.audit.test_append_events import FixedToken
from tests.services.audit.test_trusted_checkpoint import cut_tail, rewrite_and_resign
from tests.services.audit.witness_suite import (
    Suite,
    head_size_at_most,
    suite_settings,
    until_witnessed,
    with_witnessed_events,
    witness_and_audit,
    witnessed_size,
)
from tests.test_observability import scrape, value

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHILD = "100000000001"
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
        await with_witnessed_events(stack, suite, callers.gateway, 3)
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


def _run(database_url: str, *statements: str, **params: int) -> None:
    db = Database(database_url)
    try:
        db.run_sync(lambda c: [c.execute(text(sql), params) for sql in statements])
    finally:
        db.dispose()


def _restored_from_an_older_copy(database_url: str, keep: int) -> None:
    """The log as a copy of it taken at `keep` entries would be: `cut_tail`, and the interior nodes
    that cover entries from `keep` on deleted too."""
    cut_tail(database_url, keep)
    _run(database_url, "DELETE FROM tree_nodes WHERE ((node_index + 1) << level) > :keep", keep=keep)


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


def _stopped(metrics_port: int | None) -> float:
    return value(scrape(metrics_port), "contactpoint_audit_log_contradicts_witness")


async def test_a_log_cut_while_audit_runs_stops_appends_until_it_is_restored(
    callers: Callers, databases: DatabaseFactory, tmp_path: Path
) -> None:
    suite = suite_settings(callers, databases, tmp_path)
    suite.audit = suite.audit.model_copy(update={"metrics_listen": "127.0.0.1:0"})
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            running_service("witness", WITNESS_MIGRATIONS, build_witness, suite.witness)
        )
        server, target = await stack.enter_async_context(
            running_service("audit", MIGRATIONS, build, suite.audit)
        )
        channel = await stack.enter_async_context(grpc.aio.insecure_channel(target))
        await _cut_while_running(suite, channel, callers, server.metrics_port)


async def _cut_while_running(
    suite: Suite, channel: grpc.aio.Channel, callers: Callers, metrics_port: int | None
) -> None:
    stub = pb_grpc.AuditServiceStub(channel)
    for _ in range(20):
        await _one(stub, callers.gateway)
    await until_witnessed(suite.witness_target, 20)
    assert _stopped(metrics_port) == 0
    kept = _snapshot(suite.audit.database_url)
    _restored_from_an_older_copy(
        suite.audit.database_url, keep=head_size_at_most(suite.audit.database_url, 10)
    )
    forked = await _until_refused(stub, callers.gateway)
    assert forked and forked[0] < 20  # written over the cut before the witness said so
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # and refused from then on
        await _one(stub, callers.gateway)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _stopped(metrics_port) == 1  # for alerting
    # What the services' requests meet: their writer fails them closed (the gateway's UNAVAILABLE).
    writer = AuditWriter(channel, FixedToken(callers.gateway))
    with pytest.raises(Unavailable):
        await writer.append(
            pb.AuditEvent(actor="user", action="GetChild", outcome="ALLOWED", severity="INFO")
        )
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
    assert _stopped(metrics_port) == 0


def _insert_head(database_url: str, row: dict[str, Any]) -> None:
    db = Database(database_url)
    try:
        db.run_sync(lambda c: c.execute(tables.tree_heads.insert(), [row]))
    finally:
        db.dispose()


def _head_row(database_url: str, size: int) -> dict[str, Any]:
    db = Database(database_url)
    try:
        return db.run_sync(
            lambda c: dict(
                c.execute(tables.tree_heads.select().where(tables.tree_heads.c.tree_size == size))
                .one()
                ._mapping
            ),
            write=False,
        )
    finally:
        db.dispose()


async def _refused_throughout(
    stub: pb_grpc.AuditServiceStub, gateway: tuple[tuple[str, str], ...], seconds: float
) -> None:
    """Every append for `seconds` (past the witness client's checks again) is refused."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _one(stub, gateway)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value
        await asyncio.sleep(0.1)


async def test_a_stopped_log_is_not_resumed_by_a_head_row_copying_the_witness(
    running: tuple[Suite, pb_grpc.AuditServiceStub], callers: Callers
) -> None:
    """Found by probing: with the stop judged by the newest head row, one row inserted with the
    witness's public checkpoint (and no valid signature) made audit append on the fork again."""
    suite, stub = running
    for _ in range(20):
        await _one(stub, callers.gateway)
    await until_witnessed(suite.witness_target, 20)
    witnessed = _head_row(suite.audit.database_url, 20)
    _restored_from_an_older_copy(
        suite.audit.database_url, keep=head_size_at_most(suite.audit.database_url, 10)
    )
    await _until_refused(stub, callers.gateway)
    _insert_head(suite.audit.database_url, {**witnessed, "signature": bytes(64)})
    await _refused_throughout(stub, callers.gateway, 3.0)


async def test_a_junk_head_does_not_blind_the_running_audit_to_a_cut(
    running: tuple[Suite, pb_grpc.AuditServiceStub], callers: Callers
) -> None:
    """Found by probing: a head row of 2**40 entries made every push fail with a warning once a
    minute, and appends went on past a cut."""
    suite, stub = running
    for _ in range(20):
        await _one(stub, callers.gateway)
    await until_witnessed(suite.witness_target, 20)
    junk = {**_head_row(suite.audit.database_url, 20), "tree_size": 2**40, "checkpoint": "junk"}
    _restored_from_an_older_copy(
        suite.audit.database_url, keep=head_size_at_most(suite.audit.database_url, 10)
    )
    _insert_head(suite.audit.database_url, junk)  # the newest head row, after the cut
    await _until_refused(stub, callers.gateway)


async def test_audit_refuses_to_start_on_a_cut_log_that_kept_its_newest_head(witnessed: Suite) -> None:
    """Found by probing: a log cut to 14 entries with its newest head (64, validly signed) put back
    passed the start check, and appended 14 to 62 on the fork."""
    newest = _head_row(witnessed.audit.database_url, 64)
    _restored_from_an_older_copy(
        witnessed.audit.database_url, keep=head_size_at_most(witnessed.audit.database_url, 14)
    )
    _insert_head(witnessed.audit.database_url, newest)
    with pytest.raises(ConfigurationError, match="holds 14 entries but its witness cosigned 64"):
        await _start_audit_with_witness_running(witnessed)


async def test_the_audit_commands_do_not_append_to_a_log_cut_back(witnessed: Suite) -> None:
    """Found by probing: `audit report` wrote entries 14 to 16 onto a log cut back to 14, which
    the service itself refused to start on."""
    checkpoint = witness_view(witnessed.env(), witnessed.audit).checkpoint
    assert checkpoint is not None and checkpoint.size == 64
    reader = Reader("an-operator", "", (), "a" * 32)
    # On the witnessed log the report goes on, and is itself entry 64.
    assert (
        subject_access_report(witnessed.audit, contactpoint_id=CHILD, reader=reader, witnessed=checkpoint)
        == []
    )
    assert _snapshot(witnessed.audit.database_url)["tree_state"][0]["size"] == 65
    _restored_from_an_older_copy(
        witnessed.audit.database_url, keep=head_size_at_most(witnessed.audit.database_url, 14)
    )
    with pytest.raises(FailedPrecondition) as refused:
        subject_access_report(witnessed.audit, contactpoint_id=CHILD, reader=reader, witnessed=checkpoint)
    assert refused.value.reason == "LOG_CONTRADICTS_WITNESS"
    with pytest.raises(FailedPrecondition) as refused:
        rotate_signing_key(witnessed.audit, witnessed=checkpoint)
    assert refused.value.reason == "LOG_CONTRADICTS_WITNESS"
    assert _snapshot(witnessed.audit.database_url)["tree_state"][0]["size"] == 14  # nothing written


async def test_a_witness_the_pinned_key_does_not_verify_is_not_believed_when_it_comes_back(
    witnessed: Suite, tmp_path: Path, callers: Callers
) -> None:
    """Found by probing (by reading): after a start with the witness away, its answers were
    believed unchecked, and could set what audit took as cosigned or clear a stop."""
    other = base64.b64encode(raw_public_key(load_or_create_signing_key(tmp_path / "other.pem"))).decode()
    wrong = witnessed.audit.model_copy(update={"witness_public_key": other})
    async with AsyncExitStack() as stack:
        _, target = await stack.enter_async_context(running_service("audit", MIGRATIONS, build, wrong))
        stub = pb_grpc.AuditServiceStub(await stack.enter_async_context(grpc.aio.insecure_channel(target)))
        await stack.enter_async_context(
            running_service("witness", WITNESS_MIGRATIONS, build_witness, witnessed.witness)
        )
        for _ in range(5):
            await _one(stub, callers.gateway)  # the log goes on
            await asyncio.sleep(0.3)
        assert await witnessed_size(witnessed.witness_target) == 64  # and nothing is sent to it


async def test_audit_refuses_to_start_when_entries_were_deleted_at_the_tail(witnessed: Suite) -> None:
    """Found by re-probing: entries deleted with the tree state left alone passed (the state still
    matched the witness), and audit appended after the gap."""
    _run(witnessed.audit.database_url, "DELETE FROM leaves WHERE leaf_index >= 14")
    with pytest.raises(ConfigurationError, match="holds 64 entries but its stored entries are 0 to 13"):
        await _start_audit_with_witness_running(witnessed)
    _run(witnessed.audit.database_url, "DELETE FROM leaves")
    with pytest.raises(ConfigurationError, match="stored entries are none"):
        await _start_audit_with_witness_running(witnessed)


async def test_audit_refuses_to_start_when_its_tree_state_was_set_back(witnessed: Suite) -> None:
    """Found by re-probing: a tree state set back under later entries passed, and every append
    then failed INTERNAL for ever (its leaf index was taken)."""
    url = witnessed.audit.database_url
    signer = Signer(load_or_create_signing_key(witnessed.audit.signing_key_file), witnessed.audit.origin)
    event = pb.AuditEvent(actor="user", action="GetChild", outcome="ALLOWED", severity="INFO")
    db = Database(url)
    try:
        db.run_sync(lambda c: audit_domain.append(c, event=event, signer=signer, appended_by="gateway"))

        def set_back(c: Connection) -> None:  # the state as it was at the witnessed 64
            peaks: merkle.Peaks = []
            for digest in c.execute(
                text("SELECT leaf_hash FROM leaves WHERE leaf_index < 64 ORDER BY leaf_index")
            ):
                peaks = merkle.append(peaks, bytes(digest[0]))
            state_repository.save_state(c, 64, peaks)

        db.run_sync(set_back)
    finally:
        db.dispose()
    with pytest.raises(ConfigurationError, match="holds 64 entries but its stored entries are 0 to 64"):
        await _start_audit_with_witness_running(witnessed)
