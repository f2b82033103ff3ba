"""Logins per network peer, throttled at the gateway (GCRA, in memory, per gateway process): a
flood of logins from one address slows only that address. Identity bounds the Argon2 work and
throttles each username behind this."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from contactpoint.platform.errors import ResourceExhausted
from gateway.allowance import MINUTE, SLACK


@dataclass(frozen=True)
class Rate:
    """GCRA's answer: allowed or not, the wait, and the new theoretical arrival time."""

    allowed: bool
    retry_after: float
    tat: float


def gcra(tat: float, now: float, *, per_minute: int) -> Rate:
    """One login at `now` against a theoretical arrival time `tat`, allowing `per_minute` a minute
    (a full minute's worth at once, then one every 60/per_minute seconds): one number an address,
    in memory, for a flood's throttle (a person's reads are held to the contract's "at most N a
    minute" exactly, `allowance.sliding`)."""
    interval = MINUTE / per_minute
    new_tat = max(tat, now) + interval
    if new_tat - now > MINUTE + SLACK:
        return Rate(False, new_tat - MINUTE - now, tat)
    return Rate(True, 0.0, new_tat)


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
