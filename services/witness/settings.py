"""The witness's settings (`CONTACTPOINT_WITNESS_…`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from contactpoint.platform.settings import DatabaseSettings, PublicKeyText, ServiceSettings, raw_key

DEFAULT_NAME = "contactpoint.witness.v1"
DEFAULT_LOG_ORIGIN = "contactpoint.audit.v1"


class WitnessSettings(ServiceSettings, DatabaseSettings):
    """The witness's settings: its own key and database, and the one log it witnesses."""

    model_config = SettingsConfigDict(env_prefix="CONTACTPOINT_WITNESS_", frozen=True, extra="ignore")

    signing_key_file: Path = Field(
        description="the witness's own Ed25519 PEM that cosigns checkpoints; created when missing"
    )
    name: str = Field(default=DEFAULT_NAME, description="the witness's name in its cosignatures")
    log_origin: str = Field(default=DEFAULT_LOG_ORIGIN, description="the origin of the log it witnesses")
    log_public_key: PublicKeyText = Field(
        default=None,
        description="the audit log's Ed25519 public key, base64 of its 32 raw bytes: the key of "
        "the first checkpoint it cosigns (later keys only through logged rotations); `up` sets it",
    )

    @field_validator("name", "log_origin")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if not value or "\n" in value or " " in value or "\x00" in value:
            raise ValueError("must be one non-empty word")
        return value

    def pinned_log_key(self) -> bytes | None:
        """The log's pinned key's raw bytes, when configured."""
        return raw_key(self.log_public_key)
