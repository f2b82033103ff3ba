"""The deployment files agree with the code: docker-compose.yml configures each service only with
variables its settings class reads, sets every required one and points targets at services that
exist; the Dockerfile runs `contactpoint`; README.md's configuration table and test command are
the ones the code and CI use. No Docker engine is needed: the files are parsed."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from contactpoint.platform.settings import prefix_of, variable_names

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("identity", "records", "audit", "gateway", "witness")
DATABASE_SERVICES = ("identity", "records", "audit", "witness")
LISTEN_PORT = "50051"
REQUIRED_SUBSTITUTION = re.compile(r"\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}")


def _load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


config_table = _load_script("config_table")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


@pytest.fixture(scope="module")
def settings() -> dict[str, type[BaseSettings]]:
    return dict(config_table.settings_classes())


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment, whichever of the two spellings it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_the_four_services_each_serve_their_own_name(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(SERVICES) <= set(services)
    for name in SERVICES:
        command = services[name]["command"]
        command = shlex.split(command) if isinstance(command, str) else command
        assert command == ["serve", name], name


def test_every_variable_is_read_by_that_service(
    compose: dict[str, Any], settings: dict[str, type[BaseSettings]]
) -> None:
    for name in SERVICES:
        cls = settings[name]
        ours = {k for k in environment(compose["services"][name]) if k.startswith("CONTACTPOINT_")}
        foreign = {k for k in ours if not k.startswith(prefix_of(cls))}
        assert not foreign, f"{name} is given another service's variables: {sorted(foreign)}"
        unknown = ours - variable_names(cls)
        assert not unknown, f"{name} does not read {sorted(unknown)}"


def test_every_required_setting_is_set(
    compose: dict[str, Any], settings: dict[str, type[BaseSettings]]
) -> None:
    for name in SERVICES:
        cls = settings[name]
        required = {prefix_of(cls) + f.upper() for f, info in cls.model_fields.items() if info.is_required()}
        missing = required - set(environment(compose["services"][name]))
        assert not missing, f"{name} needs {sorted(missing)}"


def test_each_service_listens_on_all_interfaces_and_is_health_checked(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        service = compose["services"][name]
        assert environment(service)[f"CONTACTPOINT_{name.upper()}_LISTEN"] == f"0.0.0.0:{LISTEN_PORT}"
        # `contactpoint health`: the one service whose LISTEN the container has, over its TLS.
        assert service["healthcheck"]["test"] == ["CMD", "contactpoint", "health"], name


def test_every_hop_is_tls_and_only_the_gateway_takes_clients_without_a_certificate(
    compose: dict[str, Any],
) -> None:
    for name in (*SERVICES, "witness"):
        service = compose["services"][name]
        env = environment(service)
        prefix = f"CONTACTPOINT_{name.upper()}_TLS_"
        assert env[prefix + "CERT_FILE"] == f"/etc/contactpoint/tls/{name}.pem", name
        assert env[prefix + "KEY_FILE"] == f"/etc/contactpoint/tls/{name}.key", name
        assert env[prefix + "CA_FILE"] == "/etc/contactpoint/tls/ca.pem", name
        assert (prefix + "CLIENT_CA_FILE" in env) is (name != "gateway"), name
        assert "tls:/etc/contactpoint/tls:ro" in service["volumes"], name


def test_targets_name_services_in_compose(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in SERVICES:
        for key, value in environment(services[name]).items():
            if key.endswith("_TARGET"):
                host, _, port = value.rpartition(":")
                assert host in SERVICES and host != name, f"{key}={value}"
                assert port == LISTEN_PORT, f"{key}={value}"
                if (name, host) == ("identity", "audit"):
                    # Audit verifies tokens with identity, so audit waits for identity; identity
                    # reaches audit only when an administrator calls, and fails closed until then.
                    assert name in services[host].get("depends_on", {})
                    continue
                assert host in services[name].get("depends_on", {}), f"{name} should wait for {host}"


def test_each_service_has_its_own_database_created_at_init(compose: dict[str, Any]) -> None:
    init = (ROOT / "deploy" / "postgres" / "init-databases.sh").read_text()
    mounted = " ".join(compose["services"]["postgres"]["volumes"])
    assert "deploy/postgres/init-databases.sh:/docker-entrypoint-initdb.d/" in mounted
    assert "pg_isready" in " ".join(compose["services"]["postgres"]["healthcheck"]["test"])
    for name in DATABASE_SERVICES:
        service = compose["services"][name]
        url = environment(service)[f"CONTACTPOINT_{name.upper()}_DATABASE_URL"]
        assert url.startswith(f"postgresql+psycopg://{name}:") and url.endswith(f"@postgres:5432/{name}")
        assert REQUIRED_SUBSTITUTION.search(url), "the password comes from the environment"
        assert re.search(rf"^create_service_database {name} ", init, re.MULTILINE), name
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_secrets_come_from_the_environment_only(compose: dict[str, Any]) -> None:
    gateway = environment(compose["services"]["gateway"])
    for key in ("CONTACTPOINT_GATEWAY_CLIENT_ID", "CONTACTPOINT_GATEWAY_CLIENT_SECRET"):
        assert REQUIRED_SUBSTITUTION.fullmatch(gateway[key]), key
    for key, value in environment(compose["services"]["postgres"]).items():
        if "PASSWORD" in key:
            assert REQUIRED_SUBSTITUTION.fullmatch(value), key


def test_services_scale_and_only_the_gateway_is_published(compose: dict[str, Any]) -> None:
    for name in SERVICES:
        service = compose["services"][name]
        assert "container_name" not in service, name
        assert ("ports" in service) == (name == "gateway"), name
    assert [str(p) for p in compose["services"]["gateway"]["ports"]] == [f"50050:{LISTEN_PORT}"]


def test_signing_keys_live_on_named_volumes(compose: dict[str, Any]) -> None:
    for name in ("identity", "audit"):
        service = compose["services"][name]
        key_file = environment(service)[f"CONTACTPOINT_{name.upper()}_SIGNING_KEY_FILE"]
        mounts = dict(v.split(":", 1) for v in service["volumes"])
        volume = next(vol for vol, target in mounts.items() if key_file.startswith(target.rstrip("/") + "/"))
        assert volume in compose["volumes"], f"{name}'s key volume {volume} is not a named volume"


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_runs_contactpoint_as_a_plain_user_without_secrets() -> None:
    instructions = _dockerfile_instructions()
    entrypoints = [json.loads(arg) for op, arg in instructions if op == "ENTRYPOINT"]
    assert entrypoints == [["contactpoint"]]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and not users[-1].startswith(("root", "0"))
    for op, arg in instructions:
        if op in ("ENV", "ARG"):
            assert not re.search(r"SECRET|PASSWORD|TOKEN|CONTACTPOINT_", arg, re.IGNORECASE), arg


def test_readme_configuration_table_is_generated() -> None:
    in_readme = config_table.readme_table((ROOT / "README.md").read_text())
    assert in_readme is not None, "README.md lost its configuration table markers"
    assert in_readme == config_table.table(), "run `python scripts/config_table.py --update`"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- test-command -->\s*```(?:sh|bash|console)?\n(.+?)\n```", readme, re.DOTALL)
    assert found, "README.md lost its <!-- test-command --> block"
    command = found.group(1).strip()
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in ci, f".ci/run does not run the README's test command {command!r}"
