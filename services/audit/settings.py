"""The audit service's settings (`CONTACTPOINT_AUDIT_…`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from contactpoint.platform.settings import DatabaseSettings, PublicKeyText, VerifyingSettings, raw_key


class AuditSettings(VerifyingSettings, DatabaseSettings):
    """The audit service's settings."""

    model_config = SettingsConfigDict(env_prefix="CONTACTPOINT_AUDIT_", frozen=True, extra="ignore")

    signing_key_file: Path = Field(description="Ed25519 PEM that signs tree heads; created when missing")
    origin: str = Field(default="contactpoint.audit.v1", description="the checkpoint's origin line")
    public_key: PublicKeyText = Field(
        default=None,
        description="the log's Ed25519 public key, base64 of its 32 raw bytes, pinned: audit refuses "
        "to start with another signing key, and `audit verify` checks against it, not the key file",
    )
    witness_target: str = Field(
        default="",
        description="host:port of the log's witness (`contactpoint serve witness`), which cosigns each "
        "new checkpoint; empty: no witness (`audit verify` then cannot see a cut tail); `up` runs one",
    )
    witness_interval_seconds: float = Field(
        default=0.25,
        ge=0,
        le=60,
        description="at most one checkpoint sent to the witness per this many seconds (how far the "
        "witnessed checkpoint may trail the log under load)",
    )
    witness_name: str = Field(default="contactpoint.witness.v1", description="the witness's name")
    witness_public_key: PublicKeyText = Field(
        default=None,
        description="the witness's Ed25519 public key, base64 of its 32 raw bytes, pinned: audit "
        "refuses to start beside a witness whose cosignature it does not verify, and `audit verify` "
        "checks the witness's cosignature against it",
    )
    append_batch_max: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description="most appends gathered into one transaction under one signed head (group commit); "
        "1 writes each alone",
    )

    def pinned_key(self) -> bytes | None:
        """The pinned public key's raw bytes, when one is configured."""
        return raw_key(self.public_key)

    def pinned_witness_key(self) -> bytes | None:
        """The witness's pinned public key's raw bytes, when one is configured."""
        return raw_key(self.witness_public_key)

    @field_validator("origin")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # The origin is the checkpoint's first line: a newline in it would forge the format.
        if not value or "\n" in value or "\x00" in value:
            raise ValueError("must be one non-empty line")
        return value
