"""The service's own RPCs under way, and whether it still takes new ones.

A stopping server answers the calls under way and lets their answers leave before it closes its
connections. gRPC's own graceful stop destroys the server as soon as the last handler returns,
and an answer not yet written to the connection is lost: found by probing, a gateway stopped
0.3 s into its 10 s grace, and reads already audited as ALLOWED reached their callers as
CANCELLED. So a stopping server first refuses new calls (UNAVAILABLE: try another replica, or
again shortly), waits for those under way, and gives their answers a moment to leave
(`RunningServer.stop`)."""

from __future__ import annotations

import asyncio

from contactpoint.platform.errors import Unavailable


class Calls:
    """How many of the service's own RPCs are under way (health and reflection are not counted)."""

    def __init__(self) -> None:
        self._under_way = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    def begin(self) -> None:
        """A call starts: counted until `end`, even one the stopping server refuses (`admit`), so
        that its refusal too has left before the connections close."""
        self._under_way += 1
        self._idle.clear()

    def admit(self) -> None:
        """Unavailable once the server is stopping."""
        if self._closing:
            raise Unavailable("the service is stopping; try again shortly")

    def end(self) -> None:
        """A call begun has been answered (or failed)."""
        self._under_way -= 1
        if self._under_way == 0:
            self._idle.set()

    def close(self) -> None:
        """Take no new calls from now on."""
        self._closing = True

    async def idle(self, within: float) -> bool:
        """Whether every call under way ended within `within` seconds."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True
