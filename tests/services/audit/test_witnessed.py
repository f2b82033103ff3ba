"""The audit log with its witness, over real gRPC, on SQLite and PostgreSQL (issue 7): every head
is sent on to the witness, which cosigns it in its own database under its own key; the three
attacks of an insider with the audit database (and the signing key beside it) then fail
`audit verify`: a cut tail, an edited entry re-signed, and a whole log re-signed with a new key.
Appends never wait for the witness: with it down they are answered, and it catches up."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from contextlib import AsyncExitStack
from pathlib import Path

import grpc
import pytest
from sqlalchemy import make_url, text

from contactpoint.audit.v1 import audit_service_pb2_grpc as pb_grpc
from contactpoint.platform.db import Database
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from services.audit import witness_view as witness_view_module
from services.audit.main import MIGRATIONS, build
from services.audit.verify_configured import verify_from_settings
from services.witness.admin import newest_checkpoint
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
    with_witnessed_events,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_every_head_is_witnessed_and_verify_checks_against_it(witnessed: Suite) -> None:
    report = witnessed.verify()
    assert report.ok, report.message
    assert "consistent with the newest checkpoint its witness cosigned of size 64" in report.message


async def test_a_cut_tail_fails_against_the_witness(witnessed: Suite) -> None:
    # The last 50 entries and their heads, cut at a head (batches are signed together).
    keep = head_size_at_most(witnessed.audit.database_url, 14)
    assert keep == 14
    cut_tail(witnessed.audit.database_url, keep=keep)
    assert verify_from_settings(witnessed.audit).ok  # the log alone cannot tell
    report = witnessed.verify()
    assert not report.ok
    assert "fewer than the 64 of the newest checkpoint its witness cosigned" in report.message


async def test_an_edited_entry_re_signed_fails_against_the_witness(witnessed: Suite) -> None:
    rewrite_and_resign(witnessed.audit)  # a new history, every head signed with the real key
    assert verify_from_settings(witnessed.audit).ok
    assert not witnessed.verify().ok


async def test_a_log_re_signed_with_a_new_key_fails_against_the_witness(witnessed: Suite) -> None:
    witnessed.audit.signing_key_file.unlink()  # swapped for the insider's own key
    rewrite_and_resign(witnessed.audit)
    assert verify_from_settings(witnessed.audit).ok  # no pin: the key file is trusted
    report = witnessed.verify()
    assert not report.ok and "witness" in report.message


async def test_a_witness_emptied_fails_once_the_log_is_older_than_the_grace(
    witnessed: Suite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by probing: emptying the witness's own state made a cut tail pass (a witness that
    "has cosigned nothing yet"). A log the witness has had time to cosign, with an empty witness
    beside it, is a lost witness."""
    cut_tail(witnessed.audit.database_url, keep=head_size_at_most(witnessed.audit.database_url, 14))
    db = Database(witnessed.witness.database_url)
    try:
        db.run_sync(lambda c: c.execute(text("DELETE FROM logs")))
    finally:
        db.dispose()
    assert witnessed.verify().ok  # a new log: the witness may not have cosigned it yet
    monkeypatch.setattr(witness_view_module, "WITNESS_GRACE", dt.timedelta(0))
    report = witnessed.verify()
    assert not report.ok and "witness has cosigned nothing" in report.message, report.message


