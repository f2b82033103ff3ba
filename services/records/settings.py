"""The records service's settings (`CONTACTPOINT_RECORDS_…`)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from contactpoint.platform.settings import DatabaseSettings, VerifyingSettings


class RecordsSettings(VerifyingSettings, DatabaseSettings):
    """The records service's settings: its database, and identity for verifying tokens."""

    model_config = SettingsConfigDict(env_prefix="CONTACTPOINT_RECORDS_", frozen=True, extra="ignore")
