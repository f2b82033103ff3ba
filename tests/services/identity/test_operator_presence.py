"""Whether an identity service is forwarding command-line changes (`operator_presence`): a
command waits for its change to reach the audit log only while one is, on either database."""

from __future__ import annotations

import subprocess
import sys
import time

from contactpoint.platform import migrate
from contactpoint.platform.db import Database
from services.identity import operator_log
from services.identity.main import MIGRATIONS
from services.identity.operator_presence import Presence, forwarder_running
from tests.conftest import DatabaseFactory


def _running(url: str) -> bool:
    db = Database(url)
    try:
        return db.run_sync(lambda c: forwarder_running(c, url), write=False)
    finally:
        db.dispose()


def test_a_forwarder_is_seen_while_it_holds_its_presence_and_not_after(databases: DatabaseFactory) -> None:
    url, other = databases.new("identity"), databases.new("identity")
    assert not _running(url)
    first, second = Presence.hold(url), Presence.hold(url)  # two replicas share it
    try:
        assert _running(url)
        assert not _running(other)  # another registry's identity is not this one's
        first.release()
        assert _running(url)  # the other replica still forwards
    finally:
        first.release()
        second.release()
    assert not _running(url)


def test_a_forwarder_that_dies_is_seen_gone(databases: DatabaseFactory) -> None:
    # However the process ends (here SIGKILL), its presence goes with it: a command never waits
    # for a forwarder that is not there.
    url = databases.new("identity")
    code = (
        "import sys, time\n"
        "from services.identity.operator_presence import Presence\n"
        f"held = Presence.hold({url!r}); print('held', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        assert _running(url)
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + 10  # PostgreSQL notices the closed connection
    while _running(url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(url)


def test_the_wait_ends_when_the_change_is_forwarded_or_at_once_without_a_forwarder(
    databases: DatabaseFactory,
) -> None:
    url = databases.new("identity")
    migrate.upgrade("identity", MIGRATIONS, url)
    db = Database(url)
    try:
        note = db.run_sync(
            lambda c: operator_log.record(c, action="SuspendAccount", actor="op", detail="account: x")
        )
        started = time.monotonic()
        # Nobody forwards: no wait for the timeout (a bound far from it, for a loaded machine).
        assert operator_log.wait_forwarded(db, note, timeout=60) == operator_log.NOT_RUNNING
        assert time.monotonic() - started < 30
        presence = Presence.hold(url)
        try:
            started = time.monotonic()
            # Not forwarded in time: the log has not answered (found by re-probing: the note blamed identity).
            assert operator_log.wait_forwarded(db, note, timeout=0.3) == operator_log.NOT_CONFIRMED
            assert time.monotonic() - started >= 0.3
            db.run_sync(lambda c: operator_log.forget(c, [note]))
            assert operator_log.wait_forwarded(db, note, timeout=5) is True
        finally:
            presence.release()
    finally:
        db.dispose()


def test_one_replica_leads_and_the_next_takes_over_when_it_ends(databases: DatabaseFactory) -> None:
    """Found by re-probing: two identity replicas both sent every command-line change, and the log
    held it twice. One leads (and forwards); when it ends, another takes the lead."""
    url = databases.new("identity")
    first, second = Presence.hold(url), Presence.hold(url)
    try:
        assert first.lead() and first.lead()  # kept
        assert not second.lead()
        first.release()
        assert second.lead()
    finally:
        first.release()
        second.release()


async def test_two_replicas_forward_each_change_once(databases: DatabaseFactory) -> None:
    import asyncio

    url = databases.new("identity")
    migrate.upgrade("identity", MIGRATIONS, url)
    db = Database(url)
    sent: list[str] = []

    class _Audit:
        async def append(self, event: object) -> None:
            await asyncio.sleep(0.01)  # both replicas look while it is on its way
            sent.append(event.request_id)  # type: ignore[attr-defined]

    presences = [Presence.hold(url), Presence.hold(url)]
    loops = [
        asyncio.create_task(operator_log.forward(db, _Audit(), p, every=0.01))  # type: ignore[arg-type]
        for p in presences
    ]
    try:
        for i in range(5):
            db.run_sync(
                lambda c, i=i: operator_log.record(c, action="SuspendAccount", actor="op", detail=f"n{i}")
            )
        for _ in range(500):
            if len(sent) >= 5 and not db.run_sync(operator_log.waiting, write=False):
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert len(sent) == 5 and len(set(sent)) == 5
    finally:
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        for p in presences:
            p.release()
        db.dispose()
