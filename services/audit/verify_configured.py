"""`audit verify` as the audit service is configured: the log named by its settings, with its own
key (pinned, or the key file beside it) and origin, against a checkpoint an auditor kept and what
its witness cosigned (`verify` holds the checks themselves)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from contactpoint.platform.checkpoints import Checkpoint
from contactpoint.platform.db import make_engine
from contactpoint.platform.keys import load_or_create_signing_key, raw_public_key
from services.audit import repository
from services.audit.keychain import BrokenChain, key_chain
from services.audit.settings import AuditSettings
from services.audit.verify import VerifyReport, missing_file, verify_log
from services.audit.witness_view import WitnessView


def _first_entry_time(database_url: str) -> datetime | None:
    """When the log's first entry was written (None for an empty log or an unreadable one: the
    walk says why)."""
    if missing_file(database_url) is not None:
        return None  # opening it would make an empty one
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return repository.first_leaf_time(conn)
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def _rotated_to(settings: AuditSettings, witness: WitnessView | None, key: bytes) -> bool:
    """Whether the log records rotations from the key its witness knows to `key` (the key file):
    a rotation made with `audit rotate-key` that the witness has not cosigned yet (found by
    probing: an idle log read as tampered with after a routine rotation). The walk then checks
    each head with the key of its time, the old key's heads included."""
    if witness is None or witness.log_key is None or missing_file(settings.database_url) is not None:
        return False
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            chain = key_chain(conn, key, settings.origin)
    except (BrokenChain, SQLAlchemyError):
        return False
    finally:
        engine.dispose()
    return witness.log_key in chain.keys[:-1]


def verify_from_settings(
    settings: AuditSettings, trusted: Checkpoint | None = None, witness: WitnessView | None = None
) -> VerifyReport:
    """Verify the log named by the audit service's settings, with its own key and origin, against
    `trusted` (a checkpoint an auditor kept) and what its witness cosigned, when given."""
    if witness is not None and witness.problem is not None:
        # The log is checked on its own first: what it shows by itself is NOT intact whatever the
        # witness (found by review: a rewritten log with its witness stopped was only "not
        # checked"). Otherwise a witness that did not answer leaves it not checked (exit 2: an
        # intact log whose witness was down was reported as tampered with), never "intact".
        alone = verify_from_settings(settings, trusted)
        if not alone.ok and not alone.unreadable:
            return alone
        if witness.unreachable:
            return VerifyReport(
                False,
                alone.tree_size,
                alone.heads_checked,
                f"{witness.problem}; by itself the log shows nothing wrong ({alone.message})",
                unreadable=True,
                entries_checked=alone.entries_checked,
            )
        return VerifyReport(False, 0, 0, witness.problem)
    if witness is not None and trusted is None:
        lost = witness.lost_state(_first_entry_time(settings.database_url), now=datetime.now(UTC))
        if lost is not None:
            return VerifyReport(False, 0, 0, lost)
    witnessed = witness.checkpoint if witness is not None else None
    witness_note = witness.note if witness is not None else ""
    pinned = settings.pinned_key()
    if pinned is not None:
        # The pinned key, never the key file beside the database (which whoever holds the
        # database may have swapped for their own).
        report = verify_log(
            settings.database_url, pinned, origin=settings.origin, trusted=trusted, witnessed=witnessed
        )
        return replace(report, message=report.message + witness_note) if report.ok else report
    if not settings.signing_key_file.exists():
        # Without its key the entries and roots are still checked: what they show is NOT intact;
        # else the signatures are not checked, which is not "intact" (exit 2).
        unsigned = verify_log(
            settings.database_url, origin=settings.origin, trusted=trusted, witnessed=witnessed
        )
        if not unsigned.ok and not unsigned.unreadable:
            return unsigned
        problem = f"no signing key at {settings.signing_key_file}: signatures not checked"
        return VerifyReport(
            False,
            unsigned.tree_size,
            unsigned.heads_checked,
            problem,
            unreadable=True,
            entries_checked=unsigned.entries_checked,
        )
    try:
        public_key = raw_public_key(load_or_create_signing_key(settings.signing_key_file))
    except ValueError:
        return VerifyReport(False, 0, 0, f"{settings.signing_key_file} does not hold an Ed25519 key")
    swapped = witness.other_key(public_key) if witness is not None else None
    if swapped is not None and not _rotated_to(settings, witness, public_key):
        return VerifyReport(False, 0, 0, swapped)
    report = verify_log(
        settings.database_url, public_key, origin=settings.origin, trusted=trusted, witnessed=witnessed
    )
    if not report.ok:
        return report
    # Whoever holds the database may hold the key file beside it too: say what was trusted.
    note = " (signatures checked with the key file beside the log: pin CONTACTPOINT_AUDIT_PUBLIC_KEY)"
    return replace(report, message=report.message + witness_note + note)
