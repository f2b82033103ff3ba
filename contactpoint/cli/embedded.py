"""The embedded default of `--data-dir`: SQLite files, key files and local ports for all four
services, laid *under* the environment (an explicit variable always wins)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

SERVICES = ("gateway", "identity", "records", "audit")
DEFAULT_BASE_PORT = 50050
DEFAULT_DATA_DIR = Path("var")
# Port offsets from the base port (CONTRACT.md §1).
PORT_OFFSET = {"gateway": 0, "identity": 1, "records": 2, "audit": 3}


def ports(base_port: int) -> dict[str, int]:
    """Each service's port for `base_port`."""
    return {svc: base_port + off for svc, off in PORT_OFFSET.items()}


def embedded_defaults(data_dir: Path, base_port: int = DEFAULT_BASE_PORT) -> dict[str, str]:
    """Every variable the embedded suite needs, for `data_dir` and `base_port`."""
    d = data_dir.resolve()
    p = ports(base_port)
    addr = {svc: f"127.0.0.1:{port}" for svc, port in p.items()}
    env = {f"CONTACTPOINT_{svc.upper()}_LISTEN": addr[svc] for svc in SERVICES}
    for svc in ("identity", "records", "audit"):
        env[f"CONTACTPOINT_{svc.upper()}_DATABASE_URL"] = f"sqlite:///{d / (svc + '.db')}"
    env["CONTACTPOINT_IDENTITY_SIGNING_KEY_FILE"] = str(d / "keys" / "identity-signing.pem")
    env["CONTACTPOINT_AUDIT_SIGNING_KEY_FILE"] = str(d / "keys" / "audit-signing.pem")
    for svc in ("records", "audit", "gateway"):
        env[f"CONTACTPOINT_{svc.upper()}_IDENTITY_TARGET"] = addr["identity"]
    env["CONTACTPOINT_GATEWAY_RECORDS_TARGET"] = addr["records"]
    env["CONTACTPOINT_GATEWAY_AUDIT_TARGET"] = addr["audit"]
    env["CONTACTPOINT_RECORDS_AUDIT_TARGET"] = addr["audit"]
    return env


def layered_env(
    environ: Mapping[str, str], data_dir: Path | None, base_port: int = DEFAULT_BASE_PORT
) -> dict[str, str]:
    """`environ` with the embedded defaults for `data_dir` beneath it."""
    return {**embedded_defaults(data_dir or DEFAULT_DATA_DIR, base_port), **environ}
