"""Without TLS, `contactpoint up` listens on 127.0.0.1 only (CONTRACT §1). Found by probing:
`CONTACTPOINT_GATEWAY_LISTEN=0.0.0.0:…` made `up` serve the gateway in plaintext on every
interface, and print 0.0.0.0 as the address to dial. An explicit address still chooses the port,
and a loopback host; any other host is refused before anything starts, unless that service serves
TLS."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from contactpoint.cli.embedded import layered_env
from contactpoint.cli.main import app
from contactpoint.cli.tls_sides import plaintext_beyond_loopback
from tests.harness import free_ports


def test_up_refuses_to_listen_in_plaintext_beyond_this_machine(tmp_path: Path) -> None:
    base = free_ports(10)
    data = tmp_path / "data"
    env = {"CONTACTPOINT_GATEWAY_LISTEN": f"0.0.0.0:{base + 20}"}
    result = CliRunner().invoke(app, ["up", "--data-dir", str(data), "--base-port", str(base)], env=env)
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"contactpoint up: CONTACTPOINT_GATEWAY_LISTEN=0.0.0.0:{base + 20}: without TLS `contactpoint up` "
        "listens on 127.0.0.1 only; set CONTACTPOINT_GATEWAY_TLS_CERT_FILE and _KEY_FILE, or use "
        "`contactpoint serve`"
    ]
    assert not data.exists()  # nothing started, nothing made


def test_which_addresses_are_beyond_this_machine(tmp_path: Path) -> None:
    def problems(**listen: str) -> list[str]:
        env = layered_env({f"CONTACTPOINT_{k.upper()}": v for k, v in listen.items()}, tmp_path, 50050)
        return [line.split(":", 1)[0].split("=", 1)[0] for line in plaintext_beyond_loopback(env)]

    assert problems() == []  # the defaults
    assert (
        problems(records_listen="localhost:7000", audit_listen="[::1]:7001", identity_listen="127.0.0.2:1")
        == []
    )
    assert problems(gateway_listen="unix-abstract:cp") == []
    assert problems(records_listen=":7000") == ["CONTACTPOINT_RECORDS_LISTEN"]  # every interface
    assert problems(audit_metrics_listen="10.0.0.5:9100") == ["CONTACTPOINT_AUDIT_METRICS_LISTEN"]
    assert problems(gateway_listen="[::]:7000") == ["CONTACTPOINT_GATEWAY_LISTEN"]
    # Only address literals and "localhost" count: a name is not resolved, and may be anywhere.
    for host in ("127.example.org", "0", "2130706433", "localhost.", "[::ffff:0.0.0.0]", "0.0.0.0"):  # noqa: S104
        assert problems(gateway_listen=f"{host}:7000") == ["CONTACTPOINT_GATEWAY_LISTEN"], host
    # With TLS the host is the operator's to choose.
    assert problems(gateway_listen="0.0.0.0:7000", gateway_tls_cert_file="/etc/cp/cert.pem") == []


def test_any_base_port_that_leaves_room_for_the_contracts_four_is_taken(tmp_path: Path) -> None:
    """CONTRACT §1 names ports N to N+3; `up` refused N above 65526 for ports of its own after
    them (found by probing). Now N up to 65532 is taken: the witness's port under TLS goes just
    below N, and the metrics that do not fit are off."""
    from contactpoint.cli.embedded import embedded_defaults, witness_port_address

    afile = tmp_path / "a-file"
    afile.write_text("")
    # Accepted as an option: refused only afterwards, for the --data-dir that is a file.
    accepted = CliRunner().invoke(app, ["up", "--data-dir", str(afile), "--base-port", "65532"])
    assert accepted.exit_code == 2 and "is a file, not a folder" in accepted.output
    refused = CliRunner().invoke(app, ["up", "--data-dir", str(afile), "--base-port", "65533"])
    assert refused.exit_code == 2 and "is a file" not in refused.output
    env = embedded_defaults(tmp_path, 65532)
    assert env["CONTACTPOINT_AUDIT_LISTEN"] == "127.0.0.1:65535"
    assert env["CONTACTPOINT_GATEWAY_METRICS_LISTEN"] == ""  # 65537: off
    assert witness_port_address(65532) == "127.0.0.1:65531"
    assert witness_port_address(50050) == "127.0.0.1:50054"
    assert embedded_defaults(tmp_path, 50050)["CONTACTPOINT_WITNESS_METRICS_LISTEN"] == "127.0.0.1:50059"


def test_dialling_a_service_that_listens_everywhere_and_an_ipv6_loopback_port() -> None:
    """Found by re-probing: with TLS and `0.0.0.0`, `up` checked the gateway at 0.0.0.0 and gave up;
    `[::1]:port` was said to be in use, as it was probed over IPv4."""
    from contactpoint.cli.health import port_in_use
    from contactpoint.cli.tls_names import dial_target

    assert dial_target({"CONTACTPOINT_GATEWAY_LISTEN": "0.0.0.0:7000"}, "gateway") == "127.0.0.1:7000"
    assert dial_target({"CONTACTPOINT_GATEWAY_LISTEN": "[::]:7000"}, "gateway") == "127.0.0.1:7000"
    assert dial_target({"CONTACTPOINT_GATEWAY_LISTEN": "127.0.0.1:7000"}, "gateway") == "127.0.0.1:7000"
    port = free_ports(1)
    assert not port_in_use("[::1]", port)
