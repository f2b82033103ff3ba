"""Tokens whose signature has been checked already, with their claims.

A token is used many times: a person's on every request until it expires, a service's on every
call it makes. Checking its Ed25519 signature each time (PyJWT's decode) was about 160 µs of every
request. `VerifiedTokens` remembers, for the exact token text, the claims it was found to carry
and the key that signed it; the verifier then re-checks only what can change — that the key is
still one identity publishes, that the token has not expired, and (as for every token) that it
was not revoked or cut off. Two tokens differ in their text if they differ at all, so a forged or
altered token is never a hit. Bounded: the least recently used are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

CAPACITY = 10_000


class VerifiedTokens:
    """Claims of verified tokens, by token text, at most `capacity` of them."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[str, bytes, dict[str, Any]]] = OrderedDict()

    def get(self, token: str, keys: Mapping[str, bytes]) -> tuple[str, dict[str, Any]] | None:
        """The key id and claims of `token` if it was verified with a key that `keys` (kid → raw
        public key) still holds; None otherwise (it must be verified in full)."""
        hit = self._entries.get(token)
        if hit is None:
            return None
        kid, raw, claims = hit
        if keys.get(kid) != raw:  # its key was retired (or replaced): verify afresh
            del self._entries[token]
            return None
        self._entries.move_to_end(token)
        return kid, claims

    def put(self, token: str, kid: str, raw_key: bytes, claims: dict[str, Any]) -> None:
        """Remember that `token`, signed by `kid` (`raw_key`), carries `claims`."""
        self._entries[token] = (kid, raw_key, claims)
        self._entries.move_to_end(token)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
