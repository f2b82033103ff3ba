"""Requests whose bytes are not a valid message of their RPC's request type: decoded to a marker
instead of raising (left to grpc, the call would end UNKNOWN with the parser's message), so that
the interceptor answers INVALID_ARGUMENT naming the request, or the stream's message, at fault."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from contactpoint.platform.errors import FieldViolation, InvalidArgument

Deserializer = Callable[[bytes], Any]


class Undecodable:
    """What a request deserialises to when its bytes are not a valid message of the RPC's
    request type (the handler never sees it: the interceptor answers INVALID_ARGUMENT)."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


def _type_name(deserializer: Deserializer) -> str:
    """The request type a generated `Message.FromString` deserialiser reads ("" if unknown)."""
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", ""))


def tolerant_deserializer(deserializer: Deserializer | None) -> Deserializer | None:
    """`deserializer`, returning an `Undecodable` marker instead of raising on bad bytes.

    Left to grpc, a DecodeError ends the call UNKNOWN with the parser's message (and, on a stream,
    in whatever state the handler was in); the marker lets the interceptor answer it properly.
    """
    if deserializer is None:
        return None
    marker = Undecodable(_type_name(deserializer))

    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except Exception:  # DecodeError, or anything else the parser makes of hostile bytes
            return marker

    return deserialize


def undecodable_request(request: Undecodable, field: str) -> InvalidArgument:
    """The error for a request that could not be decoded (the bytes are never echoed)."""
    what = f"a valid {request.type_name} message" if request.type_name else "a valid message"
    return InvalidArgument([FieldViolation(field, f"is not {what}")])


class UndecodableMessage:
    """One message of a stream that could not be decoded, handed to a handler that answers each
    message on its own (`answers_each_message`): `error` is its answer."""

    __slots__ = ("error",)

    def __init__(self, error: InvalidArgument) -> None:
        self.error = error


_EACH_MESSAGE = "_contactpoint_answers_each_message"


def answers_each_message(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a streaming handler that answers every message of its request stream on its own (one
    bad message never ends the stream, CONTRACT §4): it is given an `UndecodableMessage` where a
    message cannot be decoded, instead of the stream ending there."""
    setattr(handler, _EACH_MESSAGE, True)
    return handler


def answers_each(handler: Any) -> bool:
    """Whether a handler was marked with `answers_each_message`."""
    return bool(getattr(handler, _EACH_MESSAGE, False))


class CheckedRequests:
    """A request stream as its handler reads it. An undecodable message ends it: InvalidArgument
    (naming the message's position, `requests[i]`, from 0) is raised into the handler, and kept
    in `error`, so that the call ends with it whatever the handler made of it — unless the
    handler answers each message (`each`): it then reads an `UndecodableMessage` there."""

    def __init__(self, requests: AsyncIterator[Any], *, each: bool = False) -> None:
        self._requests = requests
        self._read = 0
        self._each = each
        self.error: InvalidArgument | None = None

    def __aiter__(self) -> CheckedRequests:
        return self

    async def __anext__(self) -> Any:
        if self.error is not None:
            raise self.error
        request = await self._requests.__anext__()
        if isinstance(request, Undecodable):
            error = undecodable_request(request, f"requests[{self._read}]")
            if self._each:
                self._read += 1
                return UndecodableMessage(error)
            self.error = error
            raise self.error
        self._read += 1
        return request
