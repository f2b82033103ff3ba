"""Records' settings (`CONTACTPOINT_RECORDS_…`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from contactpoint.platform.settings import DatabaseSettings, VerifyingSettings


class RecordsSettings(VerifyingSettings, DatabaseSettings):
    """Records' settings: its database, identity for verifying tokens, and the age limits."""

    model_config = SettingsConfigDict(env_prefix="CONTACTPOINT_RECORDS_", frozen=True, extra="ignore")

    max_age_years: int = Field(default=18, ge=1, le=30, description="a child is under this age")
    extended_max_age_years: int = Field(
        default=25, ge=1, le=30, description="a young person with an extended record is under this age"
    )
