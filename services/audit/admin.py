"""The audit service's own administration, for the `contactpoint audit` commands: they call these
and never reach into its tables. They work on the service's database with its signing key, as a
second audit process would, and append to the log exactly as the service does."""

from __future__ import annotations

from sqlalchemy import Connection

from contactpoint.platform import migrate
from contactpoint.platform.checkpoints import Checkpoint
from contactpoint.platform.db import Database
from contactpoint.platform.errors import FailedPrecondition
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from services.audit import report
from services.audit.domain import Signer
from services.audit.events import Reader
from services.audit.log_key_check import writable_with
from services.audit.main import MIGRATIONS
from services.audit.settings import AuditSettings
from services.audit.witness_check import refuse_a_fork


def _signer(settings: AuditSettings) -> tuple[Signer, bytes]:
    """The service's own signer, and its public key. The key must already exist: a new one would
    sign the report's tree head with a key the log's earlier heads were not signed with."""
    path = settings.signing_key_file
    if not path.exists():
        raise FailedPrecondition(f"there is no audit signing key at {path}", "NO_SIGNING_KEY")
    try:
        key = load_or_create_signing_key(path)
        return Signer(key, settings.origin), raw_public_key(key)
    except ValueError:
        raise FailedPrecondition(f"{path} does not hold an Ed25519 key", "NO_SIGNING_KEY") from None


def subject_access_report(
    settings: AuditSettings,
    *,
    contactpoint_id: str,
    reader: Reader,
    asked_by: str | None = None,
    witnessed: Checkpoint | None = None,
) -> list[report.Access]:
    """`audit report`: every recorded access to the child, oldest first. Running it is itself
    recorded in the log (action AuditReport, by `reader`) in the same transaction, before it is
    returned; if that cannot be written, nothing is returned. Refused on a log that contradicts
    `witnessed`, its witness's newest checkpoint (`witness_check.refuse_a_fork`)."""
    signer, public_key = _signer(settings)
    migrate.upgrade("audit", MIGRATIONS, settings.database_url)
    db = Database(settings.database_url)

    def reported(conn: Connection) -> list[report.Access]:
        writable_with(conn, public_key, settings.signing_key_file, settings.origin)
        refuse_a_fork(conn, witnessed)
        return report.subject_access_report(
            conn, contactpoint_id=contactpoint_id, reader=reader, signer=signer, asked_by=asked_by
        )

    try:
        return db.run_sync(reported)
    finally:
        db.dispose()
