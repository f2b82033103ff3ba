"""What the log's witness says it cosigned, for `contactpoint audit verify`: read from the
witness's own database through its admin function when it is at hand (the embedded suite's data
dir, even while the suite is down), else asked over gRPC (`CONTACTPOINT_AUDIT_WITNESS_TARGET`).

The cosignature is checked against the witness key pinned in the audit service's configuration
(`CONTACTPOINT_AUDIT_WITNESS_PUBLIC_KEY`), or, without a pin, the witness's own key file (said so
in verify's message)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import grpc
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from contactpoint.platform.checkpoints import Checkpoint, Cosignature
from contactpoint.platform.db import is_sqlite
from contactpoint.platform.errors import Unavailable
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from contactpoint.platform.peers import PEER_TIMEOUT_SECONDS, tls_name_options
from contactpoint.platform.settings import load_settings
from contactpoint.platform.tls import load_tls
from contactpoint.witness.v1 import witness_service_pb2 as pb
from contactpoint.witness.v1 import witness_service_pb2_grpc as pb_grpc
from services.audit.settings import AuditSettings

WITNESS_DATABASE = "CONTACTPOINT_WITNESS_DATABASE_URL"
UNPINNED_NOTE = " (the witness's key file was trusted: pin CONTACTPOINT_AUDIT_WITNESS_PUBLIC_KEY)"
NO_PIN = "set CONTACTPOINT_AUDIT_WITNESS_PUBLIC_KEY to check the witness's cosignature"
NOTHING_YET = " (its witness has cosigned nothing yet)"
# How long a new log may go without a cosignature before an empty witness means a lost one.
WITNESS_GRACE = timedelta(minutes=10)


@dataclass(frozen=True)
class WitnessView:
    """The witness's newest cosigned checkpoint (None before its first), or why it is unknown."""

    checkpoint: Checkpoint | None = None
    problem: str | None = None  # set when the witness could not be read or its cosignature is bad
    note: str = ""  # how far to trust it, for verify's message
    log_key: bytes | None = None  # the log's key as the witness knows it (None before its first)
    empty: bool = False  # the witness is there and has cosigned nothing for this log
    unreachable: bool = False  # the witness did not answer: the log is not checked against it

    def lost_state(self, first_entry: datetime | None, *, now: datetime) -> str | None:
        """Why a witness that has cosigned nothing cannot be right about a log whose first entry
        was written at `first_entry` (the audit service asks it to cosign every checkpoint, within
        seconds), or None."""
        if not self.empty or first_entry is None or now - first_entry <= WITNESS_GRACE:
            return None
        return (
            f"the log's witness has cosigned nothing, but the log's first entry was written at "
            f"{first_entry:%Y-%m-%d %H:%M} UTC: the witness's state was lost or replaced, and a cut "
            "tail would not be seen (restore the witness's database, or verify with "
            "--trusted-checkpoint against a checkpoint kept elsewhere)"
        )

    def other_key(self, key: bytes) -> str | None:
        """Why `key` (the key file beside the log) cannot be the log's, when its witness knows
        another, or None."""
        if self.log_key is None or self.log_key == key:
            return None
        return (
            "the key file beside the log is not the log's key as its witness knows it (swapped, or "
            "changed without `contactpoint audit rotate-key`): pin CONTACTPOINT_AUDIT_PUBLIC_KEY"
        )


def _checked(
    settings: AuditSettings, text: str, cosignature: Cosignature, key: bytes | None, note: str
) -> WitnessView:
    if key is None or not cosignature.valid_for(text, settings.witness_name, key):
        return WitnessView(problem="the witness's cosignature of its newest checkpoint does not verify")
    try:
        return WitnessView(Checkpoint.parse_exact(text), note=note)
    except ValueError as exc:
        return WitnessView(problem=f"the witness's newest checkpoint is malformed: {exc}")


def _from_database(env: Mapping[str, str], settings: AuditSettings) -> WitnessView | None:
    """From the witness's database, when it is configured here and exists; None otherwise."""
    from services.witness.admin import newest_checkpoint
    from services.witness.settings import WitnessSettings

    url = env.get(WITNESS_DATABASE)
    if not url:
        return None
    witness = load_settings(WitnessSettings, env)
    if is_sqlite(url) and not witness.signing_key_file.exists():
        return None  # no witness has run here
    if _missing_or_empty(url):
        # Its key is here but its database is gone or emptied: it holds nothing it cosigned, as an
        # emptied one does (found by probing: read as unreadable, and a file left behind).
        return WitnessView(note=NOTHING_YET, empty=True)
    try:
        found = newest_checkpoint(witness)
    except (SQLAlchemyError, Unavailable) as exc:
        return WitnessView(problem=f"the witness's database cannot be read ({type(exc).__name__})")
    if found is None:
        return WitnessView(note=NOTHING_YET, empty=True)
    last, cosignature = found
    pinned = settings.pinned_witness_key()
    key = pinned if pinned is not None else cosignature_key(witness.signing_key_file)
    note = "" if pinned is not None else UNPINNED_NOTE
    return replace(_checked(settings, last.checkpoint, cosignature, key, note), log_key=last.public_key)


def _missing_or_empty(url: str) -> bool:
    """Whether `url` is a SQLite file that does not exist or holds nothing (opening it would only
    make an empty one)."""
    if not is_sqlite(url):
        return False
    name = make_url(url).database
    if not name or name == ":memory:":
        return False
    path = Path(name)
    return not path.exists() or path.stat().st_size == 0


def cosignature_key(path: Path) -> bytes | None:
    """The public key of the witness's key file, when it exists."""
    return raw_public_key(load_or_create_signing_key(path)) if path.exists() else None


def _from_service(settings: AuditSettings) -> WitnessView:
    try:
        credentials = load_tls(settings).channel_credentials()
        channel = (
            grpc.secure_channel(
                settings.witness_target, credentials, options=tls_name_options(settings.witness_target)
            )
            if credentials is not None
            else grpc.insecure_channel(settings.witness_target)
        )
        with channel:
            resp = pb_grpc.WitnessServiceStub(channel).GetCheckpoint(
                pb.GetCheckpointRequest(origin=settings.origin), timeout=PEER_TIMEOUT_SECONDS
            )
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return WitnessView(note=NOTHING_YET, empty=True)
        return WitnessView(problem=f"cannot reach the witness at {settings.witness_target}", unreachable=True)
    pinned = settings.pinned_witness_key()
    if pinned is None:
        return WitnessView(problem=NO_PIN)
    c = resp.cosignature
    cosignature = Cosignature(c.witness, bytes(c.key_id), int(c.timestamp), bytes(c.signature))
    return replace(
        _checked(settings, resp.checkpoint, cosignature, pinned, ""),
        log_key=bytes(resp.log_public_key) or None,
    )


def witness_view(env: Mapping[str, str], settings: AuditSettings) -> WitnessView:
    """What the log's witness cosigned, from its database or over gRPC."""
    local = _from_database(env, settings)
    if local is not None:
        return local
    if settings.witness_target:
        return _from_service(settings)
    return WitnessView(note=" (no witness configured: a cut tail would not be seen)")