@pytest.mark.parametrize("how", ["deleted", "emptied"])
async def test_a_witness_database_deleted_or_emptied_is_a_lost_witness(
    witnessed: Suite, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Found by probing: `witness.db` deleted or truncated to nothing was reported as a database
    that cannot be read, and verify left an empty file in its place."""
    url = witnessed.witness.database_url
    if not url.startswith("sqlite"):
        pytest.skip("a file of its own only on SQLite")
    path = _lose_file(Path(make_url(url).database or ""), how)
    report = witnessed.verify()
    assert report.ok and "cosigned nothing yet" in report.message, report.message
    monkeypatch.setattr(witness_view_module, "WITNESS_GRACE", dt.timedelta(0))
    report = witnessed.verify()
    assert not report.ok and "witness has cosigned nothing" in report.message, report.message
    assert "cannot be read" not in report.message
    assert _exists(path) == (how == "emptied")  # verify makes no file


def _exists(path: Path) -> bool:
    return path.exists()


def _lose_file(path: Path, how: str) -> Path:
    if how == "deleted":
        path.unlink()
    else:
        path.write_bytes(b"")
    return path


async def test_a_key_file_the_witness_does_not_know_fails(witnessed: Suite) -> None:
    """Found by probing: a key swapped in by hand and every head re-signed with it passed an
    unpinned verify, though the witness had recorded the log's real key."""
    witnessed.audit.signing_key_file.unlink()
    load_or_create_signing_key(witnessed.audit.signing_key_file)
    report = witnessed.verify()
    assert not report.ok and "not the log's key as its witness knows it" in report.message, report.message


async def test_a_witness_database_that_cannot_be_read_is_a_one_line_failure(witnessed: Suite) -> None:
    db = Database(witnessed.witness.database_url)
    try:
        db.run_sync(lambda c: c.execute(text("DROP TABLE logs")))
    finally:
        db.dispose()
    report = witnessed.verify()
    assert not report.ok and "witness's database cannot be read" in report.message


async def test_a_forged_witness_cosignature_fails(witnessed: Suite) -> None:
    # The witness's key file is not the one that cosigned (say, swapped with the database).
    witnessed.witness.signing_key_file.unlink()
    load_or_create_signing_key(witnessed.witness.signing_key_file)
    report = witnessed.verify()
    assert not report.ok and "cosignature" in report.message


async def test_verify_asks_a_running_witness_with_its_pinned_key(
    callers: Callers, databases: DatabaseFactory, tmp_path: Path
) -> None:
    suite = suite_settings(callers, databases, tmp_path)
    async with AsyncExitStack() as stack:
        await with_witnessed_events(stack, suite, callers.gateway, 5)
        unpinned = await asyncio.to_thread(suite.verify, {})
        assert not unpinned.ok and "CONTACTPOINT_AUDIT_WITNESS_PUBLIC_KEY" in unpinned.message
        witness_key = raw_public_key(load_or_create_signing_key(suite.witness.signing_key_file))
        suite.audit = suite.audit.model_copy(
            update={"witness_public_key": base64.b64encode(witness_key).decode()}
        )
        report = await asyncio.to_thread(suite.verify, {})
        assert report.ok and "of size 5" in report.message, report.message
        other = base64.b64encode(raw_public_key(load_or_create_signing_key(tmp_path / "other.pem"))).decode()
        suite.audit = suite.audit.model_copy(update={"witness_public_key": other})
        assert not (await asyncio.to_thread(suite.verify, {})).ok


async def test_appends_do_not_wait_for_the_witness_which_catches_up(
    callers: Callers, databases: DatabaseFactory, tmp_path: Path
) -> None:
    suite = suite_settings(callers, databases, tmp_path)
    async with AsyncExitStack() as stack:
        _, target = await stack.enter_async_context(running_service("audit", MIGRATIONS, build, suite.audit))
        ch = await stack.enter_async_context(grpc.aio.insecure_channel(target))
        stub = pb_grpc.AuditServiceStub(ch)
        assert len(await append_events(stub, callers.gateway, 10)) == 10  # no witness yet: still answered
        await stack.enter_async_context(
            running_service("witness", WITNESS_MIGRATIONS, build_witness, suite.witness)
        )
        await until_witnessed(suite.witness_target, 10)
        await append_events(stub, callers.gateway, 3)
        await until_witnessed(suite.witness_target, 13)


async def test_reading_the_witness_never_makes_it_a_key(witnessed: Suite) -> None:
    # A key made by `audit verify` would be taken up by the next witness to start, and every
    # cosignature it had stored would stop verifying.
    witnessed.witness.signing_key_file.unlink()
    assert newest_checkpoint(witnessed.witness) is None
    assert not witnessed.witness.signing_key_file.exists()
