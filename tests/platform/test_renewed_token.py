"""A service's own machine token (`RenewedToken`, which both identity's gRPC `ServiceToken` and
identity's `OwnServiceToken` are): issued once however many callers ask at once, kept until a
minute (or a third of its life) before it expires, issued again after that or once invalidated,
and a failure to issue one reaches the caller and is not remembered."""

from __future__ import annotations

import asyncio
import time

import pytest

from contactpoint.platform.errors import Unavailable
from contactpoint.platform.peers import RenewedToken


class Counted(RenewedToken):
    """Issues "t1", "t2", … each valid for `life` seconds; fails while `failing` is set."""

    def __init__(self, life: float) -> None:
        super().__init__()
        self.life = life
        self.issued = 0
        self.failing = False

    async def _issue(self) -> tuple[str, float]:
        await asyncio.sleep(0.01)  # a call: concurrent callers overlap it
        if self.failing:
            raise Unavailable("identity is unavailable")
        self.issued += 1
        return f"t{self.issued}", time.time() + self.life


async def test_concurrent_callers_share_one_issued_token() -> None:
    token = Counted(life=900)
    got = await asyncio.gather(*(token.get() for _ in range(20)))
    assert got == ["t1"] * 20
    assert token.issued == 1
    assert await token.metadata() == (("authorization", "Bearer t1"),)
    assert token.issued == 1


async def test_a_token_is_renewed_before_it_expires_and_after_invalidation() -> None:
    # 900 s of life: kept for 840 s (renewed a minute early).
    token = Counted(life=900)
    assert await token.get() == "t1"
    token.invalidate()
    assert await token.get() == "t2"
    # 2 s of life: renewed a third of its life early, so well before it expires; never reused
    # past that point.
    short = Counted(life=2)
    assert await short.get() == "t1"
    await asyncio.sleep(1.5)
    assert await short.get() == "t2"


async def test_an_issue_that_fails_reaches_the_caller_and_the_next_call_tries_again() -> None:
    token = Counted(life=900)
    token.failing = True
    with pytest.raises(Unavailable):
        await token.get()
    token.failing = False
    assert await token.get() == "t1"
