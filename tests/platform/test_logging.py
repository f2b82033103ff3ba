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
