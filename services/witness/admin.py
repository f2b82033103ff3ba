"""The witness's own administration, for `contactpoint audit verify`: the newest checkpoint it
cosigned, read from its database as a second witness process would (so that the log can be
checked against it while the suite is down)."""

from __future__ import annotations

from contactpoint.platform.checkpoints import Cosignature
from contactpoint.platform.db import Database
from services.witness import domain
from services.witness.main import witness_of
from services.witness.repository import Witnessed
from services.witness.settings import WitnessSettings


def newest_checkpoint(settings: WitnessSettings) -> tuple[Witnessed, Cosignature] | None:
    """The newest checkpoint the witness cosigned, with its cosignature; None before the first,
    and None where the witness's key is not (no witness has run here; one is never made here)."""
    if not settings.signing_key_file.exists():
        return None
    db = Database(settings.database_url)
    try:
        return db.run_sync(
            lambda conn: domain.newest_or_none(conn, witness=witness_of(settings)), write=False
        )
    finally:
        db.dispose()
