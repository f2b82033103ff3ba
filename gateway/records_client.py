"""The gateway's calls to the records service, with the gateway's own machine token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from contactpoint.common.v1 import child_pb2
from contactpoint.platform.auth import ON_BEHALF_OF_KEY, Principal
from contactpoint.platform.errors import (
    ContactPointError,
    FieldViolation,
    InvalidArgument,
    Unavailable,
    from_rpc_error,
)
from contactpoint.platform.logging import get_logger
from contactpoint.platform.peers import PEER_TIMEOUT_SECONDS, Metadata, ServiceToken, with_service_token
from contactpoint.records.v1 import records_service_pb2 as records_pb
from contactpoint.records.v1 import records_service_pb2_grpc as records_grpc
from gateway.read_streams import ReadStreams

log = get_logger(__name__)
R = TypeVar("R")


def _for(metadata: Metadata, person: Principal) -> Metadata:
    """The gateway's own token, and the person's, whom records reads for."""
    return (*metadata, (ON_BEHALF_OF_KEY, f"Bearer {person.token}"))


class RecordsClient:
    """Single-record reads from the records service."""

    def __init__(self, channel: grpc.aio.Channel, token: ServiceToken, *, read_streams: int = 0) -> None:
        self._stub = records_grpc.RecordsServiceStub(channel)
        self._token = token
        # Reads of one child over long-lived streams (`read_streams`), else a call each.
        self._reads = ReadStreams(channel, token, streams=read_streams) if read_streams else None

    async def close(self) -> None:
        """End the streams of reads (the gateway is stopping)."""
        if self._reads is not None:
            await self._reads.close()

    async def _call(self, fn: Callable[[Metadata], Awaitable[R]]) -> R:
        try:
            return await with_service_token(self._token, fn)
        except grpc.aio.AioRpcError as exc:
            mapped = from_rpc_error(exc)
            if mapped is None:
                log.error("records.call_failed", code=exc.code().name)
                raise Unavailable("the records service is unavailable") from exc
            raise mapped from exc

    async def get_child(self, contactpoint_id: str, person: Principal) -> child_pb2.Child:
        """The full record of one child (NOT_FOUND when unknown or archived), read for `person`."""
        if self._reads is not None:
            return await self._reads.read(contactpoint_id, person)
        request = records_pb.GetChildRecordRequest(contactpoint_id=contactpoint_id)
        response = await self._call(
            lambda md: self._stub.GetChildRecord(
                request, metadata=_for(md, person), timeout=PEER_TIMEOUT_SECONDS
            )
        )
        return response.child

    async def search_problems(
        self, request: records_pb.FindChildRecordRequest, person: Principal
    ) -> list[FieldViolation]:
        """What records finds wrong with a search's criteria, searching nothing (none when it
        cannot be asked: the request is refused for its other faults all the same)."""
        check = records_pb.FindChildRecordRequest()
        check.CopyFrom(request)
        check.validate_only = True
        try:
            await self._call(
                lambda md: self._stub.FindChildRecord(
                    check, metadata=_for(md, person), timeout=PEER_TIMEOUT_SECONDS
                )
            )
        except InvalidArgument as exc:
            return list(exc.violations)
        except ContactPointError:
            return []
        return []

    async def find_child(
        self, request: records_pb.FindChildRecordRequest, person: Principal
    ) -> tuple[child_pb2.Child, list[str], list[str]]:
        """The one child matching the criteria (NOT_FOUND, or FAILED_PRECONDITION TOO_MANY_MATCHES),
        searched for `person`, the shielded children the search withheld and the archived children
        it matched (for the log)."""
        response = await self._call(
            lambda md: self._stub.FindChildRecord(
                request, metadata=_for(md, person), timeout=PEER_TIMEOUT_SECONDS
            )
        )
        return (
            response.child,
            list(response.withheld_contactpoint_ids),
            list(response.archived_contactpoint_ids),
        )
