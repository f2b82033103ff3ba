"""The embedded default of `--data-dir`: SQLite files, key files and local ports for all four
services (and the audit log's witness, on a local socket of its own rather than a fifth port),
laid *under* the environment (an explicit variable always wins); and what each service's
process is given of that environment."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from pathlib import Path

SERVICES = ("gateway", "identity", "records", "audit", "witness")
DEFAULT_BASE_PORT = 50050
DEFAULT_DATA_DIR = Path("var")
# Port offsets from the base port (CONTRACT.md §1).
PORT_OFFSET = {"gateway": 0, "identity": 1, "records": 2, "audit": 3}
# Each service's Prometheus metrics, on 127.0.0.1: the five ports after the witness's.
METRICS_OFFSET = {"gateway": 5, "identity": 6, "records": 7, "audit": 8, "witness": 9}
# The ports above the base port the contract names (so a base port must leave room for them). The
# witness's and the metrics' ports after them are `up`'s own: a base port too near 65535 to leave
# room for them puts the witness just below the base port and leaves those metrics off (found by
# probing: base ports above 65526 were refused, though the contract's four ports fitted).
PORTS_USED = max(PORT_OFFSET.values())
HIGHEST_PORT = 65535


def ports(base_port: int) -> dict[str, int]:
    """Each service's port for `base_port`."""
    return {svc: base_port + off for svc, off in PORT_OFFSET.items()}


def witness_port_address(base_port: int) -> str:
    """The witness on a port: the one after audit's, on 127.0.0.1 as the four services are."""
    port = base_port + len(PORT_OFFSET)
    return f"127.0.0.1:{port if port <= HIGHEST_PORT else base_port - 1}"


def witness_address(data_dir: Path, base_port: int) -> str:
    """The embedded witness's address: on Linux an abstract socket named for the data dir (no
    port to collide with, no path length limit; one witness per data dir), elsewhere the port
    after audit's."""
    if not sys.platform.startswith("linux"):
        return witness_port_address(base_port)
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:24]
    return f"unix-abstract:contactpoint-witness-{digest}"


def embedded_defaults(data_dir: Path, base_port: int = DEFAULT_BASE_PORT) -> dict[str, str]:
    """Every variable the embedded suite needs, for `data_dir` and `base_port`."""
    d = data_dir.resolve()
    p = ports(base_port)
    addr = {svc: f"127.0.0.1:{port}" for svc, port in p.items()}
    addr["witness"] = witness_address(d, base_port)
    env = {f"CONTACTPOINT_{svc.upper()}_LISTEN": addr[svc] for svc in SERVICES}
    for svc, offset in METRICS_OFFSET.items():
        port = base_port + offset
        env[f"CONTACTPOINT_{svc.upper()}_METRICS_LISTEN"] = (
            f"127.0.0.1:{port}" if port <= HIGHEST_PORT else ""
        )
    # The gateway's database holds each person's allowance, shared by gateway replicas.
    for svc in ("identity", "records", "audit", "gateway", "witness"):
        env[f"CONTACTPOINT_{svc.upper()}_DATABASE_URL"] = f"sqlite:///{d / (svc + '.db')}"
    env["CONTACTPOINT_IDENTITY_SIGNING_KEY_FILE"] = str(d / "keys" / "identity-signing.pem")
    env["CONTACTPOINT_AUDIT_SIGNING_KEY_FILE"] = str(d / "keys" / "audit-signing.pem")
    env["CONTACTPOINT_WITNESS_SIGNING_KEY_FILE"] = str(d / "keys" / "witness-signing.pem")
    env["CONTACTPOINT_RECORDS_DATA_KEY_FILE"] = str(d / "keys" / "records-data.keys")
    env["CONTACTPOINT_AUDIT_WITNESS_TARGET"] = addr["witness"]
    for svc in ("records", "audit", "gateway"):
        env[f"CONTACTPOINT_{svc.upper()}_IDENTITY_TARGET"] = addr["identity"]
    env["CONTACTPOINT_GATEWAY_RECORDS_TARGET"] = addr["records"]
    env["CONTACTPOINT_GATEWAY_AUDIT_TARGET"] = addr["audit"]
    env["CONTACTPOINT_RECORDS_AUDIT_TARGET"] = addr["audit"]
    env["CONTACTPOINT_IDENTITY_AUDIT_TARGET"] = addr["audit"]
    return env


TLS_FILES = ("CERT_FILE", "KEY_FILE", "CLIENT_CA_FILE", "CA_FILE")
# Defaults that only `up`'s embedded suite has (its witness, reached or read from its database),
# never one run by `serve`.
EMBEDDED_ONLY = ("CONTACTPOINT_AUDIT_WITNESS_TARGET", "CONTACTPOINT_WITNESS_DATABASE_URL")


def layered_env(
    environ: Mapping[str, str], data_dir: Path | None, base_port: int = DEFAULT_BASE_PORT
) -> dict[str, str]:
    """`environ` with the embedded defaults for `data_dir` beneath it, and the embedded witness
    following audit's TLS (`witness_follows_audit`)."""
    env = {**embedded_defaults(data_dir or DEFAULT_DATA_DIR, base_port), **environ}
    witness_follows_audit(env, environ, base_port)
    return env


