"""The audit service's settings (`CONTACTPOINT_AUDIT_…`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from contactpoint.platform.convert import exact_base64
from contactpoint.platform.settings import DatabaseSettings, VerifyingSettings


class AuditSettings(VerifyingSettings, DatabaseSettings):
    """The audit service's settings."""

    model_config = SettingsConfigDict(env_prefix="CONTACTPOINT_AUDIT_", frozen=True, extra="ignore")

    signing_key_file: Path = Field(description="Ed25519 PEM that signs tree heads; created when missing")
    origin: str = Field(default="contactpoint.audit.v1", description="the checkpoint's origin line")
    public_key: str | None = Field(
        default=None,
        description="the log's Ed25519 public key, base64 of its 32 raw bytes, pinned: audit refuses "
        "to start with another signing key, and `audit verify` checks against it, not the key file",
    )
    append_batch_max: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description="most appends gathered into one transaction under one signed head (group commit); "
        "1 writes each alone",
    )

    @field_validator("public_key")
    @classmethod
    def _raw_ed25519(cls, value: str | None) -> str | None:
        if value is not None and exact_base64(value, 32) is None:
            raise ValueError("must be base64 of a 32-byte Ed25519 public key")
        return value

    def pinned_key(self) -> bytes | None:
        """The pinned public key's raw bytes, when one is configured."""
        return exact_base64(self.public_key, 32) if self.public_key is not None else None

    @field_validator("origin")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # The origin is the checkpoint's first line: a newline in it would forge the format.
        if not value or "\n" in value or "\x00" in value:
            raise ValueError("must be one non-empty line")
        return value
