"""The gateway's settings (`CONTACTPOINT_GATEWAY_…`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from contactpoint.platform.settings import DatabaseSettings, VerifyingSettings


class GatewaySettings(VerifyingSettings, DatabaseSettings):
    """The gateway's settings."""

    model_config = SettingsConfigDict(env_prefix="CONTACTPOINT_GATEWAY_", frozen=True, extra="ignore")

    records_target: str = Field(description="host:port of the records service")
    audit_target: str = Field(description="host:port of the audit service")
    rate_per_minute: int = Field(default=30, ge=1, le=100_000, description="reads a minute per person")
    daily_record_limit: int = Field(
        default=200, ge=1, le=1_000_000, description="distinct children a day per person; over it, suspended"
    )
    # Below identity's own capacity (about five password checks a second on one worker), so that
    # one address cannot keep identity's password pool full for everyone else (600 was tried, and
    # taken back after review).
    logins_per_peer_per_minute: int = Field(
        default=120, ge=1, description="logins a minute from one network address (per gateway process)"
    )
    housekeeping_seconds: float = Field(
        default=3600.0, gt=0, description="how often past days' allowance rows are dropped"
    )
    records_read_streams: int = Field(
        default=2,
        ge=0,
        le=64,
        description="long-lived streams children are read from records over (0: a call a read; calls "
        "are made anyway while tracing is on, for a span a read)",
    )
    audit_gather_ms: float = Field(
        default=5.0,
        ge=0,
        le=50,
        description="how long a call to the audit log may wait for the events of requests still under "
        "way (0: never); each caller is still answered only once its own event is stored",
    )
