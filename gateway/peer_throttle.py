"""Logins per network peer, throttled at the gateway (GCRA, in memory, per gateway process): a
flood of logins from one address slows only that address. Identity bounds the Argon2 work and
throttles each username behind this."""

from __future__ import annotations

import time
from collections import OrderedDict

from contactpoint.platform.errors import ResourceExhausted
from gateway.allowance import gcra


def peer_host(peer: str) -> str:
    """The address part of a gRPC peer string ("ipv4:10.0.0.1:5123" → "ipv4:10.0.0.1")."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv6":
        return kind + ":" + rest.rsplit(":", 1)[0]
    if kind == "ipv4":
        return kind + ":" + rest.partition(":")[0]
    return peer


class PeerThrottle:
    """At most `per_minute` logins a minute from one address (a minute's worth at once)."""

    def __init__(self, per_minute: int, *, max_peers: int = 50_000) -> None:
        self._per_minute = per_minute
        self._tats: OrderedDict[str, float] = OrderedDict()
        self._max = max_peers

    def admit(self, peer: str, now: float | None = None) -> None:
        """Spend one login for `peer`; ResourceExhausted (with the wait) when it is over."""
        now = time.monotonic() if now is None else now
        host = peer_host(peer)
        rate = gcra(self._tats.pop(host, 0.0), now, per_minute=self._per_minute)
        self._tats[host] = rate.tat
        while len(self._tats) > self._max:
            self._tats.popitem(last=False)
        if not rate.allowed:
            raise ResourceExhausted(
                "too many logins from this address; retry later", rate.retry_after, reason="LOGIN_RATE"
            )
