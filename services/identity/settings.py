"""Identity's settings (`CONTACTPOINT_IDENTITY_…`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from contactpoint.platform.settings import DatabaseSettings, OptionalPath, ServiceSettings


class IdentitySettings(ServiceSettings, DatabaseSettings):
    """Identity's settings."""

    model_config = SettingsConfigDict(env_prefix="CONTACTPOINT_IDENTITY_", frozen=True, extra="ignore")

    signing_key_file: Path = Field(description="Ed25519 PEM that signs tokens; created when missing")
    token_ttl_seconds: int = Field(default=900, ge=1, le=86_400, description="access token lifetime")
    max_failed_logins: int = Field(default=5, ge=1, description="consecutive failures that lock an account")
    lockout_seconds: int = Field(default=900, ge=1, description="how long a locked account stays locked")
    totp_issuer: str = Field(default="ContactPoint", description="issuer shown in authenticator apps")
    totp_key_file: OptionalPath = Field(
        default=None,
        description="AES key that seals TOTP secrets at rest (created, 0600, when missing); "
        "default: identity-totp.key beside the signing key",
    )
    password_workers: int = Field(
        default=1, ge=1, le=32, description="password checks at once (each holds 64 MiB and a core)"
    )
    password_queue: int = Field(
        default=32, ge=0, le=1000, description="password checks waiting; more are refused"
    )
    logins_per_username_per_minute: int = Field(
        default=30, ge=1, description="login attempts a minute for one username (one at a time)"
    )
    audit_target: str = Field(
        default="", description="host:port of the audit service (administrators' calls are audited)"
    )
    client_id: str = Field(default="", description="identity's own machine account (role identity-service)")
    client_secret: SecretStr = Field(default=SecretStr(""), description="its client secret")

    @property
    def totp_key_path(self) -> Path:
        """Where the TOTP data key lives."""
        return self.totp_key_file or self.signing_key_file.with_name("identity-totp.key")
