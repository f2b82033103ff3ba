"""The gateway with its per-person limits switched off: the reference of bench/gateway_limits.py.

    CONTACTPOINT_GATEWAY_…=… .venv/bin/python bench/gateway_nolimits.py

Exactly `contactpoint serve gateway` (`contactpoint.cli.launch.run_one`, so the same settings,
migrations, logging and supervision), except that `gateway.limits.Allowances.take_read` and
`take_item` do nothing: no allowance transaction is made, nothing is refused. The allowance
object, its database and its housekeeping are still built as usual. Never for production use.
"""

from __future__ import annotations

import os

from contactpoint.cli.launch import run_one
from contactpoint.platform.audited import AuditedRequest
from contactpoint.platform.auth import Principal
from gateway.limits import Allowances


async def _no_allowance(
    self: Allowances, principal: Principal, call: AuditedRequest, item: str | None
) -> None:
    """Neither spends nor counts anything."""


# Set by `gateway_limits.py --same-both` (a calibration): this gateway keeps its limits on, so
# that the two measured gateways differ only in how they were started.
KEEP_LIMITS = "CONTACTPOINT_BENCH_KEEP_LIMITS"


def main() -> None:
    """Switch the limits off, then serve the gateway from the environment until SIGTERM."""
    if os.environ.get(KEEP_LIMITS) != "1":
        Allowances.take_read = _no_allowance  # type: ignore[method-assign]
        Allowances.take_item = _no_allowance  # type: ignore[method-assign]
    run_one("gateway", dict(os.environ))


if __name__ == "__main__":
    main()
