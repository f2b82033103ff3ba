"""Streams each of whose messages is made for a person of its own (`auth.acting_for_each`).

The interceptor admits such a stream for its caller alone (the gateway's machine account), then
every message on its own, as `acting_for` admits a unary call: the caller's token again (a
stream outlives a revocation, a suspension or the token's expiry, and then ends UNAUTHENTICATED),
then the token of the person the message is made for, from the message's own field. The handler
reads `ForPerson` (admitted) or `RefusedMessage` (its answer is the error), never a bare request,
so that a handler cannot forget the check.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog

from contactpoint.platform.auth import Access, Principal, set_person
from contactpoint.platform.errors import (
    PERSON_TOKEN_REFUSED,
    ContactPointError,
    PermissionDenied,
    Unauthenticated,
)

T = TypeVar("T")


@dataclass(frozen=True)
class ForPerson(Generic[T]):
    """A message admitted for `person`, whose token it carried."""

    request: T
    person: Principal

    def bind(self) -> None:
        """Bind the person for the rest of the task answering the message (`current_person`, the
        log's `on_behalf_of`), as the interceptor binds them for a unary call."""
        set_person(self.person)
        structlog.contextvars.bind_contextvars(on_behalf_of=self.person.name)


@dataclass(frozen=True)
class RefusedMessage(Generic[T]):
    """A message refused for its person: answer it with `error`; the stream goes on."""

    request: T
    error: ContactPointError


def admitted_person(
    token: str | None, rule: Access, verify: Callable[[str], Principal], *, missing: str
) -> Principal:
    """The person a call (or one message of a stream) is made for, from their token, admitted by
    `rule`; PermissionDenied (`missing` when there is no token; reason PERSON_TOKEN_REFUSED when it
    is not valid) otherwise. The one check of both `acting_for` and `acting_for_each`."""
    if not token:
        raise PermissionDenied(missing)
    try:
        person = verify(token)
    except Unauthenticated as exc:
        # The caller's own token is fine; the person's is not (expired, revoked, suspended).
        raise PermissionDenied(
            f"the person's token is not valid: {exc.message}", reason=PERSON_TOKEN_REFUSED
        ) from exc
    rule.check(person)
    return person


class PersonEach:
    """A stream's requests, each admitted or refused for the person whose token it carries in
    `field` (checked against `person`). `admit_caller` checks the stream's own caller again before
    each message, raising (Unauthenticated) to end the stream; `verify` verifies a token."""

    def __init__(
        self,
        requests: AsyncIterator[Any],
        *,
        field: str,
        person: Access,
        admit_caller: Callable[[], Awaitable[None]],
        verify: Callable[[str], Principal],
    ) -> None:
        self._requests = requests
        self._field = field
        self._person = person
        self._admit_caller = admit_caller
        self._verify = verify

    def __aiter__(self) -> PersonEach:
        return self

    async def __anext__(self) -> ForPerson[Any] | RefusedMessage[Any]:
        request = await self._requests.__anext__()
        await self._admit_caller()
        try:
            person = admitted_person(
                getattr(request, self._field),
                self._person,
                self._verify,
                missing="each message must be made on behalf of a person",
            )
        except PermissionDenied as exc:
            return RefusedMessage(request, exc)
        return ForPerson(request, person)
