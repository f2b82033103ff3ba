"""`audit verify --trusted-checkpoint FILE` (CONTRACT §1, v1.1) on SQLite and PostgreSQL: an
insider with the audit database and its signing key can cut the log's tail or rewrite it and
re-sign every head, and plain `audit verify` passes; a checkpoint an auditor kept catches both."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from sqlalchemy import Connection, text

from contactpoint.audit.v1 import audit_service_pb2 as pb
from contactpoint.cli.auditlog import verify as cli_verify
from contactpoint.platform import merkle
from contactpoint.platform.checkpoints import Checkpoint
from contactpoint.platform.db import Database
from contactpoint.platform.keys import load_or_create_signing_key
from services.audit import domain, state_repository
from services.audit.settings import AuditSettings
from services.audit.verify_configured import verify_from_settings
from tests.services.audit.test_verify import audit_settings, tamper, write_log


def newest_checkpoint(database_url: str) -> str:
    """The checkpoint text GetTreeHead answers now (what an auditor keeps)."""
    db = Database(database_url)
    try:
        return str(
            db.run_sync(
                lambda c: c.execute(
                    text("SELECT checkpoint FROM tree_heads ORDER BY tree_size DESC LIMIT 1")
                ).scalar_one()
            )
        )
    finally:
        db.dispose()


def cut_tail(database_url: str, keep: int) -> None:
    """Delete every entry from `keep` on with its heads, and recompute the tree state from the
    public hashes that remain: what an insider with the database alone can do."""
    db = Database(database_url)

    def cut(c: Connection) -> None:
        c.execute(text("DELETE FROM leaves WHERE leaf_index >= :k"), {"k": keep})
        c.execute(text("DELETE FROM tree_heads WHERE tree_size > :k"), {"k": keep})
        peaks: merkle.Peaks = []
        for digest in c.execute(text("SELECT leaf_hash FROM leaves ORDER BY leaf_index")).scalars():
            peaks = merkle.append(peaks, bytes(digest))
        state_repository.save_state(c, keep, peaks)

    try:
        db.run_sync(cut)
    finally:
        db.dispose()


def rewrite_and_resign(settings: AuditSettings) -> None:
    """Replace the whole log by one whose entry 1 says something else, every head re-signed with
    the key that lies beside the database."""
    db = Database(settings.database_url)
    signer = domain.Signer(load_or_create_signing_key(settings.signing_key_file), settings.origin)
    try:
        wipe = [
            "DELETE FROM leaves",
            "DELETE FROM tree_heads",
            "DELETE FROM tree_nodes",
            "UPDATE tree_state SET size = 0, peaks = '[]'",
        ]
        db.run_sync(lambda c: [c.execute(text(sql)) for sql in wipe])
        for i in range(5):
            actor = "someone innocent" if i == 1 else f"user{i}"
            event = pb.AuditEvent(actor=actor, action="GetChild", outcome="ALLOWED", severity="INFO")
            db.run_sync(lambda c, e=event: domain.append(c, event=e, signer=signer, appended_by="gateway"))
    finally:
        db.dispose()


async def test_a_cut_tail_passes_alone_but_not_against_a_kept_checkpoint(
    database_url: str, tmp_path: Path
) -> None:
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    kept = Checkpoint.parse(newest_checkpoint(settings.database_url))
    assert kept.size == 5
    report = verify_from_settings(settings, kept)
    assert report.ok and "trusted checkpoint of size 5" in report.message, report
    cut_tail(settings.database_url, 3)
    assert verify_from_settings(settings).ok  # the attack the log alone cannot see
    report = verify_from_settings(settings, kept)
    assert not report.ok and "fewer than the 5" in report.message and report.first_bad_index == 3, report


async def test_a_rewritten_resigned_log_is_inconsistent_with_a_kept_checkpoint(
    database_url: str, tmp_path: Path
) -> None:
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    early = Checkpoint.parse(newest_checkpoint(settings.database_url))
    rewrite_and_resign(settings)
    assert verify_from_settings(settings).ok
    report = verify_from_settings(settings, early)
    assert not report.ok and "inconsistent with the trusted checkpoint" in report.message, report


async def test_an_older_checkpoint_still_holds_as_the_log_grows(database_url: str, tmp_path: Path) -> None:
    settings = audit_settings(database_url, tmp_path)
    write_log(settings, size=3)
    kept = Checkpoint.parse(newest_checkpoint(settings.database_url))
    write_log(settings, size=4)  # four more events on the same log
    report = verify_from_settings(settings, kept)
    assert report.ok and report.tree_size == 7, report


@pytest.mark.parametrize(
    ("checkpoint", "problem"),
    [
        ("", "three lines"),
        ("contactpoint.audit.v1\nfive\nAAAA\n", "not a number"),
        ("contactpoint.audit.v1\n5\nnot base64!\n", "32 bytes"),
        ("contactpoint.audit.v1\n5\nAAAA\n", "32 bytes"),
    ],
)
def test_a_malformed_checkpoint_file_is_refused_with_exit_2(
    tmp_path: Path, checkpoint: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "checkpoint.txt"
    path.write_text(checkpoint)
    env = {"CONTACTPOINT_AUDIT_DATABASE_URL": f"sqlite:///{tmp_path}/none.db"}
    with pytest.raises(typer.Exit) as exit_:
        cli_verify(env, as_json=False, trusted_checkpoint=path)
    assert exit_.value.exit_code == 2
    assert problem in capsys.readouterr().err


async def test_a_checkpoint_of_another_log_is_refused(database_url: str, tmp_path: Path) -> None:
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    elsewhere = newest_checkpoint(settings.database_url).replace("contactpoint", "elsewhere", 1)
    kept = Checkpoint.parse(elsewhere)
    report = verify_from_settings(settings, kept)
    assert not report.ok and "not 'contactpoint.audit.v1'" in report.message, report


async def test_an_entry_forged_and_the_heads_after_it_resigned_is_not_taken_for_a_head_altered(
    database_url: str, tmp_path: Path
) -> None:
    """Found by re-probing: entry 1 forged, the head that signed it left as it was and every later
    head re-signed with the log's key was reported as "tree head 2 was altered", no entry blamed,
    and the walk stopped there, before the kept checkpoint that would have caught it."""
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    kept = Checkpoint.parse(newest_checkpoint(settings.database_url))
    db = Database(settings.database_url)
    try:
        head_2 = text(
            "SELECT tree_size, root_hash, checkpoint, signature, time FROM tree_heads WHERE tree_size = 2"
        )
        original = db.run_sync(lambda c: dict(c.execute(head_2).mappings().one()))
        rewrite_and_resign(settings)  # entry 1 says something else; every head re-signed

        def put_back(c: Connection) -> None:
            c.execute(text("DELETE FROM tree_heads WHERE tree_size = 2"))
            c.execute(
                text(
                    "INSERT INTO tree_heads (tree_size, root_hash, checkpoint, signature, time) "
                    "VALUES (:tree_size, :root_hash, :checkpoint, :signature, :time)"
                ),
                original,
            )

        db.run_sync(put_back)
    finally:
        db.dispose()
    alone = verify_from_settings(settings)
    assert not alone.ok and "tree head 2 was altered" in alone.message, alone
    report = verify_from_settings(settings, kept)
    assert not report.ok and "inconsistent with the trusted checkpoint" in report.message, report


@pytest.mark.parametrize("how", ["swapped", "rehashed"])
async def test_entries_swapped_or_altered_and_rehashed_are_named_against_a_kept_checkpoint(
    database_url: str, tmp_path: Path, how: str
) -> None:
    """Two entries swapped, or one altered with its hash recomputed: the heads no longer match and
    neither does a checkpoint kept outside the database, so the entries were altered, and the
    first is named, as without the checkpoint (found by probing: against the witness's checkpoint
    the report named none)."""
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    kept = Checkpoint.parse(newest_checkpoint(settings.database_url))
    if how == "swapped":
        tamper(
            settings.database_url,
            "UPDATE leaves SET leaf_index = -1 WHERE leaf_index = 1",
            "UPDATE leaves SET leaf_index = 1 WHERE leaf_index = 2",
            "UPDATE leaves SET leaf_index = 2 WHERE leaf_index = -1",
        )
    else:
        rehash_entry(settings.database_url, 1)
    alone = verify_from_settings(settings)
    assert not alone.ok and alone.first_bad_index == 1, alone
    report = verify_from_settings(settings, kept)
    assert not report.ok and report.first_bad_index == 1, report
    assert "entry 1" in report.message and "trusted checkpoint" in report.message, report


def rehash_entry(database_url: str, index: int) -> None:
    """Alter an entry's data and store the hash of what it now says (RFC 9162's leaf hash)."""
    db = Database(database_url)

    def alter(c: Connection) -> None:
        data = bytes(
            c.execute(text("SELECT leaf_data FROM leaves WHERE leaf_index = :i"), {"i": index}).scalar_one()
        )
        forged = data.replace(b"ALLOWED", b"REFUSED")  # not a filter column: only the hashes tell
        assert forged != data
        c.execute(
            text("UPDATE leaves SET leaf_data = :d, leaf_hash = :h WHERE leaf_index = :i"),
            {"d": forged, "h": merkle.leaf_hash(forged), "i": index},
        )

    try:
        db.run_sync(alter)
    finally:
        db.dispose()
