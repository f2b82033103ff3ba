"""Typed settings, read from the environment only (CONTRACT.md §1).

Each service declares one subclass with its own prefix (`CONTACTPOINT_RECORDS_…`); `main()` builds
it once and passes it down. Nothing else in the code base reads `os.environ`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from contactpoint.platform.convert import exact_base64

ENV_PREFIX = "CONTACTPOINT_"


class ConfigurationError(Exception):
    """A service cannot start as configured; the message names the variables to set."""


def _raw_ed25519_key(value: str | None) -> str | None:
    if value == "":  # an empty variable (as compose passes an unset one) is no key
        return None
    if value is not None and exact_base64(value, 32) is None:
        raise ValueError("must be base64 of a 32-byte Ed25519 public key")
    return value


# A pinned Ed25519 public key in configuration: base64 of its 32 raw bytes (or unset).
PublicKeyText = Annotated[str | None, AfterValidator(_raw_ed25519_key)]


def raw_key(value: str | None) -> bytes | None:
    """The raw bytes of a `PublicKeyText` setting, when it is set."""
    return exact_base64(value, 32) if value is not None else None


def _unset_if_empty(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


# A file that may be left unset; an empty variable (compose's `${VAR:-}`) is unset too (found by
# probing: it was the current folder, "cannot read .: Is a directory").
OptionalPath = Annotated[Path | None, BeforeValidator(_unset_if_empty)]


class ServiceSettings(BaseSettings):
    """What every service needs: its address, logging and shutdown."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    listen: str = Field(default="127.0.0.1:0", description="host:port to serve gRPC on")
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_grace_seconds: float = Field(
        default=10.0, gt=0, description="on SIGTERM, how long in-flight RPCs may take to finish"
    )
    tls_cert_file: OptionalPath = Field(
        default=None,
        description="PEM certificate (chain) to serve TLS with (with TLS_KEY_FILE); unset: plaintext",
    )
    tls_key_file: OptionalPath = Field(default=None, description="PEM private key of TLS_CERT_FILE")
    tls_client_ca_file: OptionalPath = Field(
        default=None, description="PEM CA that every client's certificate must be signed by (mutual TLS)"
    )
    tls_ca_file: OptionalPath = Field(
        default=None,
        description="PEM CA trusted when calling peers over TLS (the service then presents its own "
        "certificate)",
    )
    metrics_listen: str = Field(
        default="",
        description="host:port to serve Prometheus metrics on (HTTPS with the TLS certificate when "
        "TLS is on); empty: off",
    )
    otlp_endpoint: str = Field(
        default="",
        description="OpenTelemetry collector (OTLP/gRPC, e.g. http://collector:4317) to export traces "
        "to; empty: no tracing",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="the event loop: uvloop (libuv; +6 to +35% audited GetChild throughput, "
        "docs/benchmarks.md) or Python's own asyncio",
    )


class DatabaseSettings(BaseSettings):
    """A service that owns a database."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    database_url: str = Field(
        description="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://user@host/db"
    )
    migrate_on_start: bool = Field(default=True, description="run this service's Alembic migrations at start")


class VerifyingSettings(ServiceSettings):
    """A service that verifies tokens issued by identity: identity tells only the platform's own
    machine accounts which tokens are revoked, so the service has one."""

    identity_target: str = Field(description="host:port of the identity service")
    client_id: str = Field(
        default="", description="this service's own machine account (required to serve; see README)"
    )
    client_secret: SecretStr = Field(default=SecretStr(""), description="its client secret")

    def machine_credentials(self) -> tuple[str, str]:
        """The service's machine account; ConfigurationError when it is not configured (a service
        cannot verify tokens without one: identity tells only the platform's own accounts which
        tokens are revoked)."""
        if not self.client_id or not self.client_secret.get_secret_value():
            raise ConfigurationError(
                f"{prefix_of(type(self))}CLIENT_ID and {prefix_of(type(self))}CLIENT_SECRET are required: "
                "the service's own machine account, which identity answers revocations to"
            )
        return self.client_id, self.client_secret.get_secret_value()

    revocation_poll_seconds: float = Field(
        default=0.5, gt=0, description="how often to fetch identity's keys and revocations"
    )
    revocation_max_staleness_seconds: float = Field(
        default=2.0, gt=0, description="refuse tokens (UNAVAILABLE) when revocations are older than this"
    )


S = TypeVar("S", bound=BaseSettings)


def prefix_of(cls: type[BaseSettings]) -> str:
    """The environment prefix of a settings class, e.g. `CONTACTPOINT_RECORDS_`."""
    return str(cls.model_config.get("env_prefix", ""))


def load_settings(cls: type[S], env: Mapping[str, str]) -> S:
    """Build `cls` from `env` (normally `os.environ`, possibly with CLI defaults laid under it)."""
    prefix = prefix_of(cls)
    values = {k[len(prefix) :].lower(): v for k, v in env.items() if k.startswith(prefix)}
    known = {name for name in cls.model_fields}
    return cls.model_validate({k: v for k, v in values.items() if k in known})


def variable_names(cls: type[BaseSettings]) -> set[str]:
    """Every environment variable `cls` reads."""
    prefix = prefix_of(cls)
    return {prefix + name.upper() for name in cls.model_fields}
