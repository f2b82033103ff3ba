"""Identity's settings (`CONTACTPOINT_IDENTITY_…`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from contactpoint.platform.settings import DatabaseSettings, ServiceSettings


class IdentitySettings(ServiceSettings, DatabaseSettings):
    """Identity's settings."""

    model_config = SettingsConfigDict(env_prefix="CONTACTPOINT_IDENTITY_", frozen=True, extra="ignore")

    signing_key_file: Path = Field(description="Ed25519 PEM that signs tokens; created when missing")
    token_ttl_seconds: int = Field(default=900, ge=30, le=86_400, description="access token lifetime")
    max_failed_logins: int = Field(default=5, ge=1, description="consecutive failures that lock an account")
    lockout_seconds: int = Field(default=900, ge=1, description="how long a locked account stays locked")
    totp_issuer: str = Field(default="ContactPoint", description="issuer shown in authenticator apps")
