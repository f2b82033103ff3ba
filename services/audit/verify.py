"""`contactpoint audit verify`: recompute the Merkle tree from the stored entries and check it
against every stored signed tree head."""

from __future__ import annotations

import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contactpoint.platform.db import Database
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from services.audit import merkle, repository
from services.audit.domain import checkpoint_body
from services.audit.settings import AuditSettings


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of a verification; `first_bad_index` names the first bad entry, if any."""

    ok: bool
    tree_size: int
    heads_checked: int
    message: str
    first_bad_index: int | None = None


def _check_leaves(rows: list[dict[str, object]]) -> tuple[list[bytes], VerifyReport | None]:
    hashes: list[bytes] = []
    for position, row in enumerate(rows):
        index = int(row["leaf_index"])  # type: ignore[call-overload]
        if index != position:
            return hashes, VerifyReport(
                False, len(rows), 0, f"entry {position} is missing or out of order", position
            )
        data = bytes(row["leaf_data"])  # type: ignore[call-overload]
        digest = merkle.leaf_hash(data)
        if digest != bytes(row["leaf_hash"]):  # type: ignore[call-overload]
            return hashes, VerifyReport(False, len(rows), 0, f"entry {index} was altered", index)
        try:
            body = json.loads(data)
        except ValueError:
            return hashes, VerifyReport(False, len(rows), 0, f"entry {index} is not a valid event", index)
        if body.get("contactpointId", "") != row["contactpoint_id"] or body.get("actor", "") != row["actor"]:
            return hashes, VerifyReport(
                False, len(rows), 0, f"entry {index}'s index columns were altered", index
            )
        hashes.append(digest)
    return hashes, None


def verify_log(db: Database, public_key: bytes, origin: str) -> VerifyReport:
    """Check every leaf and every signed tree head."""
    rows, heads = db.run_sync(
        lambda c: (
            [dict(r) for r in repository.all_leaves(c)],
            [dict(h) for h in repository.all_tree_heads(c)],
        ),
        write=False,
    )
    hashes, problem = _check_leaves(rows)
    if problem:
        return problem
    key = Ed25519PublicKey.from_public_bytes(public_key)
    peaks: merkle.Peaks = []
    roots: dict[int, bytes] = {}
    for size, digest in enumerate(hashes, start=1):
        peaks = merkle.append(peaks, digest)
        roots[size] = merkle.root_from_peaks(peaks)
    for head in heads:
        size = int(head["tree_size"])
        checkpoint = str(head["checkpoint"])
        if size not in roots:
            return VerifyReport(
                False, len(hashes), 0, f"a tree head of size {size} covers missing entries", size - 1
            )
        bad_root = roots[size] != bytes(head["root_hash"]) or checkpoint != checkpoint_body(
            origin, size, roots[size]
        )
        if bad_root:
            return VerifyReport(
                False, len(hashes), 0, f"tree head {size} does not match entries 0..{size - 1}", size - 1
            )
        try:
            key.verify(bytes(head["signature"]), checkpoint.encode())
        except InvalidSignature:
            return VerifyReport(False, len(hashes), 0, f"tree head {size} has a bad signature", size - 1)
    if hashes and (not heads or int(heads[-1]["tree_size"]) != len(hashes)):
        return VerifyReport(
            False, len(hashes), len(heads), "the newest entries have no signed tree head", len(hashes) - 1
        )
    return VerifyReport(
        True, len(hashes), len(heads), f"{len(hashes)} entries, {len(heads)} signed tree heads checked"
    )


def verify_from_settings(settings: AuditSettings) -> VerifyReport:
    """Verify the log named by the audit service's settings, with its own key."""
    if not settings.signing_key_file.exists():
        return VerifyReport(False, 0, 0, f"no signing key at {settings.signing_key_file}")
    db = Database(settings.database_url)
    try:
        key = load_or_create_signing_key(settings.signing_key_file)
        return verify_log(db, raw_public_key(key), settings.origin)
    finally:
        db.dispose()
