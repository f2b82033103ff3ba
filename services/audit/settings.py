"""The audit service's settings (`CONTACTPOINT_AUDIT_…`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from contactpoint.platform.settings import DatabaseSettings, VerifyingSettings


class AuditSettings(VerifyingSettings, DatabaseSettings):
    """The audit service's settings."""

    model_config = SettingsConfigDict(env_prefix="CONTACTPOINT_AUDIT_", frozen=True, extra="ignore")

    signing_key_file: Path = Field(description="Ed25519 PEM that signs tree heads; created when missing")
    origin: str = Field(default="contactpoint.audit.v1", description="the checkpoint's origin line")
