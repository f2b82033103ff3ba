"""Logging never carries a child's personal data, not even inside a traceback."""

from __future__ import annotations

import json

import pytest
import structlog

from contactpoint.platform.logging import configure_logging, get_logger


@pytest.fixture(autouse=True)
def _reset_structlog():
    yield
    structlog.reset_defaults()


def test_a_json_traceback_leaves_out_local_variables(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level="info", fmt="json", service="test")
    log = get_logger("test")

    def fail(record: dict[str, str]) -> None:
        family_name = record["family_name"]
        raise ValueError(f"bad record of length {len(family_name)}")

    try:
        fail({"family_name": "Okonkwo-Whitfield", "postcode": "M1 1AE"})
    except ValueError:
        log.exception("records.failed")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    event = json.loads(line)
    assert event["event"] == "records.failed"
    frames = event["exception"][0]["frames"]
    assert frames and all("locals" not in frame for frame in frames)
    assert "Okonkwo" not in line and "M1 1AE" not in line


def test_a_library_line_quoting_a_header_leaves_out_its_value(capsys: pytest.CaptureFixture[str]) -> None:
    # grpc's own words for a request header that is not UTF-8 (found by probing the gateway with a
    # raw HTTP/2 client: its bearer token, and a name sent in another header, were logged whole).
    import logging

    configure_logging(level="info", fmt="json", service="test")
    grpc_log = logging.getLogger("grpc._cython.cygrpc")
    grpc_log.error("Invalid encoding on %s", b"Bearer eyJhbGciOiJFZERTQSJ9.secret-part\xff")
    grpc_log.error("Invalid encoding on %s", "Zoë Brontë 12 Acacia Ave".encode("latin-1"))
    grpc_log.warning("Handshake failed with fatal error SSL_ERROR_SSL")  # says nothing of anyone
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert [line["event"] for line in lines] == [
        "Invalid encoding on (value not logged: it may be a credential or personal data)",
        "Invalid encoding on (value not logged: it may be a credential or personal data)",
        "Handshake failed with fatal error SSL_ERROR_SSL",
    ]
    assert all(line["logger"] == "grpc._cython.cygrpc" for line in lines)
