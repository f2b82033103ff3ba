"""The log's public key pinned in configuration (CONTACTPOINT_AUDIT_PUBLIC_KEY): an insider who
swaps the key file beside the database for their own and re-signs every head passes a verify that
trusts the key file, but not one against the pinned key; and audit will not start with a signing
key other than the pinned one."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import ValidationError
from sqlalchemy import text

from contactpoint.platform import merkle
from contactpoint.platform.db import Database
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from contactpoint.platform.settings import ConfigurationError
from services.audit import domain
from services.audit.main import build
from services.audit.rotation import rotate_signing_key
from services.audit.settings import AuditSettings
from services.audit.verify_configured import verify_from_settings
from tests.services.audit.test_verify import CP, audit_settings, write_log


def pinned(settings: AuditSettings, raw: bytes) -> AuditSettings:
    return settings.model_copy(update={"public_key": base64.b64encode(raw).decode()})


def swap_key_and_resign(settings: AuditSettings) -> None:
    """Write a new key file over the old one and re-sign every stored head with it."""
    new = Ed25519PrivateKey.generate()
    pem = new.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    settings.signing_key_file.write_bytes(pem)
    signer = domain.Signer(new, settings.origin)
    db = Database(settings.database_url)
    try:
        leaf_hashes = text("SELECT leaf_hash FROM leaves ORDER BY leaf_index")
        head_sizes = text("SELECT tree_size FROM tree_heads")
        hashes = db.run_sync(lambda c: [bytes(h) for h in c.execute(leaf_hashes).scalars()])
        sizes = db.run_sync(lambda c: [int(n) for n in c.execute(head_sizes).scalars()])
        for size in sizes:
            head = signer.head(size, merkle.root(hashes[:size]))
            db.run_sync(
                lambda c, h=head: c.execute(
                    text("UPDATE tree_heads SET signature = :s WHERE tree_size = :n"),
                    {"s": h.signature, "n": h.tree_size},
                )
            )
    finally:
        db.dispose()


async def test_a_swapped_key_and_resigned_log_fails_against_the_pinned_key(
    database_url: str, tmp_path: Path
) -> None:
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    original = raw_public_key(load_or_create_signing_key(settings.signing_key_file))
    report = verify_from_settings(pinned(settings, original))
    assert report.ok and "pin" not in report.message, report
    swap_key_and_resign(settings)
    unpinned = verify_from_settings(settings)
    assert unpinned.ok and "key file beside the log" in unpinned.message  # what the issue found
    report = verify_from_settings(pinned(settings, original))
    assert not report.ok and "bad signature" in report.message and report.first_bad_index == 0, report


async def test_audit_will_not_start_with_a_key_other_than_the_pinned_one(
    database_url: str, tmp_path: Path
) -> None:
    settings = audit_settings(database_url, tmp_path)
    load_or_create_signing_key(settings.signing_key_file)
    other = raw_public_key(Ed25519PrivateKey.generate())
    with pytest.raises(ConfigurationError, match="not the one pinned"):
        await build(pinned(settings, other))


def test_a_pinned_key_must_be_a_raw_ed25519_key(tmp_path: Path) -> None:
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ValidationError):
            AuditSettings.model_validate(
                {
                    "database_url": "sqlite://",
                    "identity_target": "127.0.0.1:1",
                    "signing_key_file": tmp_path / "k.pem",
                    "public_key": bad,
                }
            )


async def test_audit_will_not_start_with_another_key_or_origin_than_the_logs(
    database_url: str, tmp_path: Path
) -> None:
    # Found by probing: a missing key file was replaced by a new one, and a changed origin was
    # accepted; either way the service signed heads that `audit verify` then called tampering.
    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    original = settings.signing_key_file.read_bytes()
    moved = tmp_path / "audit.pem.away"
    settings.signing_key_file.rename(moved)
    with pytest.raises(ConfigurationError, match=r"no audit signing key .* the log holds"):
        await build(settings)
    assert not settings.signing_key_file.exists()  # and none was made
    # Another key file in its place (with no rotation in the log leading to it).
    load_or_create_signing_key(settings.signing_key_file)
    with pytest.raises(ConfigurationError, match="is not the log's key"):
        await build(settings)
    settings.signing_key_file.write_bytes(original)
    other_origin = settings.model_copy(update={"origin": "other.origin"})
    with pytest.raises(ConfigurationError, match="a log keeps its origin"):
        await build(other_origin)
    # The log's own key and origin, and a key rotated in through the log, pass (the service then
    # goes on to ask for its machine account: past the checks).
    with pytest.raises(ConfigurationError, match="CLIENT_ID"):
        await build(settings)
    rotate_signing_key(settings)
    with pytest.raises(ConfigurationError, match="CLIENT_ID"):
        await build(settings)
    assert verify_from_settings(settings).ok


def test_the_commands_that_write_to_the_log_refuse_another_key_or_origin(
    database_url: str, tmp_path: Path
) -> None:
    # Found by re-probing: `audit report` and `audit rotate-key` signed heads with a swapped key or
    # under another origin, which the service's start then took as the log's own.
    from contactpoint.platform.errors import FailedPrecondition
    from services.audit.admin import subject_access_report
    from services.audit.events import Reader

    settings = audit_settings(database_url, tmp_path)
    write_log(settings)
    original = settings.signing_key_file.read_bytes()
    reader = Reader("operator", "", (), "req-1")
    settings.signing_key_file.write_bytes(b"")
    settings.signing_key_file.unlink()
    load_or_create_signing_key(settings.signing_key_file)  # another key in its place
    for write in (
        lambda s: subject_access_report(s, contactpoint_id=CP, reader=reader),
        rotate_signing_key,
    ):
        with pytest.raises(FailedPrecondition, match="is not the log's key"):
            write(settings)
    settings.signing_key_file.write_bytes(original)
    with pytest.raises(FailedPrecondition, match="a log keeps its origin"):
        subject_access_report(
            settings.model_copy(update={"origin": "other.origin"}), contactpoint_id=CP, reader=reader
        )
    assert subject_access_report(settings, contactpoint_id=CP, reader=reader)  # the log's own: fine
    assert verify_from_settings(settings).ok
