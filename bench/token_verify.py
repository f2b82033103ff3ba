"""Token verification, median µs: a token seen for the first time (its Ed25519 signature checked
by PyJWT) against a token used again (its claims remembered, `VerifiedTokens`), in one run.

    .venv/bin/python bench/token_verify.py [--tokens 2000] [--reuse 20] [--json]

In-process, one thread: `TokenVerifier.verify` on tokens issued by identity's own `TokenIssuer`
for a practitioner, against a verification state with one key and 1,000 revoked token ids. Each
of `--tokens` fresh tokens is verified once (the first use), then `--reuse` more times (a person's
token on each of their requests, a service's on each call it makes).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from contactpoint.platform.token_verifier import TokenVerifier, VerificationState
from services.identity.repository import Account
from services.identity.token_issuer import TokenIssuer


def practitioner(n: int) -> Account:
    """A practitioner's account as identity reads it, to issue a token for."""
    return Account(
        id=f"acct-{n}",
        kind="person",
        name=f"pat.practitioner{n}",
        client_id=None,
        organisation="E08000003",
        roles=("practitioner",),
        secret_hash="",
        totp_secret=None,
        totp_last_step=0,
        failed_logins=0,
        locked_until=None,
        suspended=False,
        tokens_not_before=None,
    )


async def run(args: argparse.Namespace) -> dict[str, object]:
    issuer = TokenIssuer(Ed25519PrivateKey.generate(), ttl_seconds=900)
    revoked = frozenset(f"jti-{i}" for i in range(1000))

    async def source(_known: int) -> VerificationState:
        return VerificationState(1, {issuer.key_id: issuer.public_key}, revoked, frozenset())

    verifier = TokenVerifier(source, max_staleness_seconds=3600)
    await verifier.refresh()
    now = dt.datetime.now(dt.UTC)
    tokens = [issuer.issue(practitioner(n), now=now).token for n in range(args.tokens)]
    first, again = [], []
    for token in tokens:
        began = time.perf_counter()
        verifier.verify(token)
        first.append(time.perf_counter() - began)
        for _ in range(args.reuse):
            began = time.perf_counter()
            verifier.verify(token)
            again.append(time.perf_counter() - began)
    all_uses = first + again
    return {
        "first_use_median_us": 1e6 * statistics.median(first),
        "reused_median_us": 1e6 * statistics.median(again),
        "every_use_median_us": 1e6 * statistics.median(all_uses),
        "every_use_mean_us": 1e6 * statistics.fmean(all_uses),
        "tokens": args.tokens,
        "uses_per_token": args.reuse + 1,
    }


def main(argv: Sequence[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--tokens", type=int, default=2000)
    p.add_argument("--reuse", type=int, default=20)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main(sys.argv[1:])