def witness_follows_audit(env: dict[str, str], environ: Mapping[str, str], base_port: int) -> None:
    """The witness is `up`'s own companion of the audit service, which the contract does not name:
    configured with TLS for the four services only (CONTRACT §1), `up` refused to start because
    audit would call its witness over TLS and the witness served plaintext (found by review).
    So a witness given no TLS settings of its own takes audit's certificate, key and CAs, and
    listens, as the four services do, on 127.0.0.1 (the port after audit's), so that it answers
    to the same name as they do rather than "localhost" on a local socket."""
    audit = {name: env[key] for name in TLS_FILES if (key := f"CONTACTPOINT_AUDIT_TLS_{name}") in env}
    if not audit or any(key.startswith("CONTACTPOINT_WITNESS_TLS_") for key in environ):
        return
    for name, value in audit.items():
        env[f"CONTACTPOINT_WITNESS_TLS_{name}"] = value
    address = witness_port_address(base_port)
    if "CONTACTPOINT_WITNESS_LISTEN" not in environ:
        env["CONTACTPOINT_WITNESS_LISTEN"] = address
        if "CONTACTPOINT_AUDIT_WITNESS_TARGET" not in environ:
            env["CONTACTPOINT_AUDIT_WITNESS_TARGET"] = address


ENV_PREFIX = "CONTACTPOINT_"


def service_env(env: Mapping[str, str], service: str) -> dict[str, str]:
    """What `service`'s own process is given of `env`: its own `CONTACTPOINT_<SERVICE>_…` variables
    and everything that is not ContactPoint's (PATH, HOME, LANG, PYTHON…), but never another
    service's (each service reads only its own prefix, so the gateway's client secret stays in the
    gateway)."""
    own = f"{ENV_PREFIX}{service.upper()}_"
    return {k: v for k, v in env.items() if k.startswith(own) or not k.startswith(ENV_PREFIX)}


class NoEmbeddedDatabase(Exception):
    """A command would open the embedded default where there is no suite's data: it would only
    create an empty registry there. The message is one line naming the path."""


def require_embedded_database(environ: Mapping[str, str], data_dir: Path | None, service: str) -> None:
    """Refuse (`NoEmbeddedDatabase`) to run a command on `service`'s embedded SQLite default where
    nothing is: with the implicit `./var`, that folder and the service's database must exist; an
    explicit `--data-dir` must be an existing folder (a database may be started there, e.g.
    accounts made before the first `contactpoint up`). An explicit
    `CONTACTPOINT_<SERVICE>_DATABASE_URL` is always used as it is."""
    if f"{ENV_PREFIX}{service.upper()}_DATABASE_URL" in environ:
        return
    if data_dir is not None:
        if not data_dir.is_dir():
            raise NoEmbeddedDatabase(
                f"no data dir at {data_dir.resolve()}: pass the --data-dir that `contactpoint up` uses"
            )
        return
    folder = DEFAULT_DATA_DIR.resolve()
    database = folder / f"{service}.db"
    if not folder.is_dir():
        raise NoEmbeddedDatabase(
            f"no data dir at {folder} (the default ./var): run this in the folder where "
            "`contactpoint up` runs, or pass --data-dir DIR"
        )
    if not database.is_file():
        raise NoEmbeddedDatabase(
            f"no {service} database at {database}: run this in the folder where "
            "`contactpoint up` runs, or pass --data-dir DIR"
        )


def command_env(
    environ: Mapping[str, str], data_dir: Path | None, service: str, *, existing: bool = False
) -> dict[str, str]:
    """The environment of an admin/audit/records command on `service`'s database: `environ` over
    the embedded defaults, after `require_embedded_database`. With `existing` (a command that only
    reads or tends the registry's data: the lifecycle, a subject-access report, verifying the log)
    an SQLite database must already be there, wherever it was named: one mistyped would be
    created empty, and the command would report nothing to archive, no access, an intact log."""
    require_embedded_database(environ, data_dir, service)
    env = layered_env(environ, data_dir)
    variable = f"{ENV_PREFIX}{service.upper()}_DATABASE_URL"
    missing = sqlite_file(env[variable]) if existing and variable in env else None
    if missing is not None and not missing.is_file():
        raise NoEmbeddedDatabase(
            f"no {service} database at {missing}: this command runs on the registry's own data "
            f"(check --data-dir or {variable})"
        )
    if data_dir is None and f"{ENV_PREFIX}{service.upper()}_DATABASE_URL" in environ:
        # A database named by the environment is a suite run by `serve`, not the embedded one:
        # no witness unless the environment names one, as `serve` has none (found by review:
        # `audit verify` of a served log called ./var's witness, and said an intact log was not).
        for key in EMBEDDED_ONLY:
            if key not in environ:
                env.pop(key, None)
    return env


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL names (None for another database, or SQLite in memory)."""
    from sqlalchemy import make_url  # not at import: the command line starts fast

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if "uri" in parsed.query:  # sqlite:///file:PATH?mode=...&uri=true (found by re-probing)
        if parsed.query.get("mode") == "memory" or not database.startswith("file:"):
            return None
        database = database.removeprefix("file:").removeprefix("//localhost").removeprefix("//")
    return Path(database).absolute()
