"""The gateway's settings (`CONTACTPOINT_GATEWAY_…`)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from contactpoint.platform.settings import VerifyingSettings


class GatewaySettings(VerifyingSettings):
    """The gateway's settings."""

    model_config = SettingsConfigDict(env_prefix="CONTACTPOINT_GATEWAY_", frozen=True, extra="ignore")

    records_target: str = Field(description="host:port of the records service")
    audit_target: str = Field(description="host:port of the audit service")
    client_id: str = Field(description="the gateway's own machine account (role gateway)")
    client_secret: SecretStr = Field(description="its client secret")
