"""Helpers for tests that read what the services log: undo `configure_logging`, and a child's
record whose every personal value can be looked for in the output."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from contactpoint.platform.logging import HANDLER_NAME


@pytest.fixture
def reset_logging() -> Iterator[None]:
    """Put structlog and the standard library's root logger back as they were after the test."""
    root = logging.getLogger()
    level = root.level
    yield
    structlog.reset_defaults()
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
    root.setLevel(level)


def json_lines(output: str) -> list[dict[str, Any]]:
    """The JSON log lines in `output` (anything else, such as pytest's own output, is skipped)."""
    events = []
    for line in output.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events
